"""Remote mode: PromQL answered by any Prometheus-compatible HTTP API (Prometheus, Thanos,
Mimir, another control plane) instead of the embedded engine.

`RemotePrometheus` is a `Querier`, a metadata `Catalog`, and the `Upstream` whose own answers
/api/v1/status/buildinfo, metadata, targets and targets/metadata pass through. The remote's
errors come back as the same exceptions the embedded engine raises, with the remote's message:
bad_data -> ParseError, execution -> EvalError, timeout -> QueryTimeout. A remote that cannot be
reached or answers something that is not the Prometheus API is a `RemoteUnavailable`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import requests

from controlplane.errors import EvalError, ParseError, QueryError, QueryTimeout
from controlplane.model.series import Labels, Matcher, Series, labels_from
from controlplane.promql.catalog import MAX_TIME_MS, MIN_TIME_MS, Selectors
from controlplane.promql.results import InstantSample, QueryResult, ResultType

_ERRORS: dict[str, type[QueryError]] = {
    "bad_data": ParseError,
    "execution": EvalError,
    "timeout": QueryTimeout,
}


class RemoteUnavailable(QueryError):
    """The remote API could not be reached or did not answer in Prometheus's shape."""

    error_type = "unavailable"


def _seconds(t_ms: int) -> str:
    return str(t_ms // 1000) if t_ms % 1000 == 0 else repr(t_ms / 1000)


def selector_text(matchers: Sequence[Matcher]) -> str:
    """Matchers back into a series selector, `{__name__="up",job=~"a.*"}`."""
    inner = ",".join(f"{m.name}{m.op.value}{json.dumps(m.value)}" for m in matchers)
    return "{" + inner + "}"


class RemotePrometheus:
    """`url` is the API's base (`http://prometheus:9090`, no `/api/v1`); `session` is the
    HTTP client (closed by `close()` only when this object made it)."""

    def __init__(
        self,
        url: str,
        *,
        session: requests.Session | None = None,
        timeout_s: float = 120.0,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self._owns_session = session is None
        self._session = session if session is not None else requests.Session()
        self.timeout_s = timeout_s
        self._headers = dict(headers or {})

    def close(self) -> None:
        if self._owns_session:
            self._session.close()

    def with_timeout(self, timeout_s: float) -> RemotePrometheus:
        clone = RemotePrometheus(
            self.url,
            session=self._session,
            timeout_s=min(timeout_s, self.timeout_s),
            headers=self._headers,
        )
        return clone

    def instant(self, expr: str, time_ms: int) -> QueryResult:
        data, warnings = self._call("query", {"query": expr, "time": _seconds(time_ms)})
        return decode_result(data, warnings)

    def range(self, expr: str, start_ms: int, end_ms: int, step_ms: int) -> QueryResult:
        form = {
            "query": expr,
            "start": _seconds(start_ms),
            "end": _seconds(end_ms),
            "step": _seconds(step_ms),
        }
        data, warnings = self._call("query_range", form)
        return decode_result(data, warnings)

    def series(
        self, selectors: Selectors, start_ms: int, end_ms: int, limit: int = 0
    ) -> list[Labels]:
        data, _ = self._call("series", self._meta_form(selectors, start_ms, end_ms))
        found = sorted(labels_from(item) for item in data)
        return found[:limit] if limit else found

    def label_names(self, selectors: Selectors, start_ms: int, end_ms: int) -> list[str]:
        data, _ = self._call("labels", self._meta_form(selectors, start_ms, end_ms))
        return sorted(str(name) for name in data)

    def label_values(
        self, name: str, selectors: Selectors, start_ms: int, end_ms: int
    ) -> list[str]:
        path = f"label/{name}/values"
        data, _ = self._call(path, self._meta_form(selectors, start_ms, end_ms), method="GET")
        return sorted(str(value) for value in data)

    def api_get(self, path: str, form: Mapping[str, str]) -> tuple[Any, tuple[str, ...]]:
        """GET /api/v1/`path` with `form` as the query string: the remote's `data` and
        warnings, as it answered them (its errors raised as above)."""
        return self._call(path, dict(form), method="GET")

    @staticmethod
    def _meta_form(selectors: Selectors, start_ms: int, end_ms: int) -> dict[str, Any]:
        form: dict[str, Any] = {"match[]": [selector_text(m) for m in selectors]}
        # the "no bound" defaults are ours: the remote has its own
        if start_ms != MIN_TIME_MS:
            form["start"] = _seconds(start_ms)
        if end_ms != MAX_TIME_MS:
            form["end"] = _seconds(end_ms)
        return form

    def _call(
        self, path: str, form: dict[str, Any], method: str = "POST"
    ) -> tuple[Any, tuple[str, ...]]:
        if path.startswith("query"):
            form = {**form, "timeout": f"{self.timeout_s:g}"}
        url = f"{self.url}/api/v1/{path}"
        try:
            response = self._session.request(
                method,
                url,
                data=form if method == "POST" else None,
                params=form if method == "GET" else None,
                headers=self._headers,
                # a little longer than the query's own timeout, so the remote says "timeout"
                timeout=(5.0, self.timeout_s + 5.0),
            )
        except requests.Timeout as exc:
            raise QueryTimeout(f"{url}: no answer within {self.timeout_s:g}s") from exc
        except requests.ConnectionError as exc:
            raise RemoteUnavailable(f"{url} did not answer: {_reason(exc)}") from exc
        except requests.RequestException as exc:
            raise RemoteUnavailable(f"{url}: {_reason(exc)}") from exc
        return _unwrap(url, response)


def _reason(exc: requests.RequestException) -> str:
    """The innermost cause in a few words (`connection refused`), not urllib3's pool story."""
    cause: BaseException = exc
    while cause.__cause__ is not None or cause.__context__ is not None:
        cause = cause.__cause__ or cause.__context__  # type: ignore[assignment]
    if isinstance(cause, OSError) and cause.strerror:
        return cause.strerror.lower()
    text = str(cause)
    return text.rsplit("] ", 1)[-1].lower() if "Errno" in text else text


def _unwrap(url: str, response: requests.Response) -> tuple[Any, tuple[str, ...]]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or body.get("status") not in ("success", "error"):
        raise RemoteUnavailable(
            f"{url}: HTTP {response.status_code}, not a Prometheus API answer: "
            f"{response.text[:200]!r}"
        )
    if body["status"] == "error":
        kind = _ERRORS.get(str(body.get("errorType")), RemoteUnavailable)
        raise kind(str(body.get("error", "")))
    return body.get("data"), tuple(str(w) for w in body.get("warnings") or ())


def _t_ms(seconds: Any) -> int:
    return round(float(seconds) * 1000)


def decode_result(data: Any, warnings: tuple[str, ...] = ()) -> QueryResult:
    """Prometheus's `data` member of a query answer into a QueryResult."""
    try:
        kind = ResultType(data["resultType"])
        result = data["result"]
        if kind is ResultType.VECTOR:
            return _decode_vector(result, warnings)
        if kind is ResultType.MATRIX:
            return _decode_matrix(result, warnings)
        t_ms, raw = _t_ms(result[0]), result[1]
        if kind is ResultType.SCALAR:
            scalar = InstantSample(labels=(), t_ms=t_ms, value=float(raw))
            return QueryResult(type=kind, scalar=scalar, t_ms=t_ms, warnings=warnings)
        return QueryResult(type=kind, text=str(raw), t_ms=t_ms, warnings=warnings)
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise RemoteUnavailable(f"malformed query result: {exc!r}: {str(data)[:200]}") from exc


def _decode_vector(items: list[dict[str, Any]], warnings: tuple[str, ...]) -> QueryResult:
    samples = []
    for item in items:
        if "value" not in item:
            # native histograms have no float value: say so rather than drop them silently
            warnings = (*warnings, "native histogram samples were left out")
            continue
        t, raw = item["value"]
        samples.append(
            InstantSample(labels=labels_from(item["metric"]), t_ms=_t_ms(t), value=float(raw))
        )
    return QueryResult(type=ResultType.VECTOR, vector=tuple(samples), warnings=warnings)


def _decode_matrix(items: list[dict[str, Any]], warnings: tuple[str, ...]) -> QueryResult:
    series = []
    for item in items:
        points = item.get("values") or []
        if "histograms" in item:
            warnings = (*warnings, "native histogram samples were left out")
        series.append(
            Series(
                labels=labels_from(item["metric"]),
                timestamps=np.array([_t_ms(t) for t, _ in points], dtype=np.int64),
                values=np.array([float(v) for _, v in points], dtype=np.float64),
            )
        )
    return QueryResult(type=ResultType.MATRIX, matrix=tuple(series), warnings=warnings)
