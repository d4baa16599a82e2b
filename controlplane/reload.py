"""Reloading the files the control plane reads at start (rules, SLO specs, runbooks, routing,
access) without a restart, as Prometheus and Alertmanager reload on SIGHUP or `POST /-/reload`.

All or nothing: every file is read and checked first; only when all are good is anything
swapped, and the swaps keep what is running (alert state and `for` timers, executions in
flight, notification groups and their log). A bad file leaves the running configuration as it
was, and says which file and field, in the log, in the API's answer and in the metrics
`controlplane_config_last_reload_successful` / `..._success_timestamp_seconds`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from prometheus_client import CollectorRegistry, Gauge

from controlplane.access import Access, AccessHolder, load_access
from controlplane.config import Config
from controlplane.errors import ConfigError
from controlplane.notify.notifiers import Integration, build_integrations
from controlplane.notify.routing import RoutingConfig, load_routing
from controlplane.notify.service import Notify
from controlplane.rules.load import load_files, parse_text, rule_files
from controlplane.rules.manager import RuleManager
from controlplane.rules.model import RuleGroup
from controlplane.runbooks.engine import Remediator
from controlplane.runbooks.load import load_runbooks
from controlplane.runbooks.model import Runbook
from controlplane.slo import SLO, SLOSpec, generate_rule_file, known_alerts, load_specs

log = logging.getLogger(__name__)
T = TypeVar("T")


class Reloader(Generic[T]):
    """`read()` reads and checks everything (ConfigError when anything is wrong); each of
    `apply` then takes what it needs from the result."""

    def __init__(
        self,
        *,
        read: Callable[[], T],
        apply: Sequence[Callable[[T], None]],
        registry: CollectorRegistry | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._read, self._apply, self._clock = read, tuple(apply), clock
        self._lock = threading.Lock()  # SIGHUP and the API may ask at the same time
        self._ok = Gauge(
            "controlplane_config_last_reload_successful",
            "Whether the last configuration reload attempt was successful.",
            registry=registry,
        )
        self._at = Gauge(
            "controlplane_config_last_reload_success_timestamp_seconds",
            "Timestamp of the last successful configuration reload.",
            registry=registry,
        )
        self._ok.set(1)  # the files read at start are the running configuration
        self._at.set(clock())

    def reload(self) -> None:
        """Read, check and swap everything, or raise ConfigError having changed nothing."""
        with self._lock:
            try:
                loaded = self._read()
            except ConfigError as exc:
                self._ok.set(0)
                log.error("reload failed, the running configuration stays: %s", exc)
                raise
            for apply in self._apply:
                apply(loaded)
            self._ok.set(1)
            self._at.set(self._clock())
            log.info("configuration reloaded")


def slo_specs(rules_dir: Path) -> list[SLOSpec]:
    """The SLO specs of `rules_dir/slo/`, if it has one."""
    slo_dir = rules_dir / "slo"
    return load_specs(slo_dir) if slo_dir.is_dir() else []


def rule_groups(rules_dir: Path, specs: Sequence[SLOSpec] | None = None) -> list[RuleGroup]:
    """The rule files under `rules_dir` and the rules generated from its `slo/` specs (`specs`
    when the caller loaded them already)."""
    files, _not_rules = rule_files([rules_dir])
    groups = load_files(files)
    specs = slo_specs(rules_dir) if specs is None else specs
    if specs:
        where = f"{rules_dir / 'slo'} (generated)"
        groups += parse_text(generate_rule_file(specs), where)
    return groups


@dataclass(frozen=True, kw_only=True)
class Files:
    """Everything a reload reads, all of it checked."""

    groups: list[RuleGroup]
    slos: list[SLO]
    runbooks: list[Runbook]
    routing: RoutingConfig
    integrations: dict[str, tuple[Integration, ...]]
    access: Access


def read_access(config: Config) -> Access:
    return load_access(
        config.access_file, api_token=config.api_token, listen_host=config.server.host
    )


def read_files(config: Config, notify: Notify) -> Files:
    specs = slo_specs(config.rules_dir)
    routing = load_routing(config.routing_file)
    return Files(
        groups=rule_groups(config.rules_dir, specs),
        slos=[slo for spec in specs for slo in spec.slos],
        runbooks=load_runbooks(config.runbooks_dir, known_alerts([str(config.rules_dir)])),
        routing=routing,
        integrations=build_integrations(routing.receivers, notify.context),
        access=read_access(config),
    )


def build_reloader(
    config: Config,
    *,
    rules: RuleManager,
    remediator: Remediator,
    notify: Notify,
    slos: list[SLO],
    access: AccessHolder | None = None,
    registry: CollectorRegistry | None = None,
    clock: Callable[[], float] = time.time,
) -> Reloader[Files]:
    """The pipeline's reloader; `slos` is the list the SLO API and the dashboards read, whose
    contents are replaced (one atomic slice assignment)."""

    def swap_slos(files: Files) -> None:
        slos[:] = files.slos

    applies: list[Callable[[Files], Any]] = [
        lambda f: rules.update(f.groups),  # keeps alert state and `for` timers
        lambda f: remediator.replace_runbooks(f.runbooks),
        lambda f: notify.dispatcher.reconfigure(f.routing, f.integrations),
        swap_slos,
    ]
    if access is not None:
        applies.append(lambda f: access.replace(f.access))
    return Reloader(
        read=lambda: read_files(config, notify), apply=applies, registry=registry, clock=clock
    )
