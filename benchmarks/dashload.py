"""Load every dashboard page as the browser does, over HTTP, timing the server and counting bytes.

For a page the browser fetches the HTML, `_dash-layout` (the shell) and `_dash-dependencies`,
fires Dash's page router (`_pages_content.children` from the location) to get the page's
layout, then fires every callback whose inputs are all present in the page. Here the same
requests go to the same endpoints: the callbacks fired are those whose inputs are the
refresh tick and the URL (`tick.n_intervals`, `url.search`, `url.pathname`), or what the
browser derives from them (the refresh beat a clientside callback passes on), and whose
outputs are in the shell or the page, so a page someone adds is measured without an edit.

Server time is measured inside the server (a WSGI wrapper around the Dash app, from the call
to the last byte of the body), so the HTTP client and the loopback do not count. Every PromQL
query a callback sends through the querier is recorded (`Recorder`), so the same queries can be
replayed against a peer.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import requests

from controlplane.promql.results import Querier, QueryResult

URL_INPUTS = {("tick", "n_intervals"), ("url", "search"), ("url", "pathname")}
ROUTER_OUTPUT = "_pages_content.children"
LINK = re.compile(r'"(/[^"?#\s\\]*)')
ASSET = re.compile(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"')


class ServerClock:
    """WSGI wrapper: the time the app took for the last request (body included), in ms, and
    the CPU time of the thread that served it (what other work on the machine cannot add)."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.last_ms = 0.0
        self.last_cpu_ms = 0.0

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        started, cpu = time.perf_counter(), time.thread_time()
        body = self.app(environ, start_response)
        try:
            data = b"".join(body)
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()
        self.last_ms = (time.perf_counter() - started) * 1000
        self.last_cpu_ms = (time.thread_time() - cpu) * 1000
        return [data]


@dataclass(frozen=True)
class Query:
    kind: str  # "instant" or "range"
    expr: str
    args: tuple[int, ...]  # (time_ms,) or (start_ms, end_ms, step_ms)


class Recorder:
    """A Querier that remembers every query (and its time) it answers for the pages."""

    def __init__(self, inner: Querier) -> None:
        self.inner = inner
        self.queries: list[tuple[Query, float]] = []
        self._lock = threading.Lock()

    def instant(self, expr: str, time_ms: int) -> QueryResult:
        query = Query("instant", expr, (time_ms,))
        return self._timed(query, lambda: self.inner.instant(expr, time_ms))

    def range(self, expr: str, start_ms: int, end_ms: int, step_ms: int) -> QueryResult:
        query = Query("range", expr, (start_ms, end_ms, step_ms))
        return self._timed(query, lambda: self.inner.range(expr, start_ms, end_ms, step_ms))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def _timed(self, query: Query, run: Callable[[], QueryResult]) -> QueryResult:
        started = time.perf_counter()
        try:
            return run()
        finally:
            with self._lock:
                self.queries.append((query, (time.perf_counter() - started) * 1000))

    def take(self) -> list[tuple[Query, float]]:
        with self._lock:
            out, self.queries = self.queries, []
        return out


@dataclass
class Call:
    output: str
    server_ms: float
    cpu_ms: float
    bytes: int
    status: int
    queries: list[tuple[Query, float]] = field(default_factory=list)


@dataclass
class PageLoad:
    page: str
    path: str
    search: str
    calls: list[Call] = field(default_factory=list)
    bytes: int = 0  # HTML + layout + dependencies + router + every callback's response
    links: set[str] = field(default_factory=set)  # paths the page links to


def components(tree: Any) -> Iterator[dict[str, Any]]:
    """Every component (a dict with `props`) in a layout tree, depth first."""
    if isinstance(tree, dict):
        if "props" in tree and "type" in tree:
            yield tree
            for value in tree["props"].values():
                yield from components(value)
        else:
            for value in tree.values():
                yield from components(value)
    elif isinstance(tree, list):
        for item in tree:
            yield from components(item)


def parse_id(text: str) -> Any:
    return json.loads(text) if text.startswith("{") else text


def matches(pattern: Any, concrete: Any) -> bool:
    """A dependency's id (wildcards as ["ALL"]) against a component's id."""
    if isinstance(pattern, str) or isinstance(concrete, str):
        return pattern == concrete
    if set(pattern) != set(concrete):
        return False
    return all(v == ["ALL"] or v == concrete[k] for k, v in pattern.items())


class Browser:
    """A Dash page load over HTTP, one request at a time; `clock` reads the server's time."""

    def __init__(self, base: str, prefix: str, clock: ServerClock, recorder: Recorder) -> None:
        self.base, self.prefix, self.clock, self.recorder = base, prefix, clock, recorder
        self.session = requests.Session()
        self.shell: Any = None
        self.dependencies: list[dict[str, Any]] = []

    def get(self, path: str) -> tuple[bytes, float]:
        answer = self.session.get(f"{self.base}{path}", timeout=300)
        answer.raise_for_status()
        return answer.content, self.clock.last_ms

    def post(self, body: dict[str, Any]) -> tuple[int, bytes, float]:
        self.recorder.take()
        answer = self.session.post(
            f"{self.base}{self.prefix}_dash-update-component", json=body, timeout=300
        )
        return answer.status_code, answer.content, self.clock.last_ms

    def assets(self, page_path: str) -> dict[str, int]:
        """Bytes of every script and stylesheet the HTML names (fetched once per browser)."""
        html, _ms = self.get(f"{self.prefix.rstrip('/')}{page_path}")
        return {src: len(self.get(src)[0]) for src in ASSET.findall(html.decode())}

    def load(self, page: str, page_path: str, search: str) -> PageLoad:
        out = PageLoad(page, page_path, search)
        pathname = f"{self.prefix.rstrip('/')}{page_path}"
        html, _ = self.get(pathname)
        shell, _ = self.get(f"{self.prefix}_dash-layout")
        deps, _ = self.get(f"{self.prefix}_dash-dependencies")
        self.shell, self.dependencies = json.loads(shell), json.loads(deps)
        out.bytes += len(html) + len(shell) + len(deps)
        values: dict[tuple[str, str], Any] = {("tick", "n_intervals"): 0}
        for source in ("url", "_pages_location"):
            values[(source, "pathname")], values[(source, "search")] = pathname, search
        router = next(d for d in self.dependencies if ROUTER_OUTPUT in d["output"])
        page_tree = self.fire(out, router, [], values)
        present = list(components([self.shell, page_tree]))
        for component in present:
            for prop, value in component["props"].items():
                values.setdefault((_key(component["props"].get("id")), prop), value)
        for dep in self.page_callbacks(present, values):
            self.fire(out, dep, present, values)
        return out

    def fire(
        self, out: PageLoad, dep: dict[str, Any], present: list[dict[str, Any]], values: Any
    ) -> Any:
        """One callback: timed, counted, and its answer (the page's layout for the router)."""
        status, body, ms = self.post(self.request(dep, present, values))
        name = "(page layout)" if ROUTER_OUTPUT in dep["output"] else dep["output"]
        call = Call(name, ms, self.clock.last_cpu_ms, len(body), status, self.recorder.take())
        out.calls.append(call)
        out.bytes += len(body)
        # Dash's JSON escapes every slash
        out.links.update(LINK.findall(body.decode(errors="replace").replace("\\u002f", "/")))
        if status != 200:
            return []
        answer = json.loads(body).get("response", {})
        for cid, props in answer.items():  # what later callbacks of the page read
            values.update({(cid, prop): value for prop, value in props.items()})
        return answer.get("_pages_content", {}).get("children", [])

    def page_callbacks(
        self, present: list[dict[str, Any]], values: dict[Any, Any]
    ) -> list[dict[str, Any]]:
        """The server callbacks a load of this page fires, in order: those whose inputs are
        all refresh or URL signals and whose outputs are on the page. A browser-side callback
        fed by such signals (the refresh beat) makes its outputs signals too, passing its
        first input's value through."""
        ids = [c["props"]["id"] for c in present if "id" in c["props"]]
        signals = set(URL_INPUTS)
        pending = [d for d in self.dependencies if ROUTER_OUTPUT not in d["output"]]
        pending = [d for d in pending if not d.get("prevent_initial_call")]
        chosen: list[dict[str, Any]] = []
        while True:
            ready = [d for d in pending if _inputs(d) and _inputs(d) <= signals]
            if not ready:
                return chosen
            for dep in ready:
                pending.remove(dep)
                outputs = _outputs(dep["output"])
                if not all(any(matches(parse_id(o), i) for i in ids) for o, _p in outputs):
                    continue
                signals |= {(o, p) for o, p in outputs}
                if dep.get("clientside_function"):
                    first = dep["inputs"][0]
                    for o, p in outputs:
                        values[(o, p)] = values.get((_key(first["id"]), first["property"]))
                else:
                    chosen.append(dep)

    def request(
        self, dep: dict[str, Any], present: list[dict[str, Any]], values: dict[Any, Any]
    ) -> dict[str, Any]:
        """The body the renderer sends for a callback's first call on a page load."""
        ids = [c["props"]["id"] for c in present if "id" in c["props"]]
        outputs: list[Any] = []
        for oid, prop in _outputs(dep["output"]):
            pattern = parse_id(oid)
            if isinstance(pattern, dict) and ["ALL"] in pattern.values():
                outputs.append([{"id": i, "property": prop} for i in ids if matches(pattern, i)])
            else:
                outputs.append({"id": pattern, "property": prop})
        multi = dep["output"].startswith("..")
        return {
            "output": dep["output"],
            "outputs": outputs if multi else outputs[0],
            "inputs": [_value(i, values) for i in dep["inputs"]],
            "state": [_value(s, values) for s in dep.get("state", [])],
            "changedPropIds": [],
        }


def _outputs(spec: str) -> list[tuple[str, str]]:
    """(id, property) of each output of a dependency's `output` string."""
    parts = spec[2:-2].split("...") if spec.startswith("..") else [spec]
    out = []
    for part in parts:
        part = part.split("@", 1)[0]  # allow_duplicate's suffix
        oid, prop = part.rsplit(".", 1)
        out.append((oid, prop))
    return out


def _inputs(dep: dict[str, Any]) -> set[tuple[str, str]]:
    return {(_key(i["id"]), i["property"]) for i in dep["inputs"]}


def _key(component_id: Any) -> str:
    """A component id as dependencies spell it (dict ids as compact, sorted JSON)."""
    if isinstance(component_id, str):
        return component_id
    return json.dumps(component_id, sort_keys=True, separators=(",", ":"))


def _value(dep_input: dict[str, Any], values: dict[Any, Any]) -> dict[str, Any]:
    value = values.get((_key(dep_input["id"]), dep_input["property"]))
    return {"id": dep_input["id"], "property": dep_input["property"], "value": value}
