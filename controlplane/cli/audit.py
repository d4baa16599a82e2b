"""Check the audit log's hash chain: finds edited, deleted and truncated rows.

    controlplane audit verify [--url DB] [--anchor [FILE]] [--prometheus URL [--selector S]]
    controlplane audit export --from T [--to T] [--url DB] [-o FILE]

`verify` checks the chain, and with `--anchor` / `--prometheus` the log against the heads kept
outside the database (the anchor file the control plane appends to, the
`controlplane_audit_head_info` series Prometheus scraped from its /metrics). Without them, rows
deleted from the end together with a rewritten head row go unnoticed: nothing left in the
database disagrees. `export` writes JSON lines (a header saying how to verify, one line per
event with what its hash covers, an end line) for regulators and postmortems. Times are
RFC3339, unix seconds, `now` or `now-1h`. The database is `--url`, else
$CONTROLPLANE_DATABASE_URL, else var/controlplane.db, else the demo's var/demo/controlplane.db
(run from the project directory); it is never created.

Exit 0: the log verifies; 1: it does not (tampered); 2: usage or I/O errors (an unreadable
anchor file, an unreachable database or Prometheus).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import requests
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from controlplane.audit import (
    Anchor,
    AnchorError,
    AuditLog,
    Verification,
    default_anchor_path,
    hash_input,
    read_anchors,
    rfc3339,
)
from controlplane.cli.query import parse_when
from controlplane.db import create_engine, reading_url

INFO_METRIC = "controlplane_audit_head_info"
SEQ_METRIC = "controlplane_audit_head_sequence"
BESIDE_DATABASE = "beside the database"  # --anchor without FILE
VERIFY_TEXT = (
    "Each event line: sha256(hash_input) is hash (hex); hash_input is the compact JSON array"
    " [prev_hash, seq, repr of at, actor, kind, execution_id, payload as stored JSON text];"
    " prev_hash is the hash of the line before (row 1's is 64 zeros) and seq goes up by one."
    " That proves the lines are one unbroken chain. To prove nothing was cut from its end,"
    " compare the head (or any seq and hash) with an anchor kept outside the database: the"
    " anchor file, or controlplane_audit_head_info in the Prometheus that scraped the control"
    " plane. A complete export ends with a line of type end."
)


class _UsageError(Exception):
    """A bad argument or an unreadable input: exit 2, with the message and no traceback."""


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="audit_command", required=True)
    verify = sub.add_parser("verify", help="verify the hash chain of the audit log")
    _url_argument(verify)
    verify.add_argument(
        "--anchor",
        nargs="?",
        const=BESIDE_DATABASE,
        metavar="FILE",
        help="check the log against this anchor file (no FILE: the default one, beside a SQLite"
        " database file)",
    )
    verify.add_argument(
        "--prometheus", metavar="URL", help="check the log against the heads Prometheus scraped"
    )
    verify.add_argument(
        "--selector",
        default="",
        help='label matchers of the control plane\'s series in Prometheus, e.g. job="controlplane"',
    )
    verify.add_argument(
        "--lookback", default="30d", help="how far back Prometheus is asked (%(default)s)"
    )
    export = sub.add_parser("export", help="write the audit events of a time range as JSON lines")
    _url_argument(export)
    export.add_argument("--from", dest="start", required=True, help="RFC3339, unix s, now-1h")
    export.add_argument("--to", dest="end", default="now", help="(default %(default)s)")
    export.add_argument("-o", "--output", help="write to FILE instead of standard output")


def _url_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url",
        default=reading_url(os.environ),
        help="the control plane's database (default $CONTROLPLANE_DATABASE_URL, else "
        "var/controlplane.db, else the demo's var/demo/controlplane.db: %(default)s)",
    )


def run(args: argparse.Namespace, session: requests.Session | None = None) -> int:
    try:
        if args.audit_command == "export":
            return _export(args)
        if session is not None:
            return _verify(args, session)
        with requests.Session() as own:
            return _verify(args, own)
    except _UsageError as exc:
        print(f"controlplane audit: {exc}", file=sys.stderr)
        return 2


def _verify(args: argparse.Namespace, session: requests.Session) -> int:
    anchors: list[Anchor] = []
    if args.anchor is not None:
        try:
            beside = args.anchor == BESIDE_DATABASE
            path = default_anchor_path(args.url) if beside else Path(args.anchor)
            anchors += _some(read_anchors(path), f"no anchors in {str(path)!r}")
        except (AnchorError, ArgumentError) as exc:  # ArgumentError: --url is no database URL
            raise _UsageError(str(exc)) from None
    if args.prometheus:
        anchors += prometheus_anchors(
            args.prometheus, selector=args.selector, lookback=args.lookback, session=session
        )
    with _database(args.url) as engine:
        result = AuditLog(engine).verify(anchors)
    for problem in result.problems:
        print(f"  BROKEN: {problem}")
    print(_summary(result, anchors))
    return 0 if result.ok else 1


def _summary(result: Verification, anchors: list[Anchor]) -> str:
    verdict = f"{'OK' if result.ok else 'FAILED'}: {result.checked} audit events checked"
    if not anchors:
        return (
            f"{verdict} (the chain only: rows deleted from the end with the head row rewritten"
            " would go unnoticed; add --anchor or --prometheus)"
        )
    newest = max(a.seq for a in anchors)
    count = f"{len(anchors)} anchor{'s' if len(anchors) != 1 else ''}"
    return f"{verdict} against {count} (the newest at row {newest})"


def _some(anchors: list[Anchor], why_empty: str) -> list[Anchor]:
    if not anchors:  # asked to compare with nothing: a wrong file or selector, not an OK
        raise _UsageError(why_empty)
    return anchors


def prometheus_anchors(
    url: str, *, selector: str, lookback: str, session: requests.Session
) -> list[Anchor]:
    """Every head the Prometheus at `url` scraped within `lookback` (seq and hash, from the info
    series), and the highest sequence number it saw (from the plain gauge)."""
    base, matchers = url.rstrip("/"), f"{{{selector}}}" if selector else ""
    source = f"Prometheus {base}"
    info = _query(session, base, f"last_over_time({INFO_METRIC}{matchers}[{lookback}])")
    top = _query(session, base, f"max_over_time({SEQ_METRIC}{matchers}[{lookback}])")
    if not info and not top:
        raise _UsageError(
            f"{source} has no {SEQ_METRIC}{matchers} within {lookback!r}: does it scrape the"
            " control plane's /metrics (see --selector, --lookback)?"
        )
    try:
        anchors = [
            Anchor(seq=int(s["metric"]["seq"]), hash=str(s["metric"]["hash"]), source=source)
            for s in info
        ]
        highest = max(int(float(s["value"][1])) for s in top) if top else 0
    except (KeyError, TypeError, ValueError, IndexError):
        raise _UsageError(f"{source} answered samples that are not audit heads: {info!r}") from None
    if highest > 0:
        anchors.append(Anchor(seq=highest, hash=None, source=f"{source} ({SEQ_METRIC})"))
    return anchors


def _query(session: requests.Session, base: str, expr: str) -> list[dict[str, Any]]:
    try:
        response = session.get(f"{base}/api/v1/query", params={"query": expr}, timeout=30)
        body = response.json()
    except (requests.RequestException, ValueError) as exc:
        raise _UsageError(f"cannot query Prometheus at {base!r}: {exc}") from None
    if not isinstance(body, dict) or body.get("status") != "success":
        error = body.get("error") if isinstance(body, dict) else body
        raise _UsageError(f"Prometheus at {base!r} refused {expr!r}: {error!r}")
    result = body.get("data", {}).get("result")
    if not isinstance(result, list):
        raise _UsageError(f"Prometheus at {base!r} answered {expr!r} with {body!r}")
    return result


@contextlib.contextmanager
def _database(url: str) -> Iterator[Engine]:
    """The engine, refusing a SQLite file that does not exist (opening it would create an empty
    one); database errors become usage errors naming the URL."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise _UsageError(f"--url {url!r} is not a database URL") from None
    shown = parsed.render_as_string(hide_password=True)
    path = parsed.database
    in_file = parsed.get_backend_name() == "sqlite" and path not in (None, "", ":memory:")
    if in_file and not Path(str(path)).is_file():
        raise _UsageError(f"no database file at {path!r} (--url or $CONTROLPLANE_DATABASE_URL)")
    try:
        engine = create_engine(url)
    except (ArgumentError, ImportError) as exc:
        raise _UsageError(f"cannot open {shown!r}: {exc}") from None
    try:
        yield engine
    except SQLAlchemyError as exc:
        raise _UsageError(f"cannot read the audit log at {shown!r}: {exc.args[0]}") from None
    finally:
        engine.dispose()


def _export(args: argparse.Namespace) -> int:
    now = time.time()
    try:
        start, end = (parse_when(t, round(now * 1000)) / 1000 for t in (args.start, args.end))
    except ValueError as exc:
        raise _UsageError(f"--from/--to: {exc}") from None
    if end <= start:
        raise _UsageError(f"--to {args.end!r} must be after --from {args.start!r}")
    with _database(args.url) as engine, _output(args.output) as out:
        log = AuditLog(engine)
        head = log.head()
        header = {
            "type": "header",
            "format": "controlplane-audit-export",
            "version": 1,
            "database": engine.url.render_as_string(hide_password=True),
            **{"from": rfc3339(start), "to": rfc3339(end), "exported_at": rfc3339(now)},
            "head": None if head is None else {"seq": head.seq, "hash": head.hash},
            "verify": VERIFY_TEXT,
        }
        out.write(json.dumps(header) + "\n")
        end_line, problems = _write_events(out, log.rows_between(start, end))
        out.write(json.dumps(end_line) + "\n")
    for problem in problems:
        print(f"  BROKEN: {problem}", file=sys.stderr)
    where = args.output or "standard output"
    print(f"exported {end_line['events']} audit events to {where}", file=sys.stderr)
    return 1 if problems else 0


def _write_events(out: IO[str], rows: Iterable[Any]) -> tuple[dict[str, Any], list[str]]:
    """One line per row, checking the chain as it goes (the file is written either way: it is
    the evidence); the end line and what was wrong."""
    problems: list[str] = []
    count, first, last = 0, None, None
    for row in rows:
        hashed = hash_input(
            row.prev_hash, row.seq, row.at, row.actor, row.kind, row.execution_id, row.data
        )
        if hashlib.sha256(hashed.encode()).hexdigest() != row.hash:
            problems.append(f"row {row.seq}: content does not match its hash (edited)")
        if last is not None and (row.seq != last.seq + 1 or row.prev_hash != last.hash):
            problems.append(f"row {row.seq}: does not follow row {last.seq} (rows missing?)")
        out.write(json.dumps(_event_line(row, hashed)) + "\n")
        count, first, last = count + 1, first or row, row
    end = {
        "type": "end",
        "events": count,
        "first_seq": first.seq if first else None,
        "last_seq": last.seq if last else None,
        "last_hash": last.hash if last else None,
    }
    return end, problems


def _event_line(row: Any, hashed: str) -> dict[str, Any]:
    try:
        payload = json.loads(row.data)
    except ValueError:  # an edited row may not even be JSON: show what is there
        payload = row.data
    return {
        "type": "event",
        "seq": row.seq,
        "time": rfc3339(row.at),
        "at": row.at,
        "kind": row.kind,
        "actor": row.actor,
        "execution_id": row.execution_id,
        "payload": payload,
        "prev_hash": row.prev_hash,
        "hash": row.hash,
        "hash_input": hashed,
    }


@contextlib.contextmanager
def _output(path: str | None) -> Iterator[IO[str]]:
    """Standard output, or FILE written whole or not at all (a temporary file, renamed)."""
    if path is None:
        yield sys.stdout
        return
    target = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    except OSError as exc:
        raise _UsageError(f"cannot write {path!r}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            yield out
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
