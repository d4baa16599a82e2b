"""Prometheus rule files -> RuleGroups, checked as `promtool check rules` checks them.

Every problem in a file is reported, each naming the file, the position, the group, the rule
(1-based index and name) and the field, in promtool's layout:

    rules/x.yml: 7:11: group "casino", rule 2, "ProviderDown": field 'expr': could not parse
    expression: 1:6: parse error: ...

Refused as promtool refuses them: unknown fields (at any level), duplicate keys, duplicate or
empty group names, bad durations, `record` and `alert` both or neither, recording rules with
`for`/`keep_firing_for`/`annotations`, invalid metric/label/annotation names, expressions that
do not parse, and alert templates that do not parse (unknown function, undefined variable).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from controlplane.errors import ConfigError, ParseError
from controlplane.gotemplate.fmt import go_quote
from controlplane.model.times import parse_duration
from controlplane.promql.parse import parse_query
from controlplane.rules import templates
from controlplane.rules.model import AlertingRule, Pairs, RecordingRule, Rule, RuleGroup

METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
RULE_FILE_SUFFIXES = (".yml", ".yaml")

_FILE_FIELDS = ("groups",)
_GROUP_FIELDS = ("name", "interval", "limit", "rules")
_RULE_FIELDS = ("record", "alert", "expr", "for", "keep_firing_for", "labels", "annotations")


class RuleFileError(ConfigError):
    """One or more problems in rule files; `problems` lists them, one line each."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = tuple(problems)


def rule_files(paths: Iterable[str | Path]) -> tuple[list[Path], list[Path]]:
    """(rule files, skipped files) for files and directories. A directory contributes its
    *.yml/*.yaml files (not recursively) that have a top-level `groups` key, so other YAML
    kept next to the rules (routing, SLO specs) is skipped, and listed, rather than refused."""
    files: list[Path] = []
    skipped: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if not path.is_dir():
            files.append(path)
            continue
        for child in sorted(path.iterdir()):
            if child.suffix not in RULE_FILE_SUFFIXES or not child.is_file():
                continue
            (files if _looks_like_rules(child) else skipped).append(child)
    return files, skipped


def _looks_like_rules(path: Path) -> bool:
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return True  # let the loader report it
    return doc is None or (isinstance(doc, dict) and "groups" in doc)


def load_files(paths: Iterable[str | Path]) -> list[RuleGroup]:
    """Every group of every file, in order; RuleFileError with all problems of all files."""
    groups: list[RuleGroup] = []
    problems: list[str] = []
    for path in paths:
        try:
            groups.extend(load_file(path))
        except RuleFileError as exc:
            problems.extend(exc.problems)
    if problems:
        raise RuleFileError(problems)
    return groups


def load_file(path: str | Path) -> list[RuleGroup]:
    name = str(path)
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise RuleFileError([f"{name}: cannot read: {exc.strerror or exc}"]) from None
    return parse_text(text, name)


def parse_text(text: str, file: str) -> list[RuleGroup]:
    try:
        root = next(iter(yaml.compose_all(text, Loader=yaml.SafeLoader)), None)
    except yaml.YAMLError as exc:
        raise RuleFileError([f"{file}: yaml: {_yaml_message(exc)}"]) from None
    reader = _Reader(file)
    groups = reader.read(root)
    if reader.problems:
        raise RuleFileError(reader.problems)
    return groups


def _yaml_message(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if mark is None:
        return str(problem)
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"


@dataclass(frozen=True, kw_only=True)
class _Where:
    group: str | None = None
    rule: int | None = None
    rule_name: str = ""

    def prefix(self) -> str:
        if self.group is None:
            return ""
        if self.rule is None:
            return f"group {go_quote(self.group)}: "
        return f"group {go_quote(self.group)}, rule {self.rule}, {go_quote(self.rule_name)}: "


class _Reader:
    def __init__(self, path: str) -> None:
        self.path = path
        self.problems: list[str] = []

    def add(self, node: yaml.Node | None, where: _Where, message: str) -> None:
        pos = f"{node.start_mark.line + 1}:{node.start_mark.column + 1}: " if node else ""
        self.problems.append(f"{self.path}: {pos}{where.prefix()}{message}")

    def mapping(
        self, node: yaml.Node, where: _Where, what: str, known: Sequence[str]
    ) -> dict[str, tuple[yaml.Node, yaml.Node]] | None:
        if not isinstance(node, yaml.MappingNode):
            self.add(node, where, f"{what} must be a mapping, not {_kind(node)}")
            return None
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key, value in node.value:
            name = str(key.value)
            if known and name not in known:
                self.add(
                    key, where, f"field {name} not found in {what} (known: {', '.join(known)})"
                )
            elif name in out:
                first = out[name][0].start_mark.line + 1
                self.add(key, where, f"{what}: key {name!r} already set at line {first}")
            else:
                out[name] = (key, value)
        return out

    def scalar(self, node: yaml.Node, where: _Where, field: str) -> str | None:
        if not isinstance(node, yaml.ScalarNode):
            self.add(node, where, f"field {field!r}: must be a string, not {_kind(node)}")
            return None
        return "" if node.tag.endswith(":null") else str(node.value)

    def read(self, root: yaml.Node | None) -> list[RuleGroup]:
        if root is None or (isinstance(root, yaml.ScalarNode) and root.tag.endswith(":null")):
            return []
        fields = self.mapping(root, _Where(), "rule file", _FILE_FIELDS)
        if fields is None or "groups" not in fields:
            return []
        seq = fields["groups"][1]
        if isinstance(seq, yaml.ScalarNode) and seq.tag.endswith(":null"):
            return []
        if not isinstance(seq, yaml.SequenceNode):
            self.add(seq, _Where(), f"field 'groups': must be a list, not {_kind(seq)}")
            return []
        groups: list[RuleGroup] = []
        seen: dict[str, int] = {}
        for node in seq.value:
            group = self.group(node, seen)
            if group is not None:
                groups.append(group)
        return groups

    def group(self, node: yaml.Node, seen: dict[str, int]) -> RuleGroup | None:
        fields = self.mapping(node, _Where(), "rule group", _GROUP_FIELDS)
        if fields is None:
            return None
        name_node = fields["name"][1] if "name" in fields else node
        name = (self.scalar(name_node, _Where(), "name") or "") if "name" in fields else ""
        self.group_name(name, name_node, seen)
        where = _Where(group=name)
        interval = self.duration(fields.get("interval"), where, "interval")
        limit = self.integer(fields.get("limit"), where, "limit")
        return RuleGroup(
            name=name,
            file=self.path,
            rules=tuple(self.rules(fields.get("rules"), name, where)),
            interval_ms=interval,
            limit=limit,
        )

    def group_name(self, name: str, node: yaml.Node, seen: dict[str, int]) -> None:
        if not name:
            self.add(node, _Where(), "field 'name': group name must not be empty")
        elif name in seen:
            first = seen[name]
            message = f"group name {go_quote(name)} is repeated in the same file (line {first})"
            self.add(node, _Where(), message)
        else:
            seen[name] = node.start_mark.line + 1

    def rules(
        self, item: tuple[yaml.Node, yaml.Node] | None, group: str, where: _Where
    ) -> list[Rule]:
        node = item[1] if item is not None else None
        if node is None or (isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null")):
            return []
        if not isinstance(node, yaml.SequenceNode):
            self.add(node, where, f"field 'rules': must be a list, not {_kind(node)}")
            return []
        rules = [self.rule(rule_node, group, i) for i, rule_node in enumerate(node.value, 1)]
        return [r for r in rules if r is not None]

    def duration(self, item: tuple[yaml.Node, yaml.Node] | None, where: _Where, field: str) -> int:
        if item is None:
            return 0
        text = self.scalar(item[1], where, field)
        if text is None:
            return 0
        try:
            return round(parse_duration(text) * 1000)
        except ValueError:
            message = f"not a valid duration string: {go_quote(text)}"
            self.add(item[1], where, f"field {field!r}: {message}")
            return 0

    def integer(self, item: tuple[yaml.Node, yaml.Node] | None, where: _Where, field: str) -> int:
        if item is None:
            return 0
        node = item[1]
        if isinstance(node, yaml.ScalarNode) and node.tag.endswith(":int"):
            try:
                return int(node.value, 0)
            except ValueError:
                pass
        self.add(node, where, f"field {field!r}: must be an integer, not {_kind(node)}")
        return 0

    def pairs(
        self, item: tuple[yaml.Node, yaml.Node] | None, where: _Where, field: str
    ) -> tuple[Pairs, list[yaml.Node]]:
        if item is None:
            return (), []
        node = item[1]
        if isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null"):
            return (), []
        fields = self.mapping(node, where, f"field {field!r}", ())
        if fields is None:
            return (), []
        out: list[tuple[str, str]] = []
        keys: list[yaml.Node] = []
        for key, (key_node, value_node) in fields.items():
            value = self.scalar(value_node, where, f"{field}.{key}")
            if value is not None:
                out.append((key, value))
                keys.append(key_node)
        return tuple(out), keys

    def rule(self, node: yaml.Node, group: str, index: int) -> Rule | None:
        bare = _Where(group=group, rule=index, rule_name=_peek_name(node))
        fields = self.mapping(node, bare, "rule", _RULE_FIELDS)
        if fields is None:
            return None
        text = {
            k: self.scalar(fields[k][1], bare, k) or ""
            for k in ("record", "alert", "expr")
            if k in fields
        }
        record, alert, expr = text.get("record", ""), text.get("alert", ""), text.get("expr", "")
        where = _Where(group=group, rule=index, rule_name=alert or record)
        ok = self.rule_kind(node, fields, where, record, alert)
        expr_node = fields.get("expr", (node, node))[1]
        if not expr.strip():
            self.add(expr_node, where, "field 'expr' must be set in rule")
            ok = False
        else:
            try:
                parse_query(expr)
            except ParseError as exc:
                self.add(expr_node, where, f"field 'expr': could not parse expression: {exc}")
                ok = False
        for_ms = self.duration(fields.get("for"), where, "for")
        keep_ms = self.duration(fields.get("keep_firing_for"), where, "keep_firing_for")
        labels, label_keys = self.pairs(fields.get("labels"), where, "labels")
        annotations, annotation_keys = self.pairs(fields.get("annotations"), where, "annotations")
        ok = self.names(labels, label_keys, annotations, annotation_keys, where) and ok
        line = node.start_mark.line + 1
        if record:
            ok = self.recording_only(fields, where, record, for_ms, keep_ms, annotations) and ok
            if ok:
                return RecordingRule(name=record, expr=expr, labels=labels, line=line)
            return None
        keys = label_keys + annotation_keys
        ok = self.alert_templates(alert, labels + annotations, len(labels), keys, where) and ok
        if not ok:
            return None
        return AlertingRule(
            name=alert,
            expr=expr,
            for_ms=for_ms,
            keep_firing_for_ms=keep_ms,
            labels=labels,
            annotations=annotations,
            line=line,
        )

    def rule_kind(
        self,
        node: yaml.Node,
        fields: dict[str, tuple[yaml.Node, yaml.Node]],
        where: _Where,
        record: str,
        alert: str,
    ) -> bool:
        if record and alert:
            self.add(fields["record"][1], where, "only one of 'record' and 'alert' must be set")
            return False
        if not record and not alert:
            self.add(node, where, "one of 'record' or 'alert' must be set")
            return False
        return True

    def recording_only(
        self,
        fields: dict[str, tuple[yaml.Node, yaml.Node]],
        where: _Where,
        record: str,
        for_ms: int,
        keep_ms: int,
        annotations: Pairs,
    ) -> bool:
        node = fields["record"][1]
        ok = True
        for field, present in (
            ("annotations", bool(annotations)),
            ("for", for_ms != 0),
            ("keep_firing_for", keep_ms != 0),
        ):
            if present:
                self.add(node, where, f"invalid field {field!r} in recording rule")
                ok = False
        if not METRIC_NAME.match(record):
            self.add(node, where, f"field 'record': invalid recording rule name: {record}")
            ok = False
        return ok

    def names(
        self,
        labels: Pairs,
        label_keys: list[yaml.Node],
        annotations: Pairs,
        annotation_keys: list[yaml.Node],
        where: _Where,
    ) -> bool:
        ok = True
        for (name, _), key in zip(labels, label_keys, strict=True):
            if not LABEL_NAME.match(name) or name == "__name__":
                self.add(key, where, f"field 'labels': invalid label name: {name}")
                ok = False
        for (name, _), key in zip(annotations, annotation_keys, strict=True):
            if not LABEL_NAME.match(name):
                self.add(key, where, f"field 'annotations': invalid annotation name: {name}")
                ok = False
        return ok

    def alert_templates(
        self, alert: str, pairs: Pairs, n_labels: int, keys: list[yaml.Node], where: _Where
    ) -> bool:
        ok = True
        for i, ((name, text), key) in enumerate(zip(pairs, keys, strict=True)):
            field = "label" if i < n_labels else "annotation"
            try:
                templates.check(text, f"__alert_{alert}")
            except templates.TemplateParseError as exc:
                self.add(key, where, f"field '{field}s': {field} {go_quote(name)}: {exc}")
                ok = False
        return ok


def _peek_name(node: yaml.Node) -> str:
    """The rule's alert or record name, to name it in messages about its other fields."""
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if key.value in ("alert", "record") and isinstance(value, yaml.ScalarNode):
                return str(value.value)
    return ""


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return f"{node.tag.rsplit(':', 1)[-1]} {node.value!r}"
