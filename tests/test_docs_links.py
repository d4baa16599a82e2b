"""Every relative link in the repository's Markdown resolves.

For each Markdown file (README.md, BENCHMARKS.md, docs/**, any other *.md outside hidden
directories, build output and the vendored tests/promqltest/), each relative link
(`[text](target)`, `![alt](src)`, `[label]: target`, `<img src>`, `<a href>`) must name an
existing file or directory, and a `file.md#anchor` must name a heading of that file (GitHub's
slugs) or an explicit `id`/`name` anchor in it. External links (any `scheme:`) and links to
an anchor of the same page are not checked. Code spans, fenced code and HTML comments are not
Markdown links, so they are skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]

SKIPPED_DIRS = {"__pycache__", "node_modules", "var"}
SKIPPED_PATHS = {Path("tests/promqltest")}  # vendored upstream data, with its upstream links

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
# a code span may wrap lines, but never crosses a blank line (the end of a paragraph)
_CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)((?:(?!\n[ \t]*\n).)+?)(?<!`)\1(?!`)", re.DOTALL)
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
# [text](target "title") and ![alt](src); the text may hold one level of brackets
_INLINE = re.compile(
    r"!?\[(?:[^\[\]\n]|\[[^\[\]\n]*\])*\]"
    r"\(\s*(?:<(?P<angle>[^>\n]*)>|(?P<bare>[^\s()]*(?:\([^\s()]*\)[^\s()]*)*))"
    r"(?:\s+(?:\"[^\"]*\"|'[^']*'|\([^)]*\)))?\s*\)"
)
# [label]: target, but not a footnote ([^1]: text)
_REFERENCE = re.compile(r"^ {0,3}\[(?!\^)[^\]\n]+\]:[ \t]*<?(?P<target>[^\s>]+)>?", re.MULTILINE)
_HTML = re.compile(r"<(?:img|a)\b[^>]*?\b(?:src|href)\s*=\s*[\"']([^\"']*)[\"']", re.IGNORECASE)
_HTML_ANCHOR = re.compile(r"<[a-z][^>]*?\b(?:id|name)\s*=\s*[\"']([^\"']+)[\"']", re.IGNORECASE)
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
_ATX = re.compile(r"^ {0,3}#{1,6}(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")


@dataclass(frozen=True, kw_only=True)
class Link:
    line: int
    target: str


def markdown_files() -> list[Path]:
    found = []
    for path in ROOT.rglob("*.md"):
        rel = path.relative_to(ROOT)
        parts = rel.parts[:-1]
        if any(p.startswith(".") or p in SKIPPED_DIRS or p.endswith(".egg-info") for p in parts):
            continue
        if any(rel.is_relative_to(skipped) for skipped in SKIPPED_PATHS):
            continue
        found.append(rel)
    return sorted(found)


def _blank(match: re.Match[str]) -> str:
    """The match as spaces, keeping its newlines so line numbers stay right."""
    return re.sub(r"[^\n]", " ", match.group(0))


def prose(text: str) -> str:
    """`text` with fenced code, HTML comments and code spans blanked out, same length."""
    lines = text.split("\n")
    fence: str | None = None
    for i, line in enumerate(lines):
        opening = _FENCE.match(line)
        if fence is None:
            if opening:
                fence = opening.group(1)
                lines[i] = ""
        else:
            closing = line.strip()
            if closing and set(closing) == {fence[0]} and len(closing) >= len(fence):
                fence = None
            lines[i] = " " * len(line)
    text = "\n".join(lines)
    text = _COMMENT.sub(_blank, text)
    return _CODE_SPAN.sub(_blank, text)


def links(text: str) -> list[Link]:
    text = prose(text)
    found: list[tuple[int, str]] = []
    for match in _INLINE.finditer(text):
        target = match.group("angle")
        if target is None:
            target = match.group("bare")
        found.append((match.start(), target))
    found += [(m.start(), m.group("target")) for m in _REFERENCE.finditer(text)]
    found += [(m.start(), m.group(1)) for m in _HTML.finditer(text)]
    return [
        Link(line=text.count("\n", 0, offset) + 1, target=target.strip())
        for offset, target in sorted(found)
    ]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: the rendered text, lowercased, punctuation dropped
    (letters, digits, `_`, `-` and spaces stay), spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links and images: their text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = text.replace("`", "").replace("*", "")
    text = re.sub(r"(?<!\w)_+|_+(?!\w)", "", text)  # _emphasis_, not snake_case
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every anchor a page offers: heading slugs (repeats get -1, -2, ...) and id/name."""
    seen: dict[str, int] = {}
    out: set[str] = set()
    lines = prose(text).split("\n")
    for i, line in enumerate(lines):
        heading = None
        atx = _ATX.match(line)
        if atx:
            heading = atx.group(1) or ""
        elif i > 0 and _SETEXT.match(line) and lines[i - 1].strip() and not line.startswith("|"):
            previous = lines[i - 1]
            if not _ATX.match(previous) and not previous.lstrip().startswith(("-", "*", ">")):
                heading = previous.strip()
        if heading is None:
            continue
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        out.add(base if count == 0 else f"{base}-{count}")
    out.update(m.group(1) for m in _HTML_ANCHOR.finditer(text))
    return out


def problem(source: Path, target: str, root: Path = ROOT) -> str | None:
    """Why `target`, linked from `source` (relative to `root`), does not resolve; None if it
    does."""
    if not target or target.startswith("#") or _SCHEME.match(target):
        return None
    path_part, _, fragment = target.partition("#")
    path_part = unquote(path_part.split("?", 1)[0])
    base = root if path_part.startswith("/") else (root / source).parent
    resolved = (base / path_part.lstrip("/")).resolve()
    if not resolved.is_relative_to(root):
        return f"points outside the repository ({resolved})"
    if not resolved.exists():
        return f"no such file or directory: {resolved.relative_to(root).as_posix()}"
    if fragment and resolved.is_file() and resolved.suffix.lower() == ".md":
        wanted = unquote(fragment)
        offered = anchors(resolved.read_text(encoding="utf-8"))
        if wanted not in offered and wanted.lower() not in offered:
            page = resolved.relative_to(root).as_posix()
            return f"no heading #{wanted} in {page} (headings: {', '.join(sorted(offered))})"
    return None


FILES = markdown_files()


def test_the_usual_documents_are_checked() -> None:
    names = {path.as_posix() for path in FILES}
    assert {"README.md", "BENCHMARKS.md", "docs/design.md", "docs/architecture.md"} <= names


@pytest.mark.parametrize("path", FILES, ids=[path.as_posix() for path in FILES])
def test_relative_links_resolve(path: Path) -> None:
    text = (ROOT / path).read_text(encoding="utf-8")
    broken = []
    for link in links(text):
        why = problem(path, link.target)
        if why is not None:
            broken.append(f"{path.as_posix()}:{link.line}: ({link.target}) {why}")
    assert not broken, "broken links:\n" + "\n".join(broken)


# the checker itself, on small pages


@pytest.mark.parametrize(
    ("heading", "expected"),
    [
        ("2. The bundled aggregator", "2-the-bundled-aggregator"),
        ("HTTP: the aggregator's admin API", "http-the-aggregators-admin-api"),
        ("Region, `aggregator serve --region eu`", "region-aggregator-serve---region-eu"),
        (
            "Operator wallet (Hub88 shape), `aggregator wallet`",
            "operator-wallet-hub88-shape-aggregator-wallet",
        ),
        ("See [the docs](docs/x.md) now", "see-the-docs-now"),
        ("snake_case and _emphasis_", "snake_case-and-emphasis"),
    ],
)
def test_slug_follows_github(heading: str, expected: str) -> None:
    assert slug(heading) == expected


def test_links_skip_code_and_comments_and_keep_line_numbers() -> None:
    page = "\n".join(
        [
            "# Title",
            "see [a](a.md) and `[b](b.md)`",
            "```",
            "[c](c.md)",
            "```",
            "<!-- [d](d.md) -->",
            '![e](img/e.png "title") <img alt="f" src="f.png">',
            "[ref]: <refs/g.md>",
            "[^note]: a footnote, not a link",
            "[h](<with space.md#part>)",
        ]
    )
    assert links(page) == [
        Link(line=2, target="a.md"),
        Link(line=7, target="img/e.png"),
        Link(line=7, target="f.png"),
        Link(line=8, target="refs/g.md"),
        Link(line=10, target="with space.md#part"),
    ]


def test_anchors_count_repeated_headings_and_html_ids() -> None:
    page = '# Notes\n\n## Notes\n\nSetext\n------\n\n<a id="custom"></a>\n'
    assert anchors(page) == {"notes", "notes-1", "setext", "custom"}


def test_problem_names_missing_files_and_headings(tmp_path: Path) -> None:
    root = tmp_path.resolve()
    (root / "docs").mkdir()
    (root / "bench").mkdir()
    (root / "README.md").write_text("# Title\n\n## Ports and URLs\n", encoding="utf-8")
    (root / "docs" / "other.md").write_text("# Other\n\n## Layers\n", encoding="utf-8")
    source = Path("docs/page.md")
    for fine in (
        "other.md",
        "other.md#layers",
        "../README.md#ports-and-urls",
        "/README.md",
        "../bench/",
        "https://example.com/x.md",
        "mailto:someone@example.com",
        "#anything",
    ):
        assert problem(source, fine, root) is None, fine
    assert "no such file" in (problem(source, "DESIGN.md", root) or "")
    assert "no heading #nowhere" in (problem(source, "other.md#nowhere", root) or "")
    assert "outside the repository" in (problem(source, "../../elsewhere.md", root) or "")
