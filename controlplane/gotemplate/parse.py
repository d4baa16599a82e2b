"""Parse the subset of Go's text/template that Prometheus rule files use.

Text and actions (`{{ }}` with `{{-`/`-}}` trimming and `{{/* comments */}}`), pipelines with
`|`, variables (`$x := ...`, `$x = ...`, `$labels.name`), fields (`.Labels.name`), constants,
parenthesised pipelines, `if`/`else if`/`else`, `range` (with `$i, $e :=` and `else`), `with`,
`break`/`continue` and `end`. Like Go, unknown functions and undefined variables are errors when
the template is parsed, which is when Prometheus reports them (rule loading); `define`,
`template` and `block` are refused (rule templates are single texts).

Positions are byte offsets into the text, as Go reports them (`name:line:col`).
"""

from __future__ import annotations

from collections.abc import Collection

from controlplane.gotemplate.fmt import go_quote
from controlplane.gotemplate.lex import KEYWORDS, TemplateParseError, Tok, error, lex_action
from controlplane.gotemplate.nodes import (
    Action,
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

__all__ = ["KEYWORDS", "Template", "TemplateParseError", "parse"]


def parse(text: str, name: str, functions: Collection[str]) -> Template:
    """Parse `text`; raise TemplateParseError with Go's message when Go's parser would."""
    parser = _Parser(text, name, functions)
    nodes, stop = parser.list_until(())
    if stop is not None:
        raise error(name, text, stop.pos, f"unexpected {{{{{stop.text}}}}}")
    return Template(name=name, text=text, nodes=tuple(nodes), defines=parser.defines)


class _Parser:
    def __init__(self, text: str, name: str, functions: Collection[str]) -> None:
        self.text, self.name, self.functions = text, name, functions
        self.i = 0
        self.trim_next = False
        self.vars = ["$"]
        self.loops = 0
        self.toks: list[Tok] = []
        self.k = 0
        self.defines: dict[str, tuple[Node, ...]] = {}
        self.depth = 0

    def fail(self, pos: int, message: str) -> TemplateParseError:
        return error(self.name, self.text, pos, message)

    # -- list of items, up to a keyword in `stops` (returned) or EOF (None)
    def list_until(self, stops: tuple[str, ...]) -> tuple[list[Node], Tok | None]:
        nodes: list[Node] = []
        while True:
            start = self.text.find("{{", self.i)
            chunk = self.text[self.i : start if start >= 0 else len(self.text)]
            if self.trim_next:
                chunk = chunk.lstrip(" \t\r\n")
            trim_left = (
                start >= 0
                and self.text.startswith("{{-", start)
                and (start + 3 < len(self.text) and self.text[start + 3] in " \t\r\n")
            )
            if trim_left:
                chunk = chunk.rstrip(" \t\r\n")
            if chunk:
                nodes.append(Text(pos=self.i, text=chunk))
            if start < 0:
                if stops:
                    raise self.fail(len(self.text), "unexpected EOF")
                return nodes, None
            body = start + (4 if trim_left else 2)
            if self._comment(body):
                continue
            self.toks, self.i, self.trim_next = lex_action(self.text, body, self.name)
            self.toks = [t for t in self.toks if t.kind != "space"] + [
                Tok(kind="eof", text="}}", pos=self.i - 2)
            ]
            self.k = 0
            first = self.toks[0]
            if first.kind == "kw":
                if first.text in stops:
                    return nodes, first
                nodes.append(self.keyword(first))
            else:
                pipe = self.pipeline(self.toks[0].pos, in_parens=False)
                nodes.append(Action(pos=first.pos, pipe=pipe))

    def _comment(self, body: int) -> bool:
        j = body
        while j < len(self.text) and self.text[j] in " \t\r\n":
            j += 1
        if not self.text.startswith("/*", j):
            return False
        end = self.text.find("*/", j + 2)
        if end < 0:
            raise self.fail(j, "unclosed comment")
        k = end + 2
        trim = False
        if self.text.startswith(" -}}", k):
            k, trim = k + 4, True
        elif self.text.startswith("}}", k):
            k += 2
        else:
            raise self.fail(k, "comment ends before closing delimiter")
        self.i, self.trim_next = k, trim
        return True

    def peek(self) -> Tok:
        return self.toks[self.k]

    def take(self) -> Tok:
        tok = self.toks[self.k]
        self.k += 1
        return tok

    def keyword(self, tok: Tok) -> Node:
        self.k = 1
        if tok.text in ("if", "range", "with"):
            return self.branch(tok)
        if tok.text in ("break", "continue"):
            if self.loops == 0:
                raise self.fail(tok.pos, f"{{{{{tok.text}}}}} outside {{{{range}}}}")
            self.expect_end(tok.text)
            return LoopControl(pos=tok.pos, kind=tok.text)
        if tok.text in ("define", "block"):
            return self.define(tok)
        if tok.text == "template":
            name = self.template_name("template")
            pipe = None
            if self.peek().kind != "eof":
                pipe = self.pipeline(self.peek().pos, in_parens=False, context="template clause")
            return Invoke(pos=tok.pos, name=name, pipe=pipe)
        raise self.fail(tok.pos, f"unexpected {{{{{tok.text}}}}}")

    def template_name(self, context: str) -> str:
        tok = self.take()
        if tok.kind != "const" or not isinstance(tok.value, str):
            raise self.fail(tok.pos, f"unexpected {go_quote(tok.text)} in {context} clause")
        return tok.value

    def define(self, tok: Tok) -> Node:
        if self.depth and tok.text == "define":
            raise self.fail(tok.pos, "unexpected <define> in command")
        name = self.template_name(tok.text)
        pipe = None
        if tok.text == "block":
            pipe = self.pipeline(self.peek().pos, in_parens=False, context="block clause")
        else:
            self.expect_end("define clause")
        saved, self.vars = self.vars, ["$"]
        self.depth += 1
        body, _ = self.list_until(("end",))
        self.depth -= 1
        self.vars = saved
        self.defines[name] = tuple(body)
        if tok.text == "block":
            return Invoke(pos=tok.pos, name=name, pipe=pipe)
        return Text(pos=tok.pos, text="")

    def expect_end(self, context: str) -> None:
        if self.peek().kind != "eof":
            raise self.fail(
                self.peek().pos, f"unexpected {go_quote(self.peek().text)} in {context}"
            )

    def branch(self, tok: Tok) -> Branch:
        depth = len(self.vars)
        pipe = self.pipeline(tok.pos, in_parens=False, context=tok.text)
        if tok.text == "range":
            self.loops += 1
        self.depth += 1
        body, stop = self.list_until(("else", "end"))
        self.depth -= 1
        if tok.text == "range":
            self.loops -= 1
        else_body: list[Node] = []
        assert stop is not None
        if stop.text == "else":
            self.k = 1
            if self.peek().kind == "kw" and self.peek().text == "if" and tok.text == "if":
                # `else if` is sugar for a nested if that shares this end
                inner = self.take()
                else_body = [self.branch(inner)]
                del self.vars[depth:]
                return Branch(
                    pos=tok.pos,
                    kind=tok.text,
                    pipe=pipe,
                    body=tuple(body),
                    else_body=tuple(else_body),
                )
            self.expect_end("else")
            else_body, stop = self.list_until(("end",))
            assert stop is not None
        self.k = 1
        self.expect_end("end")
        del self.vars[depth:]
        return Branch(
            pos=tok.pos, kind=tok.text, pipe=pipe, body=tuple(body), else_body=tuple(else_body)
        )

    def pipeline(self, pos: int, *, in_parens: bool, context: str = "command") -> Pipe:
        decl, assign = self.declarations(context)
        cmds: list[Command] = []
        end_kind = "rparen" if in_parens else "eof"
        while True:
            tok = self.peek()
            if tok.kind == end_kind:
                if not cmds:
                    what = "parenthesized pipeline" if in_parens else context
                    raise self.fail(tok.pos, f"missing value for {what}")
                if in_parens:
                    self.take()
                break
            if tok.kind == "eof":
                raise self.fail(tok.pos, "unclosed left paren")
            if tok.kind == "rparen":
                raise self.fail(tok.pos, f'unexpected ")" in {context}')
            if tok.kind == "pipe":
                raise self.fail(tok.pos, f'unexpected "|" in {context}')
            cmds.append(self.command())
            if self.peek().kind == "pipe":
                self.take()
        for stage, cmd in enumerate(cmds[1:], start=2):
            if isinstance(cmd.args[0], Const | Nil | Dot):
                raise self.fail(cmd.pos, f"non executable command in pipeline stage {stage}")
        self.vars.extend(v for v in decl if not assign)
        return Pipe(pos=pos, decl=decl, assign=assign, cmds=tuple(cmds), parens=in_parens)

    def declarations(self, context: str) -> tuple[tuple[str, ...], bool]:
        names: list[str] = []
        start = self.k
        while self.peek().kind == "var":
            names.append(self.take().text)
            nxt = self.peek()
            if nxt.kind == "declare" or nxt.kind == "assign":
                self.take()
                assign = nxt.kind == "assign"
                if len(names) > (2 if context == "range" else 1):
                    raise self.fail(nxt.pos, f"too many declarations in {context}")
                if assign:
                    for n in names:
                        self.check_var(n, nxt.pos)
                return tuple(names), assign
            if nxt.kind == "comma" and context == "range":
                self.take()
                continue
            break
        self.k = start
        return (), False

    def check_var(self, name: str, pos: int) -> None:
        if name not in self.vars:
            raise self.fail(pos, f'undefined variable "{name}"')

    def command(self) -> Command:
        args: list[Node] = []
        pos = self.peek().pos
        while self.peek().kind not in ("eof", "rparen", "pipe"):
            args.append(self.operand())
        if not args:
            raise self.fail(pos, "empty command")
        return Command(pos=pos, args=tuple(args))

    def operand(self) -> Node:
        tok = self.take()
        node: Node
        if tok.kind == "ident":
            if tok.text not in self.functions:
                raise self.fail(tok.pos, f'function "{tok.text}" not defined')
            node = Ident(pos=tok.pos, name=tok.text)
        elif tok.kind == "var":
            self.check_var(tok.text, tok.pos)
            node = Variable(pos=tok.pos, names=(tok.text, *self.fields()))
            return node
        elif tok.kind == "field":
            return Field(pos=tok.pos, names=(tok.text[1:], *self.fields()))
        elif tok.kind == "dot":
            node = Dot(pos=tok.pos)
        elif tok.kind == "nil":
            node = Nil(pos=tok.pos)
        elif tok.kind == "const":
            node = Const(pos=tok.pos, text=tok.text, value=tok.value)
        elif tok.kind == "lparen":
            node = self.pipeline(tok.pos, in_parens=True)
        else:
            raise self.fail(tok.pos, f"unexpected {go_quote(tok.text)} in operand")
        names = self.fields()
        return Chain(pos=node.pos, node=node, names=names) if names else node

    def fields(self) -> tuple[str, ...]:
        names: list[str] = []
        while self.peek().kind == "field" and self._adjacent():
            names.append(self.take().text[1:])
        return tuple(names)

    def _adjacent(self) -> bool:
        prev = self.toks[self.k - 1]
        return prev.pos + len(prev.text) == self.peek().pos
