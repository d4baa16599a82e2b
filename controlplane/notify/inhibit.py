"""Inhibition, as Alertmanager does it: a firing source alert mutes target alerts that agree
with it on the `equal` labels (a label both lack counts as equal).

An alert that matches both sides of a rule is never muted by a source alert that itself
matches the target side, so two such alerts cannot inhibit each other.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from controlplane.model.series import Labels, Matcher
from controlplane.notify.alerts import Alert
from controlplane.notify.matchers import matches


@dataclass(frozen=True, kw_only=True)
class InhibitRule:
    source_matchers: tuple[Matcher, ...]
    target_matchers: tuple[Matcher, ...]
    equal: tuple[str, ...] = ()

    def equal_values(self, labels: Mapping[str, str]) -> tuple[str, ...]:
        return tuple(labels.get(name, "") for name in self.equal)


class Inhibitor:
    """Answers "is this label set inhibited?" against one snapshot of the current alerts."""

    def __init__(self, rules: Sequence[InhibitRule], alerts: Iterable[Alert], now: datetime):
        firing = [a.label_map for a in alerts if not a.resolved_at(now)]
        # per rule: the `equal` values of its firing sources -> whether one of those sources
        # does not itself match the target side (and so may mute a two-sided alert)
        self._rules: list[tuple[InhibitRule, dict[tuple[str, ...], bool]]] = []
        for rule in rules:
            sources: dict[tuple[str, ...], bool] = {}
            for labels in firing:
                if matches(rule.source_matchers, labels):
                    key = rule.equal_values(labels)
                    one_sided = not matches(rule.target_matchers, labels)
                    sources[key] = sources.get(key, False) or one_sided
            self._rules.append((rule, sources))

    def mutes(self, labels: Labels) -> bool:
        lookup = dict(labels)
        for rule, sources in self._rules:
            if not sources or not matches(rule.target_matchers, lookup):
                continue
            one_sided_source = sources.get(rule.equal_values(lookup))
            if one_sided_source is None:
                continue
            if one_sided_source or not matches(rule.source_matchers, lookup):
                return True
        return False
