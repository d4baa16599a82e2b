"""Tokens of one Go template action (`{{ ... }}`), with Go's lexical errors."""

from __future__ import annotations

import ast
from dataclasses import dataclass

from controlplane.errors import ConfigError
from controlplane.gotemplate.fmt import go_quote


class TemplateParseError(ConfigError):
    """A template that Go's parser would refuse; the message is Go's (`template: name:1: ...`)."""


KEYWORDS = frozenset(
    {"if", "else", "end", "range", "with", "break", "continue", "define", "template", "block"}
)


@dataclass(frozen=True, kw_only=True)
class Tok:
    kind: str  # ident field var const dot nil pipe lparen rparen declare assign comma kw space
    text: str
    pos: int
    value: object = None


_PUNCT = {"|": "pipe", "(": "lparen", ")": "rparen", ",": "comma", "=": "assign"}


def lex_action(text: str, start: int, name: str) -> tuple[list[Tok], int, bool]:
    """Tokens of one action starting after `{{` (and its trim marker); returns (tokens, index
    after `}}`, right-trim)."""
    toks: list[Tok] = []
    i, n = start, len(text)
    while True:
        if i >= n:
            raise error(name, text, start, "unclosed action")
        ch = text[i]
        if text.startswith(" -}}", i) or text.startswith("\t-}}", i) or text.startswith("\n-}}", i):
            return toks, i + 4, True
        if text.startswith("}}", i):
            return toks, i + 2, False
        if ch in " \t\r\n":
            j = i
            while j < n and text[j] in " \t\r\n":
                j += 1
            toks.append(Tok(kind="space", text=text[i:j], pos=i))
            i = j
        elif text.startswith(":=", i):
            toks.append(Tok(kind="declare", text=":=", pos=i))
            i += 2
        elif ch in _PUNCT:
            toks.append(Tok(kind=_PUNCT[ch], text=ch, pos=i))
            i += 1
        elif ch in "\"`'":
            i = _lex_quoted(text, i, name, toks)
        elif ch == "$" or ch.isalpha() or ch == "_":
            j = i + 1
            while j < n and (text[j].isalnum() or text[j] == "_"):
                j += 1
            word = text[i:j]
            toks.append(_word_token(word, i))
            i = j
        elif ch == "." and not (i + 1 < n and text[i + 1].isdigit()):
            j = i + 1
            while j < n and (text[j].isalnum() or text[j] == "_"):
                j += 1
            kind = "field" if j > i + 1 else "dot"
            toks.append(Tok(kind=kind, text=text[i:j], pos=i))
            i = j
        elif ch.isdigit() or ch in "+-.":
            j = i + 1
            while j < n and (
                text[j].isalnum() or text[j] in "._" or (text[j] in "+-" and text[j - 1] in "eEpP")
            ):
                j += 1
            toks.append(_number(text[i:j], i, name, text))
            i = j
        else:
            raise error(name, text, i, f"unexpected {go_quote(ch)} in command")


def _word_token(word: str, pos: int) -> Tok:
    if word in ("true", "false"):
        return Tok(kind="const", text=word, pos=pos, value=word == "true")
    if word == "nil":
        return Tok(kind="nil", text=word, pos=pos)
    if word.startswith("$"):
        return Tok(kind="var", text=word, pos=pos)
    if word in KEYWORDS:
        return Tok(kind="kw", text=word, pos=pos)
    return Tok(kind="ident", text=word, pos=pos)


def _lex_quoted(text: str, i: int, name: str, toks: list[Tok]) -> int:
    quote = text[i]
    j = i + 1
    while j < len(text) and text[j] != quote:
        if text[j] == "\\" and quote != "`":
            j += 1
        elif text[j] == "\n" and quote != "`":
            raise error(name, text, i, "unterminated quoted string")
        j += 1
    if j >= len(text):
        raise error(name, text, i, "unterminated quoted string")
    raw = text[i : j + 1]
    if quote == "`":
        value: object = raw[1:-1]
    else:
        try:
            # Go's escapes are a subset of Python's for the forms rule files use
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            raise error(name, text, i, f"bad quoted string {go_quote(raw)}") from None
        if quote == "'":
            if not isinstance(value, str) or len(value) != 1:
                raise error(name, text, i, f"malformed character constant: {raw}")
            value = ord(value)
    toks.append(Tok(kind="const", text=raw, pos=i, value=value))
    return j + 1


def _number(word: str, pos: int, name: str, text: str) -> Tok:
    clean = word.replace("_", "")
    try:
        lower = clean.lower().lstrip("+-")
        if lower.startswith(("0x", "0o", "0b")) and "p" not in lower and "." not in lower:
            value: object = int(clean, 0)
        elif lower.startswith("0x"):
            value = float.fromhex(clean)
        elif any(c in clean for c in ".eE"):
            value = float(clean)
        else:
            value = int(clean, 8) if len(lower) > 1 and lower[0] == "0" else int(clean)
    except ValueError:
        raise error(name, text, pos, f"illegal number syntax: {go_quote(word)}") from None
    return Tok(kind="const", text=word, pos=pos, value=value)


def error(name: str, text: str, pos: int, message: str) -> TemplateParseError:
    line = 1 + text.count("\n", 0, pos)
    return TemplateParseError(f"template: {name}:{line}: {message}")
