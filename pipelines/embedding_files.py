"""Embedding files written a chunk of rows at a time: Parquet (a row group per chunk) or ``.npy``.

Both write into a file that `atomic_path` renames into place once the last row is in, so memory holds
one chunk of embeddings and a reader never sees half a file.
"""

from __future__ import annotations

import contextlib
import os
import struct
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
    """Columns ``id`` [, ``start``, ``end``], ``file``, ``emb_0..emb_{d-1}`` (float32); the schema comes with the
    first chunk. ``file`` is the FASTA file of the row's record, as the user named it."""

    def __init__(self, path: Path, per_window: bool) -> None:
        self.path, self.per_window = path, per_window
        self.writer = None
        self.rows = 0

    def append(self, ids: list[str], starts: np.ndarray | None, ends: np.ndarray | None, emb: np.ndarray,
               files: list[str]) -> None:
        """One chunk: ``emb`` is ``(rows, d)``; ``starts``/``ends`` only per window; ``files`` one per row."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        columns: dict[str, Any] = {"id": pa.array(ids, type=pa.string())}
        if self.per_window:
            columns["start"] = pa.array(starts, type=pa.int64())
            columns["end"] = pa.array(ends, type=pa.int64())
        columns["file"] = pa.array(files, type=pa.string())
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


def npy_header(shape: tuple[int, int], size: int | None = None) -> bytes:
    """A ``.npy`` format 1.0 header for a C-order float32 array, padded with spaces to ``size`` bytes
    (default: the next multiple of 64, numpy's alignment)."""
    text = repr({"descr": "<f4", "fortran_order": False, "shape": shape}).encode("latin1")
    size = -(-(10 + len(text) + 1) // 64) * 64 if size is None else size  # magic, version, length, text, "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", size - 10) + text + b" " * (size - 10 - len(text) - 1) + b"\n"


# Rows not known up front (streamed input): the header is written for this many, then rewritten in place.
_UNKNOWN_ROWS = 10**18


class NpyRows:
    """A ``(rows, d)`` float32 ``.npy``: the header with the first chunk, then raw rows.

    ``rows`` None (streamed input, its count unknown): the header leaves room for any count and is
    rewritten with the real one at `close` (the output is a temporary regular file, so it can seek).
    """

    def __init__(self, path: Path, rows: int | None) -> None:
        self.path, self.expected = path, rows
        self.handle = None
        self.header_size = self.width = 0
        self.rows = 0

    def append(self, ids: list[str], starts: np.ndarray | None, ends: np.ndarray | None, emb: np.ndarray,
               files: list[str] | None = None) -> None:
        emb = np.ascontiguousarray(emb, dtype="<f4")  # (rows, d)
        if self.handle is None:
            self.handle = open(self.path, "wb")  # closed by close() or abort()
            if self.expected is None and not self.handle.seekable():
                raise InputError(f"{self.path}: a .npy from streamed input needs a regular file (its header is "
                                 "written last); write .parquet, or to a file")
            self.width = emb.shape[1]
            header = npy_header((_UNKNOWN_ROWS if self.expected is None else self.expected, self.width))
            self.header_size = len(header)
            self.handle.write(header)
        self.handle.write(emb.tobytes())
        self.rows += len(emb)

    def close(self) -> None:
        if self.handle is not None:
            if self.expected is None:
                self.handle.seek(0)
                self.handle.write(npy_header((self.rows, self.width), self.header_size))
            self.handle.close()
        if self.expected is not None and self.rows != self.expected:  # the header promised this many: a bug
            raise RuntimeError(f"{self.path}: wrote {self.rows} rows, the .npy header says {self.expected}")

    def abort(self) -> None:
        """Release the file after a failure (the caller removes it)."""
        if self.handle is not None:
            with contextlib.suppress(OSError):
                self.handle.close()
