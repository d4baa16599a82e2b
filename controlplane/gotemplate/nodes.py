"""The syntax tree of a parsed Go template (see gotemplate.py); `str()` of a node is Go's
rendering of it, which execution errors quote (`at <humanize "x">`)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, kw_only=True)
class Node:
    pos: int


@dataclass(frozen=True, kw_only=True)
class Text(Node):
    text: str


@dataclass(frozen=True, kw_only=True)
class Dot(Node):
    def __str__(self) -> str:
        return "."


@dataclass(frozen=True, kw_only=True)
class Nil(Node):
    def __str__(self) -> str:
        return "nil"


@dataclass(frozen=True, kw_only=True)
class Const(Node):
    """A bool, number, string or char constant; `text` is its source spelling."""

    text: str
    value: object

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True, kw_only=True)
class Ident(Node):
    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True, kw_only=True)
class Field(Node):
    names: tuple[str, ...]

    def __str__(self) -> str:
        return "".join("." + n for n in self.names)


@dataclass(frozen=True, kw_only=True)
class Variable(Node):
    names: tuple[str, ...]  # ("$x", "a", "b") for $x.a.b

    def __str__(self) -> str:
        return ".".join(self.names)


@dataclass(frozen=True, kw_only=True)
class Chain(Node):
    node: Node
    names: tuple[str, ...]

    def __str__(self) -> str:
        return str(self.node) + "".join("." + n for n in self.names)


@dataclass(frozen=True, kw_only=True)
class Command(Node):
    args: tuple[Node, ...]

    def __str__(self) -> str:
        return " ".join(str(a) for a in self.args)


@dataclass(frozen=True, kw_only=True)
class Pipe(Node):
    decl: tuple[str, ...] = ()
    assign: bool = False  # `=` rather than `:=`
    cmds: tuple[Command, ...] = ()
    parens: bool = False

    def __str__(self) -> str:
        text = " | ".join(str(c) for c in self.cmds)
        if self.decl:
            text = f"{', '.join(self.decl)} {'=' if self.assign else ':='} {text}"
        return f"({text})" if self.parens else text


@dataclass(frozen=True, kw_only=True)
class Action(Node):
    pipe: Pipe


@dataclass(frozen=True, kw_only=True)
class Branch(Node):
    """`if`, `range` or `with`."""

    kind: str
    pipe: Pipe
    body: tuple[Node, ...]
    else_body: tuple[Node, ...] = ()


@dataclass(frozen=True, kw_only=True)
class LoopControl(Node):
    kind: str  # "break" | "continue"


@dataclass(frozen=True, kw_only=True)
class Invoke(Node):
    """`{{template "name" pipeline}}`."""

    name: str
    pipe: Pipe | None = None


@dataclass(frozen=True, kw_only=True)
class Template:
    name: str
    text: str
    nodes: tuple[Node, ...] = field(default=())
    defines: dict[str, tuple[Node, ...]] = field(default_factory=dict)
