"""Execute a parsed Go template (controlplane.gotemplate.parse) with Go's semantics.

Values are Python stand-ins for Go's: str, int, float (float64), bool, None (nil), dict
(map[string]string, where a missing key yields "" as Prometheus's `missingkey=zero` makes it),
list (a query result), and GoStruct. Functions declare their Go parameter types so that
constants convert and wrong types fail as Go fails (`wrong type for value; expected string;
got float64`); execution errors carry Go's context (`template: name:1:64: executing "name" at
<humanize "x">: error calling humanize: ...`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from controlplane.errors import ControlPlaneError
from controlplane.gotemplate import fmt as gofmt
from controlplane.gotemplate.nodes import (
    Branch,
    Chain,
    Command,
    Const,
    Dot,
    Field,
    Ident,
    Invoke,
    LoopControl,
    Nil,
    Node,
    Pipe,
    Template,
    Text,
    Variable,
)
from controlplane.gotemplate.values import MISSING, AnyMap, GoFunc, GoStruct, truth


class TemplateExecError(ControlPlaneError):
    """A template failed while running; Prometheus shows `<error expanding template: ...>`."""


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


def execute(tmpl: Template, data: Any, funcs: Mapping[str, GoFunc]) -> str:
    state = _State(tmpl, funcs)
    state.vars.append(("$", data))
    state.walk(tmpl.nodes, data)
    return "".join(state.out)


class _State:
    def __init__(self, tmpl: Template, funcs: Mapping[str, GoFunc]) -> None:
        self.tmpl, self.funcs = tmpl, funcs
        self.out: list[str] = []
        self.vars: list[tuple[str, Any]] = []
        self.node: Node | None = None

    def fail(self, message: str, node: Node | None = None) -> TemplateExecError:
        node = node or self.node
        name = self.tmpl.name
        if node is None:
            return TemplateExecError(f"template: {name}: {message}")
        prefix = self.tmpl.text[: node.pos].encode()
        line = 1 + prefix.count(b"\n")
        col = len(prefix) - (prefix.rfind(b"\n") + 1) if line > 1 else len(prefix)
        return TemplateExecError(
            f'template: {name}:{line}:{col}: executing "{name}" at <{node}>: {message}'
        )

    # -- statements
    def walk(self, nodes: Sequence[Node], dot: Any) -> None:
        for node in nodes:
            if isinstance(node, Text):
                self.out.append(node.text)
            elif isinstance(node, Branch):
                self.branch(node, dot)
            elif isinstance(node, LoopControl):
                raise _Break() if node.kind == "break" else _Continue()
            elif isinstance(node, Invoke):
                self.invoke(node, dot)
            else:
                pipe: Pipe = node.pipe  # type: ignore[attr-defined]
                value = self.pipe(pipe, dot)
                if not pipe.decl:
                    self.out.append(self.printable(value, node))

    def invoke(self, node: Invoke, dot: Any) -> None:
        body = self.tmpl.defines.get(node.name)
        if body is None:
            raise self.fail(
                f'template: no template "{node.name}" associated with template "{self.tmpl.name}"',
                node,
            )
        value = None if node.pipe is None else self.pipe(node.pipe, dot)
        saved, self.vars = self.vars, [("$", value)]
        try:
            self.walk(body, value)
        finally:
            self.vars = saved

    def printable(self, value: Any, node: Node) -> str:
        if value is MISSING or value is None:
            return "<no value>"
        return gofmt.format_value(value)

    def branch(self, node: Branch, dot: Any) -> None:
        depth = len(self.vars)
        value = self.pipe(node.pipe, dot, declare_range=node.kind == "range")
        try:
            if node.kind == "range":
                self.range(node, value, dot, depth)
            elif truth(value):
                self.walk(node.body, value if node.kind == "with" else dot)
            else:
                self.walk(node.else_body, dot)
        finally:
            del self.vars[depth:]

    def range(self, node: Branch, value: Any, dot: Any, depth: int) -> None:
        if value is None or value is MISSING:
            items: list[tuple[Any, Any]] = []
        elif isinstance(value, Mapping):
            items = [(k, value[k]) for k in sorted(value)]
        elif isinstance(value, list | tuple):
            items = list(enumerate(value))
        elif isinstance(value, int) and not isinstance(value, bool):
            items = [(i, i) for i in range(value)]
        else:
            raise self.fail(f"range can't iterate over {gofmt.format_value(value)}", node)
        if not items:
            self.walk(node.else_body, dot)
            return
        names = node.pipe.decl
        for key, elem in items:
            del self.vars[depth:]
            if len(names) == 1:
                self.vars.append((names[0], elem))
            elif len(names) == 2:
                self.vars.extend([(names[0], key), (names[1], elem)])
            try:
                self.walk(node.body, elem)
            except _Break:
                break
            except _Continue:
                continue

    # -- pipelines
    def pipe(self, pipe: Pipe, dot: Any, declare_range: bool = False) -> Any:
        value: Any = MISSING
        for cmd in pipe.cmds:
            value = self.command(cmd, dot, value)
        if pipe.assign:
            for name in pipe.decl:
                self.set_var(name, value)
        elif pipe.decl and not declare_range:
            self.vars.append((pipe.decl[0], value))
        return value

    def set_var(self, name: str, value: Any) -> None:
        for i in range(len(self.vars) - 1, -1, -1):
            if self.vars[i][0] == name:
                self.vars[i] = (name, value)
                return
        raise self.fail(f"undefined variable: {name}")

    def var(self, name: str) -> Any:
        for n, v in reversed(self.vars):
            if n == name:
                return v
        raise self.fail(f"undefined variable: {name}")

    def command(self, cmd: Command, dot: Any, final: Any) -> Any:
        first = cmd.args[0]
        self.node = cmd
        if isinstance(first, Ident):
            return self.call(first.name, cmd, cmd.args[1:], dot, final)
        if len(cmd.args) > 1 or final is not MISSING:
            raise self.fail(f"can't give argument to non-function {first}", first)
        if isinstance(first, Nil):
            raise self.fail("nil is not a command", first)
        return self.operand(first, dot)

    def operand(self, node: Node, dot: Any) -> Any:
        if isinstance(node, Dot):
            return dot
        if isinstance(node, Nil):
            return None
        if isinstance(node, Const):
            return node.value
        if isinstance(node, Field):
            return self.fields(dot, node.names, node)
        if isinstance(node, Variable):
            return self.fields(self.var(node.names[0]), node.names[1:], node)
        if isinstance(node, Chain):
            return self.fields(self.operand(node.node, dot), node.names, node)
        if isinstance(node, Pipe):
            return self.pipe(node, dot)
        if isinstance(node, Ident):
            return self.call(node.name, node, (), dot, MISSING)
        raise self.fail(f"can't evaluate {node}", node)

    def fields(self, value: Any, names: Sequence[str], node: Node) -> Any:
        for name in names:
            if isinstance(value, AnyMap):
                value = value.get(name)
            elif isinstance(value, Mapping):
                value = value.get(name, "")
            elif isinstance(value, GoStruct):
                if name not in value.fields:
                    raise self.fail(f"can't evaluate field {name} in type {value.go_type}", node)
                value = value.fields[name]
            elif value is None or value is MISSING:
                raise self.fail(f"nil pointer evaluating interface {{}}.{name}", node)
            else:
                raise self.fail(
                    f"can't evaluate field {name} in type {gofmt.go_type_name(value)}", node
                )
        return value

    # -- function calls
    def call(self, name: str, node: Node, args: Sequence[Node], dot: Any, final: Any) -> Any:
        if name in ("and", "or"):
            return self.and_or(name, node, args, dot, final)
        func = self.funcs[name]
        want = len(func.params)
        got = len(args) + (final is not MISSING)
        if got != want and not (func.variadic is not None and got >= want):
            raise self.fail(f"wrong number of args for {name}: want {want} got {got}", node)
        values: list[Any] = []
        for i, arg in enumerate(args):
            typ = func.params[i] if i < want else (func.variadic or "any")
            values.append(self.arg(arg, typ, dot))
        if final is not MISSING:
            typ = func.params[-1] if got <= want else (func.variadic or "any")
            values.append(self.check_type(final, typ, node))
        try:
            return func.fn(*values)
        except Exception as exc:  # as Go's safeCall: a function's failure is the template's
            raise self.fail(f"error calling {name}: {exc}", node) from None

    def and_or(self, name: str, node: Node, args: Sequence[Node], dot: Any, final: Any) -> Any:
        if not args and final is MISSING:
            raise self.fail(f"wrong number of args for {name}: want at least 1 got 0", node)
        value: Any = MISSING
        for arg in args:
            value = self.operand(arg, dot)
            if truth(value) != (name == "and"):
                return value
        return final if final is not MISSING else value

    def arg(self, node: Node, typ: str, dot: Any) -> Any:
        if isinstance(node, Const):
            value = node.value
            if typ == "float64" and isinstance(value, int) and not isinstance(value, bool):
                return float(value)
            if typ == "int" and isinstance(value, float) and value.is_integer():
                return int(value)
        else:
            value = self.operand(node, dot)
        return self.check_type(value, typ, node)

    def check_type(self, value: Any, typ: str, node: Node) -> Any:
        ok = {
            "any": lambda v: True,
            "string": lambda v: isinstance(v, str),
            "float64": lambda v: isinstance(v, float),
            "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
            "*sample": lambda v: v is None or getattr(v, "go_type", "") == "*template.sample",
            "queryResult": lambda v: v is None or isinstance(v, list),
        }[typ]
        if value is MISSING:
            value = None
        if not ok(value):
            got = "<nil>" if value is None else gofmt.go_type_name(value)
            raise self.fail(f"wrong type for value; expected {typ}; got {got}", node)
        return value
