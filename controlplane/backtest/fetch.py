"""Reading raw samples for a backtest from a Prometheus-compatible API, chunked so no
request asks for too much, with staleness markers restored after gaps."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from controlplane.backtest.progress import Progress
from controlplane.backtest.reads import (
    DEFAULT_LOOKBACK_MS,
    produced_names,
    reads,
)
from controlplane.model.series import (
    METRIC_NAME,
    STALE_NAN,
    Labels,
    Matcher,
    MatchOp,
    Series,
    SeriesBatch,
)
from controlplane.promql.memsource import MemorySource
from controlplane.promql.results import QueryResult
from controlplane.rules.model import RuleGroup

MAX_CHUNK_MS = 3_600_000
MIN_CHUNK_MS = 60_000
MAX_REQUEST_SAMPLES = 250_000


class PrometheusReader(Protocol):
    """What fetching needs of the API client (controlplane.remote.prometheus.RemotePrometheus)."""

    def instant(self, expr: str, time_ms: int) -> QueryResult: ...

    def series(
        self, selectors: Sequence[Sequence[Matcher]], start_ms: int, end_ms: int, limit: int = 0
    ) -> list[Labels]: ...


def fetch_prometheus(
    client: PrometheusReader,
    groups: Sequence[RuleGroup],
    start_ms: int,
    end_ms: int,
    *,
    lookback_ms: int = DEFAULT_LOOKBACK_MS,
    max_chunk_ms: int = MAX_CHUNK_MS,
    max_request_samples: int = MAX_REQUEST_SAMPLES,
    progress: Progress | None = None,
) -> SeriesBatch:
    """Raw samples of what the rules read (one selector per metric name; the rules' own
    output is not fetched), from as far before `start` as they look back, to `end`.

    Chunks are sized for about `max_request_samples` samples a request, assuming a sample a
    second per series; the API leaves staleness markers out, so `mark_gaps` puts them back."""
    produced = produced_names(groups)
    wanted: dict[tuple[Matcher, ...], None] = {}
    back, forward = lookback_ms, 0
    for read in (r for g in groups for rule in g.rules for r in reads(rule.expr, lookback_ms)):
        back, forward = max(back, read.back_ms), max(forward, read.forward_ms)
        name = read.name
        if name not in produced:
            key = (Matcher(name=METRIC_NAME, op=MatchOp.EQ, value=name),) if name else read.matchers
            wanted.setdefault(key, None)
    lo, hi = start_ms - back, end_ms + forward
    parts: list[Series] = []
    for done, matchers in enumerate(wanted, 1):
        count = len(client.series([matchers], lo, hi))
        if count:
            chunk = max(MIN_CHUNK_MS, min(max_chunk_ms, max_request_samples * 1000 // count))
            text = "{" + ",".join(f"{m.name}{m.op.value}{json.dumps(m.value)}" for m in matchers)
            for chunk_end in range(hi, lo, -chunk):
                found = client.instant(f"{text}}}[{min(chunk, chunk_end - lo)}ms]", chunk_end)
                parts.extend(s for s in found.matrix if len(s.timestamps))
        if progress is not None:
            progress(done, len(wanted))
    # merges the chunks of each series; a sample on a chunk boundary is kept once
    return mark_gaps(MemorySource(parts).select_batch([], lo, hi), hi)


def mark_gaps(batch: SeriesBatch, end_ms: int) -> SeriesBatch:
    """A staleness marker one usual spacing after each sample followed by a gap longer than
    twice the series' median spacing (or by `end_ms`), as the missed scrape would have
    written."""
    out = []
    for i in range(len(batch)):
        s = batch.series(i)
        if len(s.timestamps) < 3:
            out.append(s)
            continue
        step = int(np.median(np.diff(s.timestamps)))
        gaps = np.flatnonzero(np.diff(s.timestamps, append=end_ms) > 2 * step)
        out.append(
            Series(
                labels=s.labels,
                timestamps=np.insert(s.timestamps, gaps + 1, s.timestamps[gaps] + step),
                values=np.insert(s.values, gaps + 1, STALE_NAN),
            )
        )
    return SeriesBatch.from_series(out)


# -- progress -----------------------------------------------------------------------------------
