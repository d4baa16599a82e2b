"""YAML read as Prometheus and Alertmanager read it.

They decode into typed fields (go-yaml): a field that holds a string gets the scalar's text,
whatever it looks like. PyYAML resolves plain scalars first (YAML 1.1), so `code: 010` became
8, `values: 0x10` became 16 and `flag: yes` became True before anyone asked for a string. Every
mapping read here remembers the source text of its scalar values, and `text()` / `texts()`
give it back where a string is expected (label values, annotations, matchers, series notation);
typed fields keep the typed value. A key given twice is an error naming both lines, as go-yaml's
strict mode and promtool report it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, ScalarNode

from controlplane.errors import ConfigError


class TextMap(dict[Any, Any]):
    """A mapping from YAML that also knows each scalar value's source text."""

    texts: dict[Any, str]


class _Loader(yaml.SafeLoader):
    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        self.flatten_mapping(node)  # merge keys (<<) first: they may be overridden
        first: dict[str, int] = {}
        for key_node, _ in node.value:
            if isinstance(key_node, ScalarNode):
                line = first.setdefault(key_node.value, key_node.start_mark.line)
                if line != key_node.start_mark.line:
                    raise ConstructorError(
                        None,
                        None,
                        f"duplicate key {key_node.value!r} (first given at line {line + 1})",
                        key_node.start_mark,
                    )
        return super().construct_mapping(node, deep=deep)


def _construct_map(loader: _Loader, node: MappingNode) -> Iterator[TextMap]:
    data = TextMap()
    yield data
    data.update(loader.construct_mapping(node))
    data.texts = {
        loader.construct_object(key): value.value
        for key, value in node.value
        if isinstance(value, ScalarNode) and isinstance(key, ScalarNode)
    }


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_map)


def loads(text: str, source: str) -> Any:
    """Parse `text`; ConfigError names `source` and the line on bad YAML or a repeated key."""
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {_where(exc)}") from None


def load(path: str | Path, what: str = "file") -> Any:
    """Read and parse a file; ConfigError names the file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{str(path)!r}: cannot read the {what}: {exc.strerror}") from exc
    return loads(text, str(path))


def _where(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    return f"line {mark.line + 1}: {problem}" if mark is not None else str(problem)


def text(mapping: Mapping[Any, Any], key: Any) -> str:
    """The value at `key` as the string its source spelled (`010`, `0x10`, `yes`)."""
    texts = getattr(mapping, "texts", {})
    value = mapping[key]
    if isinstance(value, str) or key not in texts or value is None:
        return value if isinstance(value, str) else ("" if value is None else str(value))
    return texts[key]


def texts(mapping: Mapping[Any, Any]) -> dict[str, str]:
    """A whole string-to-string mapping (labels, annotations, matchers) as spelled."""
    return {str(key): text(mapping, key) for key in mapping}
