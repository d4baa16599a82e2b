"""Long windows on the embedded store: what the long-term tier costs to keep 30 days of the
demo's SLO series (and the SLIs' inputs) at one sample per 5 minutes, against keeping them raw.

    python benchmarks/history.py [--raw-hours 6] [--no-write]

The series are the demo's own: the `slo:*` series the shipped SLO specs (rules/slo/) record
for regions eu and latam, and the counters their SLIs read, with the label sets the bundled
aggregator's regions export (every provider of the shipped catalogue, every outcome, every
latency bucket). Their samples are synthesised, not waited for: counters scraped every second
(the demo's interval) with Poisson increments, recording rules every minute (the default
group interval) with noisy float values. 31 days (the 30-day window and the default 1-day
margin) go through the tier's own downsampling (`History.absorb`, what retention calls) an
hour at a time; the last `--raw-hours` are also appended raw to a store, which gives the raw
alternative's cost per sample (closed blocks, the head excluded: its size is fixed) and the
queries the SLO page runs across both tiers.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import io
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from prometheus_client import CollectorRegistry

sys.path.append(str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmd import machine, write_section

from aggregator.region import catalogue
from aggregator.region.metrics import WALLET_OPERATIONS, RegionMetrics
from controlplane.model.series import Labels, SeriesBatch, labels_from
from controlplane.promql.engine import Engine
from controlplane.slo import SLO, generate_rule_groups, load_specs
from controlplane.slo.inputs import sli_metric_names
from controlplane.tsdb.downsample import bucket_end
from controlplane.tsdb.export import savez
from controlplane.tsdb.history import History, HistoryConfig
from controlplane.tsdb.store import Store

ROOT = Path(__file__).resolve().parent.parent
MARKERS = ("<!-- history:begin -->", "<!-- history:end -->")
S, M, H, DAY = 1000, 60_000, 3_600_000, 86_400_000
RES = 5 * M
END_MS = 1_772_452_800_000 // DAY * DAY  # a day boundary, 2026-03-02
REGIONS = {"eu": "127.0.0.1:8101", "latam": "127.0.0.1:8102"}


@dataclass(frozen=True, kw_only=True)
class Group:
    """Series sampled together: every `interval_ms`, counters or noisy gauges."""

    name: str
    labels: list[Labels]
    interval_ms: int
    counters: bool
    const: tuple[bool, ...] = ()  # gauges that never move (the SLO's objective and budget)


def rss_bytes() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))


def trim() -> None:
    gc.collect()
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def slo_group(slos: list[SLO]) -> Group:
    """Every series the generated rules record: per SLO, and per region where the SLO is."""
    labels: list[Labels] = []
    const: list[bool] = []
    for slo in slos:
        for group in generate_rule_groups(slo):
            for rule in (r for r in group["rules"] if "record" in r):
                meta = rule["expr"].startswith("vector(")
                base = {"__name__": rule["record"], **rule["labels"]}
                for region in [None] if meta else list(REGIONS):
                    labels.append(
                        labels_from(base if region is None else {**base, "region": region})
                    )
                    const.append(meta)
    return Group(
        name="slo:* series", labels=labels, interval_ms=M, counters=False, const=tuple(const)
    )


def input_group(slos: list[SLO]) -> Group:
    """The SLIs' counters, as the demo's regions export them (and the scrape labels them)."""
    names = sli_metric_names(slos)
    cat = catalogue.load()
    labels: list[Labels] = []
    for region, instance in REGIONS.items():
        registry = CollectorRegistry()
        metrics = RegionMetrics(region, registry)
        metrics.preset(cat.region(region).providers)
        for op in WALLET_OPERATIONS:  # histogram series exist once something is observed
            metrics.wallet_call(op, "ok", 0.01)
        for family in registry.collect():
            for sample in family.samples:
                if sample.name in names:
                    scrape = {"job": "region", "instance": instance}
                    labels.append(labels_from({**sample.labels, **scrape, "__name__": sample.name}))
    return Group(name="SLI inputs (counters)", labels=labels, interval_ms=S, counters=True)


def synthesise(
    group: Group, start: int, end: int, state: np.ndarray, rng: np.random.Generator
) -> SeriesBatch:
    """The group's samples in (start, end]; `state` carries counters across calls."""
    t = np.arange(start + group.interval_ms, end + 1, group.interval_ms, dtype=np.int64) - 37
    n, k = len(group.labels), len(t)
    if group.counters:
        rates = np.linspace(0.02, 4.0, n)[:, None] * group.interval_ms / S
        values = state[:, None] + np.cumsum(rng.poisson(rates, (n, k)), axis=1)
        state[:] = values[:, -1]
    else:
        values = rng.random((n, k)) * 0.003 + state[:, None]
        values[np.array(group.const, bool)] = 0.995
    return SeriesBatch(
        labels=group.labels,
        timestamps=np.tile(t, n),
        values=values.astype(np.float64).ravel(),
        offsets=np.arange(n + 1, dtype=np.int64) * k,
    )


def build_tier(
    groups: list[Group], config: HistoryConfig, start_ms: int, end_ms: int
) -> tuple[History, dict[str, float], list[np.ndarray]]:
    """The groups' samples in (start_ms, end_ms] through the tier's downsampling, an hour at
    a time; also the counters' values at the end, to carry on from."""
    rng = np.random.default_rng(1)
    states = [np.zeros(len(g.labels)) for g in groups]
    history = History(config)
    trim()
    before, cpu, absorb_s = rss_bytes(), time.process_time(), 0.0
    for start in range(start_ms, end_ms, H):
        for group, state in zip(groups, states, strict=True):
            batch = synthesise(group, start, start + H, state, rng)
            began = time.process_time()
            history.absorb(batch, bucket_end(start + H, RES))
            absorb_s += time.process_time() - began
        history.apply_retention(start + H)
    cpu = time.process_time() - cpu
    grown = rss_bytes() - before
    trim()
    figures = {"rss": grown, "rss_trim": rss_bytes() - before, "cpu": cpu, "absorb": absorb_s}
    return history, figures, states


def append_raw(store: Store, groups: list[Group], hours: int, states: list[np.ndarray]) -> None:
    """The last `hours` before END_MS appended raw, one append per scrape or evaluation."""
    rng = np.random.default_rng(2)
    refs = [np.array([store.series_ref(lb)[0] for lb in g.labels]) for g in groups]
    for hour in range(hours):
        start = END_MS - (hours - hour) * H
        for group, ref, state in zip(groups, refs, states, strict=True):
            batch = synthesise(group, start, start + H, state, rng)
            k = len(batch.timestamps) // len(ref)
            values = batch.values.reshape(len(ref), k)
            for i in range(k):
                store.append_many(ref, int(batch.timestamps[i]), values[:, i])


def raw_cost(group: Group, hours: int) -> tuple[float, int]:
    """Bytes per sample of the group's raw samples in closed blocks, and samples per day."""
    store = Store(retention_ms=(hours + 1) * H)
    append_raw(store, [group], hours, [np.zeros(len(group.labels))])
    stats = store.stats()
    return stats.block_bytes / max(stats.block_samples, 1), len(
        group.labels
    ) * DAY // group.interval_ms


def timed(run: object, repeat: int = 5) -> float:
    """Median wall-clock ms of `run()` over `repeat` runs."""
    assert callable(run)
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        run()
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


def queries(store: Store) -> list[tuple[str, float, int]]:
    """What the SLO page and the period rule run, over 30 days: (query, ms, points)."""
    engine = Engine(store)
    sel = 'slo_id="launches-launch-success", region="eu"'
    ranged = [
        f"slo:period_error_budget_remaining:ratio{{{sel}}}",
        f"1 - avg_over_time(slo:sli_error:ratio_rate5m{{{sel}}}[1h])",
    ]
    grid = 'slo:sli_error:ratio_rate5m{slo_id="launches-launch-success"}[30d:5m]'
    instant = [
        f"sum_over_time({grid}) / ignoring (slo_window) count_over_time({grid})",
        "sum by (region) (rate(casino_game_launches_total[30d])) * 2592000",
    ]
    out = []
    for expr in ranged:
        result = engine.range(expr, END_MS - 30 * DAY, END_MS, H)
        points = sum(len(s.timestamps) for s in result.matrix)
        out.append(
            (
                f"range 30d at 1h: `{expr}`",
                timed(lambda e=expr: engine.range(e, END_MS - 30 * DAY, END_MS, H)),
                points,
            )
        )
    for expr in instant:
        points = len(engine.instant(expr, END_MS).vector)
        out.append((f"instant: `{expr}`", timed(lambda e=expr: engine.instant(e, END_MS)), points))
    return out


@dataclass(frozen=True, kw_only=True)
class Row:
    group: Group
    samples: int  # kept by the tier
    bytes: int  # the tier's arrays
    figures: dict[str, float]
    raw_per_sample: float  # bytes, closed blocks
    raw_per_day: int  # samples


def measure_groups(groups: list[Group], config: HistoryConfig, days: int, hours: int) -> list[Row]:
    """Each group's tier on its own (so its memory is its own), and its raw cost."""
    rows = []
    for group in groups:
        tier, figures, _ = build_tier([group], config, END_MS - days * DAY, END_MS)
        stats = tier.stats()
        figures["rss_restored"] = restored_rss(tier, config)
        del tier
        per_sample, per_day = raw_cost(group, hours)
        rows.append(
            Row(group=group, samples=stats.samples, bytes=stats.bytes, figures=figures,
                raw_per_sample=per_sample, raw_per_day=per_day)
        )  # fmt: skip
    return rows


def restored_rss(tier: History, config: HistoryConfig) -> int:
    """Resident memory of the tier as a restart has it: its snapshot arrays (as the
    checkpoint writes them) loaded into a fresh tier, measured around the load alone."""
    buffer = io.BytesIO()
    savez(buffer, **tier.export_state())
    trim()
    before = rss_bytes()
    with np.load(io.BytesIO(buffer.getvalue()), allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    fresh = History(config)
    fresh.import_state(arrays)
    del arrays
    trim()
    grown = rss_bytes() - before
    del fresh
    return grown


def both_tiers(groups: list[Group], config: HistoryConfig, days: int, hours: int) -> Store:
    """A store holding the last `hours` raw and the days before in its tier, as one would
    after running that long (retention has put the raw floor where the raw samples start)."""
    tier, _, states = build_tier(groups, config, END_MS - days * DAY, END_MS - hours * H)
    store = Store(retention_ms=hours * H, history=tier)
    append_raw(store, groups, hours, states)
    store.apply_retention(END_MS)
    return store


def mib(n: float) -> str:
    return f"{n / 2**20:,.1f}"


def table(rows: list[Row], days: int) -> list[str]:
    lines = [
        f"| series | count | sampled every | tier: samples ({days} d) | tier: MiB | B/sample | "
        f"raw {days} d: MiB | raw: B/sample | raw 1 d (kept anyway): MiB | raw / tier |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in [*rows, None]:
        part = rows if r is None else [r]
        samples, size = sum(x.samples for x in part), sum(x.bytes for x in part)
        raw_day = sum(x.raw_per_day * x.raw_per_sample for x in part)
        name = "**total**" if r is None else r.group.name
        every = "" if r is None else f"{r.group.interval_ms // S} s"
        lines.append(
            f"| {name} | {sum(len(x.group.labels) for x in part)} | {every} | {samples:,} | "
            f"{mib(size)} | {size / samples:.2f} | {mib(raw_day * days)} | "
            f"{raw_day / sum(x.raw_per_day for x in part):.2f} | {mib(raw_day)} | "
            f"{raw_day * days / size:,.0f}x |"
        )
    return lines


def load_average() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


def report(days: int, hours: int) -> str:
    load = load_average()
    slos = [slo for spec in load_specs(ROOT / "rules" / "slo") for slo in spec.slos]
    groups = [slo_group(slos), input_group(slos)]
    config = HistoryConfig(names=sli_metric_names(slos), resolution_ms=RES, retention_ms=days * DAY)
    rows = measure_groups(groups, config, days, hours)
    timings = queries(both_tiers(groups, config, days, hours))
    lines = [
        f"Measured by `benchmarks/history.py` on {machine(dated=True)}; 1-minute load average "
        f"{load} at the start, {load_average()} at the end (other work shares the machine: "
        "query times are wall clock).",
        f"Settings: the shipped SLO specs ({len(slos)} SLOs, regions eu and latam) and the "
        f"series their SLIs read; {days} days (the 30-day window + the default 1-day margin) "
        "through the tier at `store.history_resolution: 5m`; the raw alternative measured "
        f"over {hours} h of raw samples in the store's closed blocks and scaled to {days} days.",
        "",
        *table(rows, days),
        "",
    ]
    for r in rows:
        f = r.figures
        lines.append(
            f"- {r.group.name}: resident {mib(f['rss_restored'])} MiB once restored from its "
            f"snapshot (arrays {mib(r.bytes)} MiB, plus the label index); while it was built, "
            f"RSS grew {mib(f['rss'])} MiB, {mib(f['rss_trim'])} MiB after `malloc_trim` "
            f"(the synthesised raw hours' leftovers included); downsampling took "
            f"{f['absorb'] / days * 1000:,.0f} ms CPU per day of raw samples."
        )
    lines += ["", f"| over 30 days ({hours} h raw, the tier before) | median ms | points |",
              "|---|---:|---:|"]  # fmt: skip
    lines += [f"| {q} | {ms:,.1f} | {n:,} |" for q, ms, n in timings]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=int, default=31, help="kept in the tier")
    parser.add_argument("--raw-hours", type=int, default=6, help="raw samples measured")
    parser.add_argument("--no-write", action="store_true", help="print, do not write")
    args = parser.parse_args()
    body = report(args.days, args.raw_hours)
    print(body)
    if not args.no_write:
        heading = "### Long windows: the store's long-term tier (`benchmarks/history.py`)"
        write_section(ROOT / "BENCHMARKS.md", MARKERS, body, heading)


if __name__ == "__main__":
    main()
