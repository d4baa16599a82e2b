"""/api/v1/status/buildinfo, /api/v1/metadata and /api/v1/targets/metadata, in Prometheus's
JSON shape: the endpoints Grafana's Prometheus data source probes besides queries.

Embedded mode answers from the scrape manager (what each target's last good body said in its
`# TYPE` / `# HELP` / `# UNIT` lines); remote mode passes the remote's own answers through an
`Upstream` (controlplane.remote.prometheus.RemotePrometheus).
"""

from __future__ import annotations

import importlib.metadata
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from controlplane.api.params import BadData
from controlplane.collect.exposition import MetricMetadata
from controlplane.collect.scrape import ScrapeTarget
from controlplane.model.series import Matcher

DISTRIBUTION = "casino-controlplane"
APPLICATION = "casino-controlplane"
# Grafana reads `version` as the Prometheus version it talks to (semver) and turns API features
# on by it, so `version` says which Prometheus we answer like: 2.45 is the release whose read
# API (match[] on labels and label values, `limit`, metadata) ours covers.
PROMETHEUS_COMPAT_VERSION = "2.45.0"
_GO_INT = re.compile(r"^[+-]?[0-9]+$")

TargetMetadata = tuple[ScrapeTarget, Mapping[str, MetricMetadata]]


@runtime_checkable
class Upstream(Protocol):
    """A remote Prometheus-compatible API whose own answers are passed through."""

    def api_get(self, path: str, form: Mapping[str, str]) -> tuple[Any, tuple[str, ...]]: ...


@runtime_checkable
class MetadataLister(Protocol):
    """What ScrapeManager answers: each active target with its metric families' metadata."""

    def metadata(self) -> Sequence[TargetMetadata]: ...


class NoMetadata:
    """The metadata of a control plane that scrapes nothing."""

    def metadata(self) -> Sequence[TargetMetadata]:
        return ()


@dataclass(frozen=True, kw_only=True)
class BuildInfo:
    """`version` is ours (the installed distribution's)."""

    version: str

    def data(self) -> dict[str, str]:
        """Prometheus's six members, then ours. Prometheus's API promises only additions
        under /api/v1 and says the build properties "may change without notice"; Mimir adds
        `application` and `features` the same way, and clients (Grafana) read the members
        they know. `features` stays absent: its presence makes Grafana treat the server as
        Mimir/Cortex and probe a ruler API we do not have. The Go build fields are empty, as
        in a Prometheus built without release flags."""
        return {
            "version": PROMETHEUS_COMPAT_VERSION,
            "revision": "",
            "branch": "",
            "buildUser": "",
            "buildDate": "",
            "goVersion": "",
            "application": APPLICATION,
            "applicationVersion": self.version,
        }


def installed_build_info(distribution: str = DISTRIBUTION) -> BuildInfo:
    try:
        return BuildInfo(version=importlib.metadata.version(distribution))
    except importlib.metadata.PackageNotFoundError:  # running from a source tree
        return BuildInfo(version="unknown")


def int_param(form: Mapping[str, str], name: str) -> int:
    """An optional integer as Go's strconv.Atoi reads it; -1 when absent (no limit)."""
    text = form.get(name, "")
    if text == "":
        return -1
    if not _GO_INT.match(text) or abs(int(text)) >= 2**63:
        raise BadData(f"{name} must be a number")
    return int(text)


def _encode(meta: MetricMetadata) -> dict[str, str]:
    return {"type": meta.type, "help": meta.help, "unit": meta.unit}


def metadata_data(
    targets: Iterable[TargetMetadata], *, metric: str, limit: int, limit_per_metric: int
) -> dict[str, list[dict[str, str]]]:
    """/api/v1/metadata: per family name, the distinct metadata its targets expose. As in
    Prometheus, a negative limit is no limit and 0 answers nothing; where Prometheus keeps
    whichever families its map yields first, we keep the first by name."""
    found: dict[str, list[MetricMetadata]] = {}
    for _, families in targets:
        chosen = families.items() if not metric else [(metric, families.get(metric))]
        for name, meta in chosen:
            if meta is None:
                continue
            entries = found.setdefault(name, [])
            if 0 < limit_per_metric <= len(entries) or meta in entries:
                continue
            entries.append(meta)
    names = sorted(found)
    if limit >= 0:
        names = names[:limit]
    return {name: [_encode(m) for m in found[name]] for name in names}


def _selected(target: ScrapeTarget, selectors: Sequence[Sequence[Matcher]]) -> bool:
    labels = dict(target.target_labels())
    return not selectors or any(
        all(m.matches(labels.get(m.name, "")) for m in matchers) for matchers in selectors
    )


def target_metadata_data(
    targets: Iterable[TargetMetadata],
    *,
    selectors: Sequence[Sequence[Matcher]],
    metric: str,
    limit: int,
) -> list[dict[str, Any]]:
    """/api/v1/targets/metadata: one entry per (target, family). As in Prometheus, `limit`
    is checked before each target, so a target's families are never split."""
    out: list[dict[str, Any]] = []
    for target, families in targets:
        if 0 <= limit <= len(out):
            break
        if not _selected(target, selectors):
            continue
        where = dict(target.target_labels())
        if not metric:
            out.extend({"target": where, "metric": n, **_encode(m)} for n, m in families.items())
        elif metric in families:
            out.append({"target": where, **_encode(families[metric])})
    return out
