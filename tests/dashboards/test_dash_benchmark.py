"""benchmarks/dash.py's --quick logic, without Prometheus and on even less data: every page
registered with Dash gets a figure. What the figures are is the benchmark's business (it
reports them in BENCHMARKS.md); this only checks that a page someone adds is measured."""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
from types import ModuleType

import dash
import pytest

import aggregator  # noqa: F401  (benchmarks/ holds scripts named like the packages: import them first)
from tests.conftest import ROOT

BENCHMARKS = ROOT / "benchmarks"


def load_benchmark(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.setattr(sys, "path", [*sys.path, str(BENCHMARKS)])  # its helper modules
    spec = importlib.util.spec_from_file_location("bench_dash", BENCHMARKS / "dash.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_dash", module)  # its dataclasses look it up
    spec.loader.exec_module(module)
    return module


def test_a_quick_run_gives_every_page_a_figure(monkeypatch: pytest.MonkeyPatch) -> None:
    bench = load_benchmark(monkeypatch)
    settings = dataclasses.replace(
        bench.Settings.quick(), hours=0.25, fine_minutes=1.0, loads=1, executions=3, replays=0
    )
    rows, notes = bench.run(settings, peer=False)
    assert {r.page for r in rows} == {p["name"] for p in dash.page_registry.values()}
    assert all(r.callbacks > 1 and r.bytes > 0 and r.failed == 0 for r in rows)
    assert all(r.prometheus_ms is None for r in rows)
    text = bench.render(rows, {**notes, "load": (0.0, 0.0)}, settings)
    assert all(f"| {r.page} (`{r.path}`)" in text for r in rows)
