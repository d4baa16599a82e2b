"""The game catalogue: YAML parsed once into frozen dataclasses.

Providers (and their games) are declared once; each region lists the providers it integrates
with and how that integration behaves from there (latency, error rate, timeout). Errors name
the file and the field, e.g. `catalogue.yaml: regions.eu.netent.timeout_ms: ...`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any, NoReturn

import yaml

from aggregator.errors import ConfigError


class Volatility(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


@dataclass(frozen=True, kw_only=True)
class Game:
    id: str
    name: str
    category: str
    provider: str
    rtp: float
    volatility: Volatility


@dataclass(frozen=True, kw_only=True)
class Provider:
    """One provider's integration as seen from one region."""

    id: str
    name: str
    games: tuple[Game, ...]
    latency_median_s: float
    latency_sigma: float
    error_rate: float
    timeout_s: float

    @property
    def categories(self) -> frozenset[str]:
        return frozenset(g.category for g in self.games)


@dataclass(frozen=True, kw_only=True)
class RegionCatalogue:
    region: str
    providers: Mapping[str, Provider]
    # every game of the file, served here or not: a round begun in another region can still
    # have its (deterministic) outcome computed here
    known_games: Mapping[str, Game] = field(default_factory=dict)
    games: Mapping[str, Game] = field(init=False)
    categories: Mapping[str, tuple[Game, ...]] = field(init=False)

    def __post_init__(self) -> None:
        games = {g.id: g for p in self.providers.values() for g in p.games}
        by_category: dict[str, list[Game]] = {}
        for game in games.values():
            by_category.setdefault(game.category, []).append(game)
        object.__setattr__(self, "games", games)
        object.__setattr__(self, "categories", {c: tuple(gs) for c, gs in by_category.items()})


@dataclass(frozen=True, kw_only=True)
class Catalogue:
    path: str
    regions: Mapping[str, RegionCatalogue]

    def region(self, region_id: str) -> RegionCatalogue:
        try:
            return self.regions[region_id]
        except KeyError:
            raise ConfigError(
                f"{self.path}: regions: no region {region_id!r}; known: {sorted(self.regions)}"
            ) from None


def default_path() -> Path:
    return Path(str(resources.files("aggregator") / "data" / "catalogue.yaml"))


def load(path: str | Path | None = None) -> Catalogue:
    """Read and validate a catalogue file (the shipped one by default)."""
    path = Path(path) if path is not None else default_path()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read catalogue: {exc}") from exc
    try:
        # libyaml's loader when present: the same safe subset, parsed in C
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    return parse(data, source=path.name)


def parse(data: Any, *, source: str) -> Catalogue:
    """Build a Catalogue from already-loaded YAML data; `source` names it in errors."""
    doc = _Doc(source)
    root = doc.mapping(data, "(top level)")
    offered = {
        pid: _offer(doc, pid, spec)
        for pid, spec in doc.mapping(root.get("providers"), "providers").items()
    }
    known_games = {g.id: g for offer in offered.values() for g in offer.games}
    regions: dict[str, RegionCatalogue] = {}
    for rid, spec in doc.mapping(root.get("regions"), "regions").items():
        where = f"regions.{rid}"
        providers = {}
        for pid, model in doc.mapping(spec, where).items():
            if pid not in offered:
                doc.fail(f"{where}.{pid}", f"unknown provider (not under providers:) {pid!r}")
            providers[pid] = _integration(doc, f"{where}.{pid}", offered[pid], model)
        if not providers:
            doc.fail(where, "a region needs at least one provider")
        regions[str(rid)] = RegionCatalogue(
            region=str(rid), providers=providers, known_games=known_games
        )
    if not regions:
        doc.fail("regions", "at least one region is needed")
    _check_unique_games(doc, offered)
    return Catalogue(path=source, regions=regions)


@dataclass(frozen=True, kw_only=True)
class _Offer:
    name: str
    games: tuple[Game, ...]


def _offer(doc: _Doc, pid: str, spec: Any) -> _Offer:
    where = f"providers.{pid}"
    body = doc.mapping(spec, where)
    name = doc.text(body, "name", where)
    raw_games = body.get("games")
    if not isinstance(raw_games, list) or not raw_games:
        doc.fail(f"{where}.games", f"must be a non-empty list, got {raw_games!r}")
    games = []
    for i, raw in enumerate(raw_games):
        at = f"{where}.games[{i}]"
        g = doc.mapping(raw, at)
        raw_vol = doc.text(g, "volatility", at)
        try:
            volatility = Volatility(raw_vol)
        except ValueError:
            doc.fail(f"{at}.volatility", f"must be low, medium or high, got {raw_vol!r}")
        games.append(
            Game(
                id=doc.text(g, "id", at),
                name=doc.text(g, "name", at),
                category=doc.text(g, "category", at),
                provider=str(pid),
                rtp=doc.number(g, "rtp", at, low=0.01, high=1.0),
                volatility=volatility,
            )
        )
    return _Offer(name=name, games=tuple(games))


def _integration(doc: _Doc, where: str, offer: _Offer, spec: Any) -> Provider:
    body = doc.mapping(spec, where)
    pid = where.rsplit(".", 1)[1]
    median_ms = doc.number(body, "latency_median_ms", where, low=0.01, high=600_000.0)
    timeout_ms = doc.number(body, "timeout_ms", where, low=1.0, high=600_000.0)
    return Provider(
        id=pid,
        name=offer.name,
        games=offer.games,
        latency_median_s=median_ms / 1000.0,
        latency_sigma=doc.number(body, "latency_sigma", where, low=0.0, high=5.0),
        error_rate=doc.number(body, "error_rate", where, low=0.0, high=1.0),
        timeout_s=timeout_ms / 1000.0,
    )


def _check_unique_games(doc: _Doc, offered: Mapping[str, _Offer]) -> None:
    seen: dict[str, str] = {}
    for pid, offer in offered.items():
        for i, game in enumerate(offer.games):
            if game.id in seen:
                doc.fail(
                    f"providers.{pid}.games[{i}].id",
                    f"game id {game.id!r} is already used by provider {seen[game.id]!r}",
                )
            seen[game.id] = pid


class _Doc:
    """Typed field access that names the file and field when something is wrong."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, problem: str) -> NoReturn:
        raise ConfigError(f"{self.source}: {where}: {problem}")

    def mapping(self, value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(where, f"must be a mapping, got {value!r}")
        return {str(k): v for k, v in value.items()}

    def text(self, body: Mapping[str, Any], key: str, where: str) -> str:
        value = body.get(key)
        if not isinstance(value, str) or not value.strip():
            self.fail(f"{where}.{key}", f"must be a non-empty string, got {value!r}")
        return str(value)

    def number(
        self, body: Mapping[str, Any], key: str, where: str, *, low: float, high: float
    ) -> float:
        value = body.get(key)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or not low <= value <= high
        ):
            self.fail(f"{where}.{key}", f"must be a number in [{low}, {high}], got {value!r}")
        return float(value)
