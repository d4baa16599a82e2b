"""Files of the store: the export format (`Store.export_range` / `Store.import_range`, read by
`controlplane backtest --from`), and the atomic write and JSON-in-npz helpers that the
checkpoint's snapshots share with it.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from controlplane.errors import StoreError
from controlplane.model.series import SeriesBatch

_EXPORT_META = {"format": "controlplane-export", "version": 1}
savez: Any = np.savez  # numpy's stubs do not type **arrays


def json_bytes(obj: Any) -> npt.NDArray[np.uint8]:
    return np.frombuffer(json.dumps(obj, separators=(",", ":")).encode(), dtype=np.uint8)


def json_load(arr: npt.NDArray[Any]) -> Any:
    return json.loads(arr.tobytes().decode())


def atomic_write(path: Path, write: Callable[[Any], None]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def write_export(batch: SeriesBatch, path: Path) -> None:
    """Write a SeriesBatch in the export format (atomically)."""
    arrays = {
        "meta": json_bytes(_EXPORT_META),
        "labels": json_bytes([dict(labels) for labels in batch.labels]),
        "timestamps": batch.timestamps,
        "values": batch.values,
        "offsets": batch.offsets,
    }
    atomic_write(path, lambda f: savez(f, **arrays))


def read_export(path: Path) -> SeriesBatch:
    """Read an export file back into a SeriesBatch."""
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json_load(data["meta"])
            if meta.get("format") != _EXPORT_META["format"]:
                raise StoreError(f"{str(path)!r} is not a controlplane export: {meta!r}")
            return SeriesBatch(
                labels=[tuple(sorted(d.items())) for d in json_load(data["labels"])],
                timestamps=data["timestamps"].astype(np.int64),
                values=data["values"].astype(np.float64),
                offsets=data["offsets"].astype(np.int64),
            )
    except (OSError, ValueError, KeyError) as exc:
        raise StoreError(f"cannot read export {str(path)!r}: {exc}") from exc
