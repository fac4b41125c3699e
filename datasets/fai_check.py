"""Is a FASTA index (``.fai``, and ``.gzi`` for bgzip) still the index of its file? Cheap checks, no full read.

An index is a table of byte offsets: rewritten FASTA under an index that is newer than it (``cp -p``,
``rsync -a``, an unpacked archive, a rewrite within the file system's timestamp tick) would give the old
lengths and bases from the wrong places. `index_problem` says why an index does not describe the file now,
or None when it does, from:

- the modification times (an index older than the file is stale: pyfaidx's and samtools' rule);
- the record table itself: five integer fields a line, sane line-length fields, records in file order and
  not overlapping;
- the file's size: the last record must end where the data ends (only line ends may follow);
- spot checks of the bytes at up to `SAMPLE` records spread over the file (every record of a smaller file):
  each header line ``>name`` must end exactly at its record's offset, its first line must end where the
  line-length fields say, and its last base must be followed by a line end or the end of the data;
- for bgzip, the ``.gzi``: block offsets increasing, inside the file, each sampled one a BGZF block header,
  and the file ending with the BGZF end-of-file block; the data size comes from the last block.

A few reads of a few bytes each: milliseconds for a genome, whatever its size. A same-length edit that keeps
every record where it was (a base changed in place) leaves the index valid, and is not a problem.

Example:
    >>> index_problem(Path("g.fa"), "plain", Path("g.fa.fai"))         # doctest: +SKIP
    "record 'chr2' does not start at byte 5,000,123 (its header line is not there)"
"""

from __future__ import annotations

import bisect
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

SAMPLE = 256  # records (and .gzi blocks) checked against the file's bytes
_HEADER_WINDOW = 64 * 1024  # a header line longer than this is not looked at in full
_BGZF_MAGIC = b"\x1f\x8b\x08\x04"
# The empty block every BGZF file ends with (SAM/BAM specification, section 4.1.2).
_BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")


@dataclass(frozen=True)
class FaiRecord:
    """One line of a ``.fai``: name, length in bases, byte offset of the first base, bases and bytes a line.

    Example:
        >>> record = FaiRecord("r1", length=15, offset=10, line_bases=10, line_bytes=11)
        >>> record.end  # ">r1 first\\n" is bytes 0-9, then ACGTACGTAC\\n and ACGTA: the last base is byte 25
        26
    """

    name: str
    length: int
    offset: int
    line_bases: int
    line_bytes: int

    @property
    def end(self) -> int:
        """Byte offset just after the last base (before its line end)."""
        if self.length == 0:
            return self.offset
        full, rest = divmod(self.length, self.line_bases)
        return self.offset + full * self.line_bytes + rest - (0 if rest else self.line_bytes - self.line_bases)


def index_problem(fasta: Path, compression: str, fai: Path, gzi: Path | None = None) -> str | None:
    """Why ``fai`` (and ``gzi``, for bgzip) is not the index of ``fasta`` as it is now; None when it is.

    A missing index file is a problem too ("there is no ..."). Never raises for a bad index (the answer is
    its problem); OSError reading ``fasta`` itself passes.
    """
    for index in (fai, gzi):
        if index is None:
            continue
        if not index.is_file():
            return f"there is no {index.name}"
        if index.stat().st_mtime < fasta.stat().st_mtime:
            return f"{index.name} is older than {fasta.name}"
    try:
        records = read_fai(fai)
    except ValueError as error:
        return str(error)
    with open(fasta, "rb") as handle:
        if compression == "bgzip":
            assert gzi is not None
            data = _BgzfData(handle, gzi)
            problem = data.problem
        else:
            data, problem = _PlainData(handle), None
        return problem or _records_problem(records, data, fasta.name)


def read_fai(fai: Path) -> list[FaiRecord]:
    """The records of a ``.fai``; ValueError naming the line that is not one (or the record out of place)."""
    records: list[FaiRecord] = []
    with open(fai, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            fields = raw.rstrip(b"\r\n").split(b"\t")
            try:
                name = fields[0].decode("utf-8")
                length, offset, line_bases, line_bytes = (int(f) for f in fields[1:5])
            except (UnicodeDecodeError, ValueError):
                raise ValueError(f"{fai.name}, line {number}: not a .fai record (name and four integers)") from None
            if len(fields) != 5 or not name or min(length, offset, line_bases, line_bytes) < 0 or \
                    line_bytes < line_bases or line_bytes - line_bases > 2 or (length and not line_bases):
                raise ValueError(f"{fai.name}, line {number}: not a .fai record (name and four integers)")
            record = FaiRecord(name, length, offset, line_bases, line_bytes)
            if records and offset < records[-1].end + 2:  # the previous record, then at least ">\n"
                raise ValueError(f"{fai.name}, line {number}: record {name!r} overlaps the record before it")
            records.append(record)
    if not records:
        raise ValueError(f"{fai.name} holds no records")
    return records


def _records_problem(records: list[FaiRecord], data: _PlainData | _BgzfData, name: str) -> str | None:
    size = data.size
    last = records[-1]
    if last.end > size:
        return f"the last record {last.name!r} ends at byte {last.end:,} of {name}, which has {size:,}"
    for i in _spread(len(records), SAMPLE):
        problem = _record_problem(records, i, data)
        if problem:
            return problem
    tail = data.read(last.end, min(size - last.end, 4096))
    if size - last.end > 4096 or tail.strip(b"\r\n\t "):
        return f"{name} goes on after the last indexed record {last.name!r} (byte {last.end:,} of {size:,})"
    return None


def _record_problem(records: list[FaiRecord], i: int, data: _PlainData | _BgzfData) -> str | None:
    record = records[i]
    # The header line: ">name[ description]" ending exactly at the record's offset.
    start = 0 if i == 0 else records[i - 1].end
    window_start = max(start, record.offset - _HEADER_WINDOW)
    window = data.read(window_start, record.offset - window_start)
    if window_start > start and b"\n" not in window[:-1]:
        return None  # a header line over 64 KiB: not looked at
    lines = window.split(b"\n")
    header = lines[-2] if len(lines) >= 2 and lines[-1] == b"" else None
    before = b"\n".join(lines[:-2]) if window_start == start else b""
    expected = b">" + record.name.encode("utf-8")
    if header is None or not header.startswith(expected) or header[len(expected):len(expected) + 1] not in (
            b"", b" ", b"\t", b"\r") or _not_blank(before, allow_comments=i == 0):
        return f"record {record.name!r} does not start at byte {record.offset:,} (its header line is not there)"
    # Its first line, and the line end after its last base.
    if record.length > record.line_bases:
        first = data.read(record.offset, record.line_bytes)
        if b"\n" in first[:record.line_bases] or first[record.line_bases:] not in (b"\n", b"\r\n"):
            return f"record {record.name!r}: its lines are not {record.line_bases} bases long"
    after = data.read(record.end, 1)
    if record.length and after not in (b"", b"\n", b"\r"):
        return f"record {record.name!r} does not end at byte {record.end:,} (it is not {record.length:,} bases long)"
    return None


def _not_blank(text: bytes, allow_comments: bool) -> bool:
    lines = [line.strip() for line in text.split(b"\n")]
    return any(line and not (allow_comments and line.startswith(b";")) for line in lines)


def _spread(n: int, k: int) -> Iterator[int]:
    """Up to ``k`` indices from 0 to n - 1, the first and the last among them, evenly spread."""
    if n <= k:
        yield from range(n)
        return
    yield from sorted({round(j * (n - 1) / (k - 1)) for j in range(k)})


class _PlainData:
    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle
        self.size = os.fstat(handle.fileno()).st_size

    def read(self, offset: int, n: int) -> bytes:
        return os.pread(self.handle.fileno(), max(n, 0), offset) if n > 0 else b""


class _BgzfData:
    """The uncompressed bytes of a bgzip file through its ``.gzi`` (block offsets), checked on the way."""

    def __init__(self, handle: BinaryIO, gzi: Path) -> None:
        from Bio import bgzf

        self.handle, self.problem, self.size = handle, None, 0
        file_size = os.fstat(handle.fileno()).st_size
        blob = gzi.read_bytes()
        count = struct.unpack_from("<Q", blob)[0] if len(blob) >= 8 else -1
        if count < 0 or len(blob) != 8 + 16 * count:
            self.problem = f"{gzi.name} is not a .gzi index (truncated, or of another format)"
            return
        pairs = [(0, 0), *struct.iter_unpack("<QQ", blob[8:])]
        self.compressed, self.uncompressed = [c for c, _ in pairs], [u for _, u in pairs]
        if any(b <= a for a, b in zip(self.compressed, self.compressed[1:])) or \
                any(b <= a for a, b in zip(self.uncompressed, self.uncompressed[1:])) or \
                self.compressed[-1] >= file_size:
            self.problem = f"{gzi.name}: block offsets out of order or past the end of {Path(handle.name).name}"
            return
        if file_size - self.compressed[-1] > 2 * (1 << 16) + 28:  # one block of data, then the end-of-file block
            self.problem = f"{gzi.name} does not cover {Path(handle.name).name} (its last block is not near the end)"
            return
        if os.pread(handle.fileno(), 28, file_size - 28) != _BGZF_EOF:
            self.problem = f"{Path(handle.name).name} does not end with a BGZF end-of-file block"
            return
        for i in _spread(len(pairs), SAMPLE):
            head = os.pread(handle.fileno(), 18, self.compressed[i])
            if not head.startswith(_BGZF_MAGIC) or head[12:14] != b"BC":
                self.problem = (f"{gzi.name} does not match {Path(handle.name).name} (no BGZF block at byte "
                                f"{self.compressed[i]:,})")
                return
        self.reader = bgzf.BgzfReader(fileobj=handle, mode="rb")
        try:
            self.size = self.uncompressed[-1] + len(self._read_from(len(pairs) - 1, 0, None))
        except (ValueError, OSError, EOFError) as error:
            self.problem = f"{gzi.name} does not match {Path(handle.name).name} ({error})"

    def _read_from(self, block: int, within: int, n: int | None) -> bytes:
        from Bio import bgzf

        self.reader.seek(bgzf.make_virtual_offset(self.compressed[block], within))
        if n is not None:
            return self.reader.read(n)
        parts = []
        while chunk := self.reader.read(1 << 16):
            parts.append(chunk)
        return b"".join(parts)

    def read(self, offset: int, n: int) -> bytes:
        if n <= 0:
            return b""
        block = bisect.bisect_right(self.uncompressed, offset) - 1
        within = offset - self.uncompressed[block]
        if within >= 1 << 16:  # every block is listed, and none holds more than 64 KiB
            return b""
        try:
            return self._read_from(block, within, n)
        except (ValueError, OSError, EOFError):
            return b""
