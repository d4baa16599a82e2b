"""The Prometheus-compatible read API: /api/v1/query, query_range, series, labels,
label/<name>/values, targets, targets/metadata, metadata and status/buildinfo, answered in
Prometheus's JSON (the first four GET or POST, form-encoded; the others GET, as Prometheus).
In remote mode the last four pass the remote's own answers through (`Upstream`).

Errors are `{"status": "error", "errorType", "error"}` with Prometheus's status codes:
bad_data 400, execution 422, timeout 503, internal 500; and unavailable 503 with Retry-After
when `max_concurrency` queries already run (Prometheus queues them instead: a queue would hold
server threads, and /healthz, rules and the Slack endpoint need some).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol, runtime_checkable

from flask import Blueprint, Response, request
from werkzeug.exceptions import HTTPException

from controlplane.api import encode, params, status
from controlplane.api.status import BuildInfo, MetadataLister, NoMetadata, Upstream
from controlplane.api.targets import TargetLister, targets_data
from controlplane.errors import QueryError, StoreError
from controlplane.promql.catalog import Catalog
from controlplane.promql.limits import ParseLimits
from controlplane.promql.results import Querier

log = logging.getLogger(__name__)
STATUS = {
    "bad_data": 400,
    "not_found": 404,
    "canceled": 499,
    "execution": 422,
    "internal": 500,
    "unavailable": 503,
    "timeout": 503,
}
METHODS = ["GET", "POST"]
_PARSE_ERROR = re.compile(r"^\d+:\d+: parse error")
# a refused query is cheap to retry: slots free up as fast as queries finish
RETRY_AFTER_S = 1


class TooManyQueries(QueryError):
    """Every query slot is taken: unavailable, 503 with Retry-After."""

    error_type = "unavailable"


class QueryGate:
    """At most `limit` queries at once (None: no limit); one more is refused at once."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self._slots = threading.BoundedSemaphore(limit) if limit else None

    @contextmanager
    def slot(self) -> Iterator[None]:
        if self._slots is None:
            yield
            return
        if not self._slots.acquire(blocking=False):
            raise TooManyQueries(
                f"too many concurrent queries: all {self.limit} slots are taken "
                "(query.max_concurrency); retry later"
            )
        try:
            yield
        finally:
            self._slots.release()


@runtime_checkable
class TimeoutQuerier(Protocol):
    """A Querier that can honour a per-request `timeout` (the API's `timeout` parameter)."""

    def with_timeout(self, timeout_s: float) -> Querier: ...


def json_response(body: Any, status: int = 200) -> Response:
    return Response(
        json.dumps(body, separators=(",", ":")), status=status, mimetype="application/json"
    )


def error_response(error_type: str, message: str) -> Response:
    return json_response(encode.error(error_type, message), STATUS.get(error_type, 500))


def _form() -> dict[str, str]:
    """First value of each parameter, body before URL as Go's Request.FormValue does."""
    merged = {key: values[0] for key, values in request.args.lists() if values}
    merged.update({key: values[0] for key, values in request.form.lists() if values})
    return merged


def _matches() -> list[str]:
    return request.form.getlist("match[]") + request.args.getlist("match[]")


def create_blueprint(
    *,
    querier: Querier,
    catalog: Catalog,
    targets: TargetLister,
    clock: Callable[[], float] = time.time,
    upstream: Upstream | None = None,
    metadata: MetadataLister | None = None,
    build: BuildInfo | None = None,
    max_concurrency: int | None = None,
    parse_limits: ParseLimits | None = None,
) -> Blueprint:
    """`querier` answers PromQL (embedded engine or remote); `catalog` the metadata
    endpoints; `targets` the scrape manager's view; `clock` is the default query time.
    `max_concurrency` bounds the queries (query, query_range) running at once (None: no
    bound); `parse_limits` bound the match[] selectors as the engine bounds queries.
    `upstream` (default: `catalog` when it is one, i.e. remote mode) answers buildinfo,
    metadata and targets instead; `metadata` (default: `targets` when it is a
    MetadataLister) the metric metadata; `build` (default: the installed package) buildinfo."""
    if upstream is None and isinstance(catalog, Upstream):
        upstream = catalog
    if metadata is None:
        metadata = targets if isinstance(targets, MetadataLister) else NoMetadata()
    api = PrometheusAPI(
        querier=querier,
        catalog=catalog,
        targets=targets,
        clock=clock,
        upstream=upstream,
        metadata=metadata,
        build=build or status.installed_build_info(),
        gate=QueryGate(max_concurrency),
        parse_limits=parse_limits or ParseLimits(),
    )
    bp = Blueprint("prometheus_api", __name__, url_prefix="/api/v1")
    bp.add_url_rule("/query", view_func=api.query, methods=METHODS)
    bp.add_url_rule("/query_range", view_func=api.query_range, methods=METHODS)
    bp.add_url_rule("/series", view_func=api.series, methods=METHODS)
    bp.add_url_rule("/labels", view_func=api.labels, methods=METHODS)
    bp.add_url_rule("/label/<name>/values", view_func=api.label_values, methods=["GET"])
    bp.add_url_rule("/targets", view_func=api.targets, methods=["GET"])
    bp.add_url_rule("/targets/metadata", view_func=api.target_metadata, methods=["GET"])
    bp.add_url_rule("/metadata", view_func=api.metadata, methods=["GET"])
    bp.add_url_rule("/status/buildinfo", view_func=api.buildinfo, methods=["GET"])
    bp.register_error_handler(TooManyQueries, _too_many_queries)
    bp.register_error_handler(QueryError, _query_error)
    bp.register_error_handler(StoreError, _store_error)
    bp.register_error_handler(HTTPException, _http_error)
    bp.register_error_handler(Exception, _unexpected)
    return bp


class PrometheusAPI:
    """The views; each reads the request's form (GET query string or POST body)."""

    def __init__(
        self,
        *,
        querier: Querier,
        catalog: Catalog,
        targets: TargetLister,
        clock: Callable[[], float],
        upstream: Upstream | None,
        metadata: MetadataLister,
        build: BuildInfo,
        gate: QueryGate,
        parse_limits: ParseLimits,
    ) -> None:
        self._querier = querier
        self._catalog = catalog
        self._targets = targets
        self._clock = clock
        self._upstream = upstream
        self._metadata = metadata
        self._build = build
        self._gate = gate
        self._limits = parse_limits

    def _bounded(self, form: dict[str, str]) -> Querier:
        timeout_ms = params.duration_param(form, "timeout")
        if timeout_ms is not None and isinstance(self._querier, TimeoutQuerier):
            return self._querier.with_timeout(timeout_ms / 1000)
        return self._querier

    def query(self) -> Response:
        form = _form()
        expr = params.query_param(form)
        at = params.time_param(form, "time", round(self._clock() * 1000))
        with self._gate.slot():  # encoding a large result is part of the work
            result = _as_bad_data(lambda: self._bounded(form).instant(expr, at))
            return json_response(encode.success(encode.result_data(result), result.warnings))

    def query_range(self) -> Response:
        form = _form()
        expr = params.query_param(form)
        span = params.range_params(form)
        with self._gate.slot():
            result = _as_bad_data(
                lambda: self._bounded(form).range(expr, span.start_ms, span.end_ms, span.step_ms)
            )
            return json_response(encode.success(encode.result_data(result), result.warnings))

    def series(self) -> Response:
        form, matches = _form(), _matches()
        if not matches:
            raise params.BadData("no match[] parameter provided")
        selectors = params.selectors_param(matches, self._limits)
        start, end = _span(form)
        limit = params.limit_param(form)
        found = self._catalog.series(selectors, start, end, limit + 1 if limit else 0)
        return _limited([dict(labels) for labels in found], limit)

    def labels(self) -> Response:
        form = _form()
        selectors = params.selectors_param(_matches(), self._limits)
        start, end = _span(form)
        found = self._catalog.label_names(selectors, start, end)
        return _limited(found, params.limit_param(form))

    def label_values(self, name: str) -> Response:
        form = _form()
        params.label_name_param(name)
        selectors = params.selectors_param(_matches(), self._limits)
        start, end = _span(form)
        found = self._catalog.label_values(name, selectors, start, end)
        return _limited(found, params.limit_param(form))

    def _passed(self, path: str, names: tuple[str, ...]) -> Response | None:
        """The upstream's own answer to GET `path` with the request's `names` parameters,
        or None in embedded mode."""
        if self._upstream is None:
            return None
        form = {name: request.args[name] for name in names if name in request.args}
        data, warnings = self._upstream.api_get(path, form)
        return json_response(encode.success(data, warnings))

    def targets(self) -> Response:
        passed = self._passed("targets", ("state", "scrapePool"))
        if passed is not None:
            return passed
        state = request.args.get("state", "").lower()
        pool = request.args.get("scrapePool", "")
        found = [t for t in self._targets.statuses() if not pool or t[0].job == pool]
        return json_response(encode.success(targets_data(found, state)))

    def target_metadata(self) -> Response:
        passed = self._passed("targets/metadata", ("match_target", "metric", "limit"))
        if passed is not None:
            return passed
        limit = status.int_param(request.args, "limit")
        text = request.args.get("match_target", "")
        selectors = params.parse_selector(text, "match_target", self._limits) if text else []
        data = status.target_metadata_data(
            self._metadata.metadata(),
            selectors=selectors,
            metric=request.args.get("metric", ""),
            limit=limit,
        )
        return json_response(encode.success(data))

    def metadata(self) -> Response:
        passed = self._passed("metadata", ("metric", "limit", "limit_per_metric"))
        if passed is not None:
            return passed
        data = status.metadata_data(
            self._metadata.metadata(),
            metric=request.args.get("metric", ""),
            limit=status.int_param(request.args, "limit"),
            limit_per_metric=status.int_param(request.args, "limit_per_metric"),
        )
        return json_response(encode.success(data))

    def buildinfo(self) -> Response:
        passed = self._passed("status/buildinfo", ())
        if passed is not None:
            return passed
        return json_response(encode.success(self._build.data()))


def _query_error(exc: QueryError) -> Response:
    return error_response(exc.error_type, str(exc))


def _too_many_queries(exc: TooManyQueries) -> Response:
    response = error_response(exc.error_type, str(exc))
    response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return response


def _store_error(exc: StoreError) -> Response:
    return error_response("internal", str(exc))


def _http_error(exc: HTTPException) -> Response:
    # e.g. a malformed form body: still the Prometheus error shape
    kind = "bad_data" if (exc.code or 500) < 500 else "internal"
    return error_response(kind, exc.description or str(exc))


def _unexpected(exc: Exception) -> Response:
    log.exception("%s %s failed", request.method, request.path)
    return error_response("internal", f"{type(exc).__name__}: {exc}")


def _as_bad_data(run: Callable[[], Any]) -> Any:
    """Run a query; a parse error becomes Prometheus's `invalid parameter "query": 1:5:
    parse error: ...` (other bad_data, e.g. a range vector in a range query, stays as is)."""
    try:
        return run()
    except params.BadData:
        raise
    except QueryError as exc:
        if exc.error_type == "bad_data" and _PARSE_ERROR.match(str(exc)):
            raise params.invalid("query", str(exc)) from exc
        raise


def _span(form: dict[str, str]) -> tuple[int, int]:
    start = params.time_param(form, "start", params.MIN_TIME_MS)
    end = params.time_param(form, "end", params.MAX_TIME_MS)
    return start, end


def _limited(items: list[Any], limit: int) -> Response:
    if limit and len(items) > limit:
        return json_response(encode.success(items[:limit], ["results truncated due to limit"]))
    return json_response(encode.success(items))
