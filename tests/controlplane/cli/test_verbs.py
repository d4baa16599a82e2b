"""Every verb the documentation names is offered by `controlplane` and answers `--help`."""

from __future__ import annotations

import re

import pytest

from controlplane.cli import VERBS, build_parser, main
from tests.conftest import ROOT

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def documented_verbs() -> set[str]:
    found: set[str] = set()
    for doc in DOCS:
        # as a command: in inline code, or at the start of a line of a code block
        found.update(re.findall(r"(?:`|^|/)controlplane ([a-z]+)\b", doc.read_text(), re.M))
    return found


def test_the_docs_name_verbs() -> None:
    assert {"serve", "demo", "query", "rules", "runbooks", "backtest", "db"} <= documented_verbs()


@pytest.mark.parametrize("verb", sorted(documented_verbs() | set(VERBS)))
def test_documented_verb_is_offered_and_answers_help(
    verb: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert verb in VERBS, f"{verb!r} is documented but not offered"
    with pytest.raises(SystemExit) as exit_:
        main([verb, "--help"])
    assert exit_.value.code == 0
    assert f"controlplane {verb}" in capsys.readouterr().out


def test_a_missing_verb_module_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(VERBS, "ghost", "controlplane.cli.no_such_module")
    with pytest.raises(ModuleNotFoundError):
        build_parser()
