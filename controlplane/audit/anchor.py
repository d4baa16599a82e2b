"""The head kept outside the database, so truncation cannot hide.

`Anchorer` appends the head to an anchor file (JSON lines `{"seq", "hash", "at"}`, fsync'd,
never rewritten) every few seconds when it moved and at shutdown; `HeadCollector` exports it on
/metrics, so the Prometheus that scrapes the control plane keeps its own copy. `read_anchors`
and the Prometheus samples feed `AuditLog.verify(anchors=...)`.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from controlplane.audit.chain import Anchor, AuditLog, Head

log = logging.getLogger(__name__)


class AnchorError(Exception):
    """The anchor file cannot be read, or a line of it is not an anchor."""


def default_anchor_path(database_url: str) -> Path:
    """Beside a SQLite database file (`var/controlplane.db` -> `var/controlplane-audit-anchors
    .jsonl`), so another database never shares its anchors; `var/` for the others."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        db = Path(str(url.database))
        return db.with_name(f"{db.stem}-audit-anchors.jsonl")
    return Path("var/controlplane-audit-anchors.jsonl")


def rfc3339(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def append_anchor(path: Path, head: Head, at: float) -> None:
    """One JSON line, fsync'd: the file is opened for appending only and never rewritten."""
    line = json.dumps({"seq": head.seq, "hash": head.hash, "at": rfc3339(at)}) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    created = not path.exists()
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = "\n" + line  # a crash tore the last line: keep it, start a fresh one
        os.write(fd, line.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:  # the new directory entry must survive a crash too
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def read_anchors(path: Path) -> list[Anchor]:
    """Every anchor of the file. A line that is not JSON is skipped with a warning: a crash
    mid-append tears a line, and the next append starts a new one after it. A JSON line that
    is not an anchor is an AnchorError naming it."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise AnchorError(f"cannot read the anchor file {str(path)!r}: {exc}") from None
    anchors = []
    for number, line in enumerate(text.split("\n"), start=1):
        where = f"{path}:{number}"
        try:
            if line.strip():
                anchors.append(_anchor_line(line, where))
        except _TornLine:
            log.warning("%s: torn line skipped: %r", where, line)
    return anchors


class _TornLine(AnchorError):
    pass


def _anchor_line(line: str, where: str) -> Anchor:
    try:
        value = json.loads(line)
    except ValueError:
        raise _TornLine(f"{where}: {line!r} is not JSON") from None
    try:
        seq, digest = value["seq"], value["hash"]
    except (TypeError, KeyError):
        raise AnchorError(f"{where}: {line!r} is not an anchor line") from None
    ok_hash = isinstance(digest, str) and len(digest) == 64
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1 or not ok_hash:
        raise AnchorError(f"{where}: {line!r} is not an anchor line")
    return Anchor(seq=seq, hash=digest, source=where)


def last_anchor(path: Path) -> Anchor | None:
    """The newest anchor of the file, reading only its end (the file only grows)."""
    try:
        with path.open("rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 4096))
            tail = f.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return None
    for line in reversed(tail.split("\n")):
        try:
            return _anchor_line(line, str(path))
        except AnchorError:  # the empty string after the last newline, or a torn line
            continue
    return None


class Anchorer:
    """Keeps the head outside the database: appends it to the anchor file every `interval_s`
    when it moved, and once more at `stop`. Run it in the one process that writes the log."""

    def __init__(
        self,
        audit: AuditLog,
        path: Path,
        *,
        interval_s: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path, self._log, self._interval_s, self._clock = path, audit, interval_s, clock
        self._last: Head | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors = 0

    def start(self) -> None:
        try:
            self._last = self._check_last()
        except (OSError, SQLAlchemyError):  # anchoring must not keep the control plane down
            self.errors += 1
            log.exception("audit: cannot read the last anchor of %s", self.path)
        self._thread = threading.Thread(target=self._run, name="audit-anchor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._anchor_logged()

    def anchor(self) -> Head | None:
        """Append the head if it moved since the last anchor; what was appended, if anything."""
        head = self._log.head()
        if head is None or head == self._last:
            return None
        append_anchor(self.path, head, self._clock())
        self._last = head
        return head

    def _run(self) -> None:
        while not self._stopping.wait(self._interval_s):
            self._anchor_logged()

    def _anchor_logged(self) -> None:
        try:
            self.anchor()
        except (OSError, SQLAlchemyError):  # a full disk or a database blip: try again later
            self.errors += 1
            log.exception("audit: cannot anchor the head in %s", self.path)

    def _check_last(self) -> Head | None:
        """The file's newest anchor; an error logged at once if the database disagrees."""
        last = last_anchor(self.path)
        if last is None or last.hash is None:
            return None
        found = self._log.hash_at(last.seq)
        if found != last.hash:
            log.error(
                "audit: row %d has hash %r but %s anchored %r: rows deleted or rewritten?"
                " (controlplane audit verify --anchor %s)",
                *(last.seq, found, last.source, last.hash, self.path),
            )
        return Head(seq=last.seq, hash=last.hash)


class HeadCollector(Collector):
    """The head on /metrics, read at each scrape, so the Prometheus that scrapes the control
    plane keeps an independent copy of it (`controlplane audit verify --prometheus`). The info
    series carries the sequence number and hash as labels: one series per head a scrape saw."""

    def __init__(self, audit: AuditLog, anchorer: Anchorer | None = None) -> None:
        self._log, self._anchorer = audit, anchorer

    def describe(self) -> Iterator[Metric]:
        # names only: registering must not read a database that may not be migrated yet
        yield from self._families(None)

    def collect(self) -> Iterator[Metric]:
        try:
            head = self._log.head()
        except SQLAlchemyError as exc:  # no samples (absent()) rather than a failed scrape
            log.warning("audit: cannot read the head for /metrics: %s", exc)
            return
        yield from self._families(head or Head(seq=0, hash=""))

    def _families(self, head: Head | None) -> Iterator[Metric]:
        seq = GaugeMetricFamily(
            "controlplane_audit_head_sequence",
            "Sequence number of the newest audit event (0: the log is empty).",
        )
        info = GaugeMetricFamily(
            "controlplane_audit_head_info",
            "1 for the newest audit event's sequence number and SHA-256 chain hash.",
            labels=["seq", "hash"],
        )
        if head is not None:
            seq.add_metric([], head.seq)
            if head.seq:
                info.add_metric([str(head.seq), head.hash], 1)
        yield from (seq, info)
        if self._anchorer is not None:
            errors = CounterMetricFamily(
                "controlplane_audit_anchor_errors",
                "Failed appends of the audit head to the anchor file.",
            )
            if head is not None:
                errors.add_metric([], self._anchorer.errors)
            yield errors
