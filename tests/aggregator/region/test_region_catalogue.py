from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from aggregator.errors import ConfigError
from aggregator.region import catalogue


def test_shipped_catalogue_has_two_regions_with_failover_room() -> None:
    cat = catalogue.load()
    assert set(cat.regions) >= {"eu", "latam"}
    for region in cat.regions.values():
        assert len(region.providers) >= 6
        for provider in region.providers.values():
            assert len(provider.games) >= 3
            assert provider.latency_median_s < provider.timeout_s
        # every category is served by two providers at least: failover has somewhere to go
        for category, games in region.categories.items():
            assert len({g.provider for g in games}) >= 2, (region.region, category)
        assert {"slots", "live", "table", "crash"} <= set(region.categories)
    # providers differ a bit per region
    assert set(cat.regions["eu"].providers) != set(cat.regions["latam"].providers)


def test_unknown_region_names_the_file_and_the_known_regions() -> None:
    with pytest.raises(ConfigError, match=r"catalogue\.yaml: regions: no region 'mars'"):
        catalogue.load().region("mars")


def base() -> dict[str, Any]:
    return {
        "providers": {
            "p1": {
                "name": "P One",
                "games": [
                    {"id": "g1", "name": "G", "category": "slots", "rtp": 0.96, "volatility": "low"}
                ],
            }
        },
        "regions": {
            "eu": {
                "p1": {
                    "latency_median_ms": 50,
                    "latency_sigma": 0.3,
                    "error_rate": 0.001,
                    "timeout_ms": 2000,
                }
            }
        },
    }


def broken(path: str, value: Any) -> dict[str, Any]:
    data = base()
    *parents, leaf = path.split(".")
    node: Any = data
    for key in parents:
        node = node[int(key)] if key.isdigit() else node[key]
    if value is KeyError:
        del node[leaf]
    else:
        node[leaf] = value
    return data


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ("providers.p1.games.0.rtp", 1.5, "providers.p1.games[0].rtp"),
        ("providers.p1.games.0.rtp", "high", "providers.p1.games[0].rtp"),
        ("providers.p1.games.0.volatility", "wild", "providers.p1.games[0].volatility"),
        ("providers.p1.games.0.category", KeyError, "providers.p1.games[0].category"),
        ("providers.p1.games", [], "providers.p1.games"),
        ("providers.p1.name", KeyError, "providers.p1.name"),
        ("regions.eu.p1.timeout_ms", -5, "regions.eu.p1.timeout_ms"),
        ("regions.eu.p1.error_rate", True, "regions.eu.p1.error_rate"),
        ("regions.eu.p1.latency_median_ms", KeyError, "regions.eu.p1.latency_median_ms"),
        ("regions.eu.p9", {}, "regions.eu.p9"),
        ("regions.eu", [], "regions.eu"),
        ("regions", {}, "regions"),
    ],
)
def test_errors_name_the_file_and_the_field(
    tmp_path: Path, path: str, value: Any, field: str
) -> None:
    file = tmp_path / "bad-catalogue.yaml"
    file.write_text(yaml.safe_dump(broken(path, value)))
    with pytest.raises(ConfigError) as info:
        catalogue.load(file)
    message = str(info.value)
    assert message.startswith(f"bad-catalogue.yaml: {field}:"), message


def test_duplicate_game_ids_are_refused(tmp_path: Path) -> None:
    data = base()
    data["providers"]["p2"] = data["providers"]["p1"]
    file = tmp_path / "dup.yaml"
    file.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=r"dup\.yaml: providers\.p2\.games\[0\]\.id: .*'g1'"):
        catalogue.load(file)


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing\.yaml: cannot read"):
        catalogue.load(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("providers: [unclosed")
    with pytest.raises(ConfigError, match=r"bad\.yaml: not valid YAML"):
        catalogue.load(bad)


def test_games_and_categories_are_indexed_per_region(tmp_path: Path) -> None:
    file = tmp_path / "ok.yaml"
    file.write_text(yaml.safe_dump(base()))
    region = catalogue.load(file).region("eu")
    game = region.games["g1"]
    assert game.provider == "p1"
    assert region.categories["slots"] == (game,)
    assert region.providers["p1"].timeout_s == 2.0
    assert region.providers["p1"].latency_median_s == 0.05
