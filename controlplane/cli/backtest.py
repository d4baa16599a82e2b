"""replay recorded telemetry through rules and runbooks: what would have fired and acted

    controlplane backtest --from export.npz --rules rules/ [--runbooks runbooks/ | --no-runbooks]
    controlplane backtest --from http://prometheus:9090 --start 2024-05-01T10:00:00Z \\
        --end 2024-05-01T12:00:00Z [--step 15s] [--json]

`--from` is a store export (Store.export_range) or the base URL of a Prometheus-compatible
API, from which the raw samples of the metrics the rules read are fetched in chunks (a
range-vector selector per metric at successive times; see `fetch_prometheus`). Prints, per
alerting rule and per alert, when it went pending, fired and resolved (UTC and the offset from
the start), then what the runbooks would have done with the alerts that fired (see
backtestplan.py; `--runbooks` defaults to the config's runbooks directory, skipped when that
does not exist), then a summary; `--json` prints the same as one JSON document. A progress bar
goes to stderr when the replay takes more than a moment. Any problem (unreadable file,
unreachable or non-Prometheus URL, bad rules, bad config) is one line per problem on stderr and
exit code 1; a malformed runbook file is exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from controlplane.api.params import parse_duration_ms
from controlplane.backtest.fetch import (
    fetch_prometheus,
)
from controlplane.backtest.plan import PlannedRun, fired_episodes, plan
from controlplane.backtest.planview import plan_json, plan_lines
from controlplane.backtest.progress import ProgressBar, _bar, _quiet
from controlplane.backtest.replay import (
    BacktestReport,
    Episode,
    EpisodeStatus,
    replay,
)
from controlplane.cli.query import parse_when
from controlplane.config import Config, load_config
from controlplane.errors import ConfigError, ControlPlaneError
from controlplane.model.series import (
    Labels,
    SeriesBatch,
)
from controlplane.model.times import format_duration, iso
from controlplane.remote.prometheus import RemotePrometheus
from controlplane.rules.load import RuleFileError, load_files, rule_files
from controlplane.rules.model import RuleGroup
from controlplane.runbooks.load import load_runbook, load_runbooks
from controlplane.runbooks.model import Runbook
from controlplane.tsdb import export

DEFAULT_URL_RANGE_MS = 3_600_000
PREFIX = "controlplane backtest"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--from", dest="source", required=True, metavar="FILE_OR_URL",
        help="store export file, or a Prometheus-compatible API base URL",
    )  # fmt: skip
    parser.add_argument(
        "--rules", nargs="+", default=["rules"], metavar="DIR_OR_FILE",
        help="rule files or directories (default: rules)",
    )  # fmt: skip
    parser.add_argument(
        "--start", help="RFC3339, unix seconds or now-2h (default: the export's first sample; "
        "for a URL, end - 1h)",
    )  # fmt: skip
    parser.add_argument(
        "--end", help="RFC3339, unix seconds or now (default: the export's last sample; for a "
        "URL, now)",
    )  # fmt: skip
    parser.add_argument(
        "--interval", "--step", dest="interval",
        help="evaluate every group at this interval instead of its own, e.g. 15s",
    )  # fmt: skip
    parser.add_argument("--lookback", default="5m", help="PromQL lookback delta (default 5m)")
    parser.add_argument("--timeout", default="2m", help="per request to a URL (default 2m)")
    parser.add_argument(
        "--stepwise", action="store_true",
        help="evaluate group by group at every step, as live (slow; used anyway when the "
        "rules need it)",
    )  # fmt: skip
    parser.add_argument(
        "--runbooks", metavar="DIR_OR_FILE",
        help="runbooks to plan with the alerts that fired (default: the config's runbooks_dir)",
    )  # fmt: skip
    parser.add_argument("--no-runbooks", action="store_true", help="report alerts only")
    parser.add_argument(
        "--config", default=None,
        help="control plane config, for runbooks_dir and the automation budget "
        "(default $CONTROLPLANE_CONFIG)",
    )  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def run(
    args: argparse.Namespace,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
    clock: Callable[[], float] = time.time,
    monotonic: Callable[[], float] = time.monotonic,
) -> int:
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    try:
        config = None if args.no_runbooks else load_config(args.config)
    except ConfigError as exc:
        print(f"{PREFIX}: {exc}", file=err)
        return 1
    try:  # before the replay, which may be long: a broken runbook is found at once
        planning = _planning(args, config)
    except ConfigError as exc:
        print(f"{PREFIX}: {exc}", file=err)
        return 2
    try:
        report = _backtest(args, err, clock, monotonic)
    except RuleFileError as exc:
        for problem in exc.problems:
            print(f"{PREFIX}: {problem}", file=err)
        return 1
    except (ControlPlaneError, ValueError) as exc:
        print(f"{PREFIX}: {exc}", file=err)
        return 1
    _print(args, report, planning, out)
    return 0


@dataclass(frozen=True, kw_only=True)
class _Planning:
    directory: str
    runbooks: tuple[Runbook, ...]
    budget: tuple[int, float]  # automated actions per window (s), from the config


def _planning(args: argparse.Namespace, config: Config | None) -> _Planning | None:
    """The runbooks to plan with; none with --no-runbooks, or when the config's default
    directory is not there (an explicit --runbooks must be)."""
    if config is None:
        return None
    path = Path(args.runbooks) if args.runbooks else config.runbooks_dir
    if not path.exists():
        if args.runbooks:
            raise ConfigError(f"{args.runbooks!r}: no such runbook file or directory")
        return None
    return _Planning(
        directory=str(path),
        runbooks=tuple(load_runbooks(path) if path.is_dir() else [load_runbook(path)]),
        budget=(config.automation.budget_max_actions, config.automation.budget_window_s),
    )


def _print(
    args: argparse.Namespace, report: BacktestReport, planning: _Planning | None, out: TextIO
) -> None:
    runs: tuple[PlannedRun, ...] | None = None
    section: list[str] = []
    if planning is not None:
        max_actions, window_s = planning.budget
        runs = plan(
            fired_episodes(report),
            planning.runbooks,
            end_ms=report.end_ms,
            budget_max_actions=max_actions,
            budget_window_s=window_s,
        )
        section = plan_lines(
            runs, planning.runbooks, report, directory=planning.directory, budget=planning.budget
        )
    if args.json:
        body = report_json(report, source=args.source, rules=args.rules)
        summary_ = body.pop("summary")
        body["runbooks_dir"] = planning.directory if planning else None
        body["runbooks"] = None if runs is None else plan_json(runs, report.start_ms)
        body["summary"] = summary_
        print(json.dumps(body, indent=2), file=out)
        return
    for line in render(report, source=args.source, rules=args.rules, before_summary=section):
        print(line, file=out)


def _backtest(
    args: argparse.Namespace,
    err: TextIO,
    clock: Callable[[], float],
    monotonic: Callable[[], float],
) -> BacktestReport:
    files, _ = rule_files(args.rules)
    if not files:
        raise ValueError(f"no rule files in {' '.join(args.rules)!r}")
    groups = load_files(files)
    lookback_ms = parse_duration_ms(args.lookback)
    bar = None if args.no_progress else ProgressBar(err, clock=monotonic)
    batch, start_ms, end_ms = _samples(args, groups, round(clock() * 1000), lookback_ms, bar)
    if end_ms < start_ms:
        raise ValueError(f"the range ends ({iso(end_ms)}) before it starts ({iso(start_ms)})")
    with _bar(bar, "replaying") as progress, _quiet("controlplane.rules.group"):
        return replay(
            groups,
            batch,
            start_ms=start_ms,
            end_ms=end_ms,
            interval_ms=parse_duration_ms(args.interval) if args.interval else None,
            lookback_ms=lookback_ms,
            stepwise=args.stepwise,
            progress=progress,
        )


def _samples(
    args: argparse.Namespace,
    groups: Sequence[RuleGroup],
    now_ms: int,
    lookback_ms: int,
    bar: ProgressBar | None,
) -> tuple[SeriesBatch, int, int]:
    """The samples to replay and the range: from the URL, or from the export file (whose
    first and last samples are the default range)."""
    if args.source.startswith(("http://", "https://")):
        end_ms = parse_when(args.end, now_ms) if args.end else now_ms
        start_ms = parse_when(args.start, now_ms) if args.start else end_ms - DEFAULT_URL_RANGE_MS
        client = RemotePrometheus(args.source, timeout_s=parse_duration_ms(args.timeout) / 1000)
        try:
            with _bar(bar, "fetching") as progress:
                batch = fetch_prometheus(
                    client, groups, start_ms, end_ms, lookback_ms=lookback_ms, progress=progress
                )
        finally:
            client.close()
        return batch, start_ms, end_ms
    batch = export.read_export(Path(args.source))
    if not len(batch.timestamps) and not (args.start and args.end):
        raise ValueError(f"{args.source!r} holds no samples; give --start and --end")
    start_ms = parse_when(args.start, now_ms) if args.start else int(batch.timestamps.min())
    end_ms = parse_when(args.end, now_ms) if args.end else int(batch.timestamps.max())
    return batch, start_ms, end_ms


_MOMENTS = (
    ("pending", "pending_at_ms"),
    ("firing", "firing_at_ms"),
    ("resolved", "resolved_at_ms"),
    ("cancelled", "cancelled_at_ms"),
)


def _labels_text(labels: Labels) -> str:
    inner = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in labels)
    return "{" + inner + "}"


def _offset(report: BacktestReport, t_ms: int) -> str:
    delta = t_ms - report.start_ms
    return ("-" if delta < 0 else "+") + format_duration(abs(delta) / 1000)


def summary(report: BacktestReport) -> dict[str, int]:
    episodes = [e for r in report.rules for a in r.alerts for e in a.episodes]
    statuses = [e.status for e in episodes]
    return {
        "alerting_rules": len(report.rules),
        "rules_fired": sum(
            any(e.firing_at_ms is not None for a in r.alerts for e in a.episodes)
            for r in report.rules
        ),
        "alerts": sum(len(r.alerts) for r in report.rules),
        "went_pending": len(episodes),
        "fired": sum(e.firing_at_ms is not None for e in episodes),
        "resolved": statuses.count(EpisodeStatus.RESOLVED),
        "cancelled": statuses.count(EpisodeStatus.CANCELLED),
        "firing_at_end": statuses.count(EpisodeStatus.FIRING),
        "pending_at_end": statuses.count(EpisodeStatus.PENDING),
    }


def _header(report: BacktestReport, source: str, rules: Sequence[str]) -> list[str]:
    span = format_duration((report.end_ms - report.start_ms) / 1000)
    every = (
        f"every {format_duration(report.interval_ms / 1000)}"
        if report.interval_ms
        else "each group at its interval"
    )
    how = "vectorised" if report.vectorised else f"stepwise: {report.stepwise_reason}"
    dropped = report.dropped_series
    left_out = f" ({dropped} series the rules write were left out)" if dropped else ""
    return [
        f"Backtest of {' '.join(rules)} on {source}",
        f"  {iso(report.start_ms)} .. {iso(report.end_ms)} ({span}), {every}",
        f"  {report.series} series, {report.samples} samples replayed{left_out};"
        f" {report.evaluations} rule evaluations ({how})",
    ]


def render(
    report: BacktestReport,
    *,
    source: str,
    rules: Sequence[str],
    before_summary: Sequence[str] = (),
) -> list[str]:
    lines = _header(report, source, rules)
    quiet = []
    for history in report.rules:
        if not history.alerts:
            quiet.append(history.rule.name)
            continue
        rule = history.rule
        lines += [
            "",
            f"{rule.name}  for {format_duration(rule.for_ms / 1000)}  [{history.group.name}]",
        ]
        for alert in history.alerts:
            lines.append("  " + _labels_text(tuple(p for p in alert.labels if p[0] != "alertname")))
            for episode in alert.episodes:
                lines.extend(_episode_lines(report, episode))
    if quiet:
        lines += ["", f"Never pending: {', '.join(quiet)}"]
    if report.errors:
        lines += ["", "Rule errors:"]
        lines += [
            f"  {e.group} / {e.rule}: {e.failures} failed evaluations, last: {e.last_error}"
            for e in report.errors
        ]
    lines += before_summary
    s = summary(report)
    lines += [
        "",
        f"Summary: {s['alerting_rules']} alerting rules, {s['rules_fired']} fired;"
        f" {s['alerts']} alerts went pending {s['went_pending']} times, fired {s['fired']},"
        f" resolved {s['resolved']}, cancelled {s['cancelled']};"
        f" at the end {s['firing_at_end']} firing, {s['pending_at_end']} pending",
    ]  # fmt: skip
    return lines


def _episode_lines(report: BacktestReport, episode: Episode) -> list[str]:
    lines = []
    for word, attr in _MOMENTS:
        t_ms = getattr(episode, attr)
        if t_ms is not None:
            lines.append(f"    {word:<9} {iso(t_ms)}  {_offset(report, t_ms)}")
    if episode.status in (EpisodeStatus.FIRING, EpisodeStatus.PENDING):
        lines.append(f"    (still {episode.status.value} at the end)")
    return lines


def report_json(report: BacktestReport, *, source: str, rules: Sequence[str]) -> dict[str, Any]:
    def moments(e: Episode) -> dict[str, Any]:
        body: dict[str, Any] = {"status": e.status.value}
        for word, attr in _MOMENTS:
            t_ms = getattr(e, attr)
            body[f"{word}_at"] = iso(t_ms) if t_ms is not None else None
            body[f"{word}_offset_s"] = (t_ms - report.start_ms) / 1000 if t_ms is not None else None
        return body

    return {
        "source": source,
        "rules": list(rules),
        "start": iso(report.start_ms),
        "end": iso(report.end_ms),
        "interval_s": report.interval_ms / 1000 if report.interval_ms else None,
        "series": report.series,
        "samples": report.samples,
        "dropped_series": report.dropped_series,
        "evaluations": report.evaluations,
        "vectorised": report.vectorised,
        "stepwise_reason": report.stepwise_reason or None,
        "alerting_rules": [
            {
                "alert": h.rule.name,
                "group": h.group.name,
                "file": h.group.file,
                "for_s": h.rule.for_ms / 1000,
                "keep_firing_for_s": h.rule.keep_firing_for_ms / 1000,
                "alerts": [
                    {"labels": dict(a.labels), "episodes": [moments(e) for e in a.episodes]}
                    for a in h.alerts
                ],
            }
            for h in report.rules
        ],
        "errors": [
            {"group": e.group, "rule": e.rule, "failures": e.failures, "last_error": e.last_error}
            for e in report.errors
        ],
        "summary": summary(report),
    }
