"""Performing actions: the aggregator's admin API for the mutating ones, the query engine for
`check`, the clock for `wait`, the notifier for `notify`.

Every admin call carries an Idempotency-Key derived from the execution and the step, so a step
retried after a timeout or a restart is answered from the aggregator's memory of the first call
instead of acting twice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import requests

from controlplane.errors import ControlPlaneError
from controlplane.model.times import parse_duration
from controlplane.promql.results import Querier

Notify = Callable[[str, str, Mapping[str, Any]], None]  # (severity, message, context)


class ShutdownRequested(ControlPlaneError):
    """The process is stopping: an execution stops where it is and resumes after restart."""


@dataclass(frozen=True, kw_only=True)
class AggregatorTargets:
    """Where actions go: regions' admin APIs by region id, and the front door's."""

    frontdoor_url: str = ""
    regions: Mapping[str, str] = field(default_factory=dict)
    token: str = ""


@dataclass(frozen=True, kw_only=True)
class ActionResult:
    ok: bool
    detail: Mapping[str, Any]


class ActionRunner:
    def __init__(
        self,
        targets: AggregatorTargets,
        querier: Querier,
        *,
        session: requests.Session | None = None,
        notify: Notify | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        timeout_s: float = 5.0,
        retries: int = 3,
        poll_s: float = 1.0,
    ) -> None:
        self._targets = targets
        self._querier = querier
        self._session = session or requests.Session()
        self._notify = notify or (lambda _sev, _msg, _ctx: None)
        self._clock, self._sleep = clock, sleep
        self._timeout, self._retries, self._poll = timeout_s, retries, poll_s

    def run(
        self,
        action: str,
        params: Mapping[str, Any],
        idempotency_key: str,
        *,
        started_at: float | None = None,
    ) -> ActionResult:
        """`started_at`: when the step first started. A step resumed after a restart counts its
        `wait` duration and its `check` window from then, not again from zero."""
        self._sleep(0)  # the interruption point: no step starts once shutdown has begun
        if action in ("wait", "check"):
            elapsed = 0.0 if started_at is None else max(0.0, self._clock() - started_at)
            return self._wait(params, elapsed) if action == "wait" else self._check(params, elapsed)
        name = "_notify_action" if action == "notify" else "_" + action.replace(".", "_")
        handler = getattr(self, name)
        result: ActionResult = handler(params, idempotency_key)
        return result

    # mutating actions: the aggregator admin API

    def _provider_isolate(self, p: Mapping[str, Any], key: str) -> ActionResult:
        return self._post(
            self._region_url(p["region"]),
            f"/admin/providers/{p['provider']}/isolate",
            {"reason": p.get("reason") or f"runbook {key}"},
            key,
        )

    def _provider_restore(self, p: Mapping[str, Any], key: str) -> ActionResult:
        return self._post(
            self._region_url(p["region"]),
            f"/admin/providers/{p['provider']}/restore",
            {"canary_percent": int(p.get("canary_percent", 100))},
            key,
        )

    def _region_drain(self, p: Mapping[str, Any], key: str) -> ActionResult:
        return self._post(
            self._targets.frontdoor_url, f"/admin/regions/{p['region']}/drain", {}, key
        )

    def _region_undrain(self, p: Mapping[str, Any], key: str) -> ActionResult:
        return self._post(
            self._targets.frontdoor_url, f"/admin/regions/{p['region']}/undrain", {}, key
        )

    def _wallet_replay_queue(self, p: Mapping[str, Any], key: str) -> ActionResult:
        return self._post(
            self._region_url(p["region"]),
            "/admin/wallet/queue/replay",
            {"max_items": int(p.get("max_items", 1000))},
            key,
        )

    # the others

    def _notify_action(self, p: Mapping[str, Any], key: str) -> ActionResult:
        self._notify(str(p.get("severity", "info")), str(p["message"]), {"step": key})
        return ActionResult(ok=True, detail={"notified": p["message"]})

    def _wait(self, p: Mapping[str, Any], elapsed: float) -> ActionResult:
        seconds = max(0.0, parse_duration(str(p["duration"])) - elapsed)
        self._sleep(seconds)
        return ActionResult(ok=True, detail={"waited_s": seconds})

    def _check(self, p: Mapping[str, Any], elapsed: float) -> ActionResult:
        # a window already over still gets one look at the condition
        within = max(0.0, parse_duration(str(p.get("within", "0s"))) - elapsed)
        held = self.holds_within(str(p["expr"]), within)
        return ActionResult(ok=held, detail={"expr": p["expr"], "held": held})

    def holds(self, expr: str) -> bool:
        """A condition holds when the query returns at least one sample (as alert rules do)."""
        result = self._querier.instant(expr, int(self._clock() * 1000))
        return bool(result.vector) or (result.scalar is not None and result.scalar.value != 0)

    def holds_within(self, expr: str, within_s: float) -> bool:
        deadline = self._clock() + within_s
        while True:
            if self.holds(expr):
                return True
            if self._clock() >= deadline:
                return False
            self._sleep(min(self._poll, max(0.0, deadline - self._clock())))

    def _region_url(self, region: object) -> str:
        url = self._targets.regions.get(str(region))
        if not url:
            raise KeyError(f"no admin URL configured for region {region!r}")
        return url

    def _post(self, base: str, path: str, body: Mapping[str, Any], key: str) -> ActionResult:
        headers = {"Authorization": f"Bearer {self._targets.token}", "Idempotency-Key": key}
        last_error = ""
        for attempt in range(self._retries):
            try:
                resp = self._session.post(
                    base.rstrip("/") + path, json=dict(body), headers=headers, timeout=self._timeout
                )
            except requests.RequestException as exc:
                last_error = f"{type(exc).__name__}: {exc}"
                self._sleep(0.2 * 2**attempt)  # safe to repeat: same Idempotency-Key
                continue
            detail = _json(resp)
            if resp.status_code >= 500:
                last_error = f"HTTP {resp.status_code}: {detail}"
                self._sleep(0.2 * 2**attempt)
                continue
            return ActionResult(
                ok=resp.status_code < 300, detail={"status": resp.status_code, "response": detail}
            )
        return ActionResult(ok=False, detail={"error": last_error})


def _json(resp: requests.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        return resp.text[:500]


# -- how executions run in the control plane: on a pool, sleeping until shutdown ------------
_runbook_log = logging.getLogger("controlplane.runbooks")


def interruptible_sleep(stopping: threading.Event, seconds: float) -> None:
    """The executions' sleep: wakes at once, and stops the execution, on shutdown."""
    if stopping.wait(seconds):
        raise ShutdownRequested("control plane stopping")


def submitter(executor: ThreadPoolExecutor) -> Callable[[Callable[[], Any]], Any]:
    def submit(fn: Callable[[], Any]) -> Any:
        future = executor.submit(fn)
        future.add_done_callback(_report)
        return future

    return submit


def _report(future: Any) -> None:
    exc = future.exception() if not future.cancelled() else None
    if isinstance(exc, ShutdownRequested):
        _runbook_log.info("execution paused for shutdown; it resumes at the next start")
    elif exc is not None:
        _runbook_log.error("execution crashed: %r", exc)


def log_notification(severity: str, message: str, context: Any) -> None:
    level = {"critical": logging.ERROR, "warning": logging.WARNING}.get(severity, logging.INFO)
    _runbook_log.log(level, "%s %s", message, dict(context) if context else "")
