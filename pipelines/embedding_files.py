"""Embedding files written a chunk of rows at a time: Parquet (a row group per chunk) or ``.npy``.

Both write into a file that `atomic_path` renames into place once the last row is in, so memory holds
one chunk of embeddings and a reader never sees half a file.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError

SUFFIXES = (".parquet", ".npy")


def check_embedding_output(output: str | os.PathLike) -> str:
    """``.parquet`` or ``.npy`` (lower case), else an InputError naming the file (before any work)."""
    suffix = Path(output).suffix.lower()
    if suffix not in SUFFIXES:
        raise InputError(f"{output}: the output must end in .parquet or .npy")
    return suffix


class ParquetRows:
    """Columns ``id`` [, ``start``, ``end``], ``emb_0..emb_{d-1}`` (float32); the schema comes with the first chunk."""

    def __init__(self, path: Path, per_window: bool) -> None:
        self.path, self.per_window = path, per_window
        self.writer = None
        self.rows = 0

    def append(self, ids: list[str], starts: np.ndarray | None, ends: np.ndarray | None, emb: np.ndarray) -> None:
        """One chunk: ``emb`` is ``(rows, d)``; ``starts``/``ends`` only per window."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        columns: dict[str, Any] = {"id": pa.array(ids, type=pa.string())}
        if self.per_window:
            columns["start"] = pa.array(starts, type=pa.int64())
            columns["end"] = pa.array(ends, type=pa.int64())
        emb = np.ascontiguousarray(emb, dtype=np.float32)  # (rows, d)
        for i in range(emb.shape[1]):
            columns[f"emb_{i}"] = pa.array(emb[:, i])
        table = pa.table(columns)
        if self.writer is None:
            self.writer = pq.ParquetWriter(str(self.path), table.schema)
        self.writer.write_table(table)
        self.rows += len(ids)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

    def abort(self) -> None:
        """Release the file after a failure (the caller removes it)."""
        with contextlib.suppress(Exception):
            self.close()


class NpyRows:
    """A ``(rows, d)`` float32 ``.npy``: the header (rows known up front) with the first chunk, then raw rows."""

    def __init__(self, path: Path, rows: int) -> None:
        self.path, self.expected = path, rows
        self.handle = None
        self.rows = 0

    def append(self, ids: list[str], starts: np.ndarray | None, ends: np.ndarray | None, emb: np.ndarray) -> None:
        emb = np.ascontiguousarray(emb, dtype="<f4")  # (rows, d)
        if self.handle is None:
            self.handle = open(self.path, "wb")  # closed by close() or abort()
            header = {"descr": "<f4", "fortran_order": False, "shape": (self.expected, emb.shape[1])}
            np.lib.format.write_array_header_1_0(self.handle, header)
        self.handle.write(emb.tobytes())
        self.rows += len(emb)

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
        if self.rows != self.expected:  # the header promised this many: a mismatch is a bug, not a file
            raise RuntimeError(f"{self.path}: wrote {self.rows} rows, the .npy header says {self.expected}")

    def abort(self) -> None:
        """Release the file after a failure (the caller removes it)."""
        if self.handle is not None:
            with contextlib.suppress(OSError):
                self.handle.close()
