"""A validating single pass over a FASTA file that yields sequence in chunks (bounded memory).

Biopython and pyfaidx read FASTA well but forgive or misreport bad input; this pass is the one place
that checks it and says where it is wrong (file, line, column). It reads blocks of decompressed
bytes, so a chromosome on a single unwrapped line never sits in memory whole.
"""

from __future__ import annotations

import gzip
import io
import logging
import os
import stat
import sys
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

from ..errors import InputError

log = logging.getLogger(__name__)

# Nucleotide codes the reader accepts (IUPAC, either case, U included), plus line ends.
SEQUENCE_BYTES = b"ACGTUNRYSWKMBDHVacgtunryswkmbdhv"
_LINE_BYTES = SEQUENCE_BYTES + b"\r\n"
_MAX_HEADER = 1 << 16

Compression = Literal["plain", "gzip", "bgzip"]
EmptyPolicy = Literal["warn", "error"]


@dataclass(frozen=True)
class RecordStart:
    """A header line: the record's name (first word), the rest of the line, and its line number."""

    name: str
    description: str
    line: int


STDIN = "-"  # the path that names standard input
_HEAD = 18  # bytes that tell plain, gzip and bgzip apart


def is_stream(path: str | os.PathLike) -> bool:
    """True for input that can be read only once, from its start: ``-`` (standard input), a pipe
    (``<(zcat x.fa.gz)`` gives ``/dev/fd/N``), a FIFO, a terminal. Regular files, directories and
    missing paths are False."""
    if os.fspath(path) == STDIN:
        return True
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def input_name(path: str | os.PathLike) -> str:
    """How messages name an input: ``<stdin>`` for ``-``, else the path as given."""
    return "<stdin>" if os.fspath(path) == STDIN else os.fspath(path)


def random_access_error(path: str | os.PathLike, what: str, hint: str = "give a file path") -> InputError:
    """The error for a stream where ``what`` needs to seek, e.g. ``/dev/fd/63: a pipe; 'ingest' needs
    random access to the file (give a file path)``."""
    if os.fspath(path) == STDIN:
        kind = "standard input"
    else:
        try:
            kind = "a pipe" if stat.S_ISFIFO(os.stat(path).st_mode) else "not a regular file"
        except OSError:
            kind = "not a regular file"
    return InputError(f"{input_name(path)}: {kind}; {what} needs random access to the file ({hint})")


def detect_compression(path: str | os.PathLike) -> Compression:
    """``"plain"``, ``"gzip"`` or ``"bgzip"`` from the file's first bytes (not its name).

    For a stream (`is_stream`) this would consume those bytes: open it with `OnceStream` instead.
    """
    try:
        with open(path, "rb") as handle:
            head = handle.read(_HEAD)
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, not a FASTA file") from None
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    return _compression_of(head, path)


def _compression_of(head: bytes, path: str | os.PathLike) -> Compression:
    if head[:2] == b"\x1f\x8b":
        # BGZF: gzip with the FEXTRA flag and a 'BC' subfield (SAM/BAM specification, section 4.1).
        if len(head) >= 14 and head[3] & 4 and head[12:14] == b"BC":
            return "bgzip"
        return "gzip"
    for magic, name in ((b"BZh", "bzip2"), (b"\xfd7zXZ", "xz"), (b"\x28\xb5\x2f\xfd", "zstd")):
        if head.startswith(magic):
            raise InputError(f"{path}: {name}-compressed; seqmamba reads plain, gzip or bgzip FASTA "
                             f"(decompress it, then `bgzip` it for random access)")
    return "plain"


class OnceStream:
    """An input read once, from its start, without seeking: ``-`` (standard input), a pipe, a FIFO.

    Opening reads the first bytes (to tell plain from gzip and bgzip) and `open` hands them back
    first, so nothing is lost. A second `open` is an `InputError`: the data is gone.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = os.fspath(path)
        self.name = input_name(path)
        if self.path == STDIN:
            source: BinaryIO = sys.stdin.buffer
            self._owned = False
        else:
            source = open(path, "rb", buffering=0)  # closed with the replay, in scan_fasta
            self._owned = True
        head = b""
        try:
            while len(head) < _HEAD:  # a pipe may hand over fewer bytes per read
                more = source.read(_HEAD - len(head))
                if not more:
                    break
                head += more
        except OSError as error:
            raise InputError(f"{self.name}: cannot read: {error.strerror or error}") from None
        self.compression: Compression = _compression_of(head, self.name)
        self._replay: _Replay | None = _Replay(head, source, self._owned)

    def open(self) -> tuple[BinaryIO, BinaryIO]:
        """(decompressed stream, raw stream); ``raw.tell()`` counts the bytes read so far."""
        replay, self._replay = self._replay, None
        if replay is None:
            raise InputError(f"{self.name}: already read once; input from a pipe or standard input can be read "
                             "only once (give a file path to read it again)")
        if self.compression == "plain":
            return replay, replay
        return gzip.GzipFile(fileobj=replay, mode="rb"), replay


class _Replay(io.RawIOBase):
    """The bytes already read from a stream, then the rest of it; counts what it hands out."""

    def __init__(self, head: bytes, source: BinaryIO, owned: bool) -> None:
        super().__init__()
        self._head, self._source, self._owned = head, source, owned
        self._count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        n = min(len(view), len(self._head))
        view[:n] = self._head[:n]
        self._head = self._head[n:]
        if n < len(view):  # the rest from the source in the same call: one block holds the file's start
            data = self._source.read(len(view) - n)
            view[n:n + len(data)] = data
            n += len(data)
        self._count += n
        return n

    def tell(self) -> int:
        return self._count

    def close(self) -> None:
        if not self.closed and self._owned:
            self._source.close()
        super().close()


def open_decompressed(path: str | os.PathLike) -> tuple[BinaryIO, BinaryIO]:
    """(decompressed stream, raw file) so callers can report progress in bytes on disk."""
    compression = detect_compression(path)
    raw = open(path, "rb")  # closed by the caller, through the pair
    if compression == "plain":
        return raw, raw
    # bgzip is a series of gzip members: the gzip module streams it as it is.
    return gzip.GzipFile(fileobj=raw, mode="rb"), raw


def scan_fasta(
    path: str | os.PathLike | OnceStream,
    *,
    empty: EmptyPolicy = "warn",
    block_size: int = 1 << 20,
    progress: Callable[[int], None] | None = None,
) -> Iterator[RecordStart | bytes]:
    """Yield a :class:`RecordStart` per header, then that record's sequence as ``bytes`` chunks.

    Chunks hold no line ends; their case is kept (soft-masking). Raises :class:`InputError` naming
    ``path`` and the line for: an empty file, data before the first header, binary data, a truncated
    or corrupt gzip stream, a header without a name, duplicate record names, a character that is not
    a nucleotide code (with its column), and a file whose records are all empty. A record of length
    0 is logged as a warning and skipped by consumers (``empty="error"`` makes it an error).
    ``progress`` is called with the bytes read from disk so far. ``path`` may be a `OnceStream`
    (standard input, a pipe): it is read as it comes, without seeking.
    """
    if isinstance(path, OnceStream):
        stream, raw = path.open()
        path = path.name
    else:
        path = Path(path)
        stream, raw = open_decompressed(path)
    state = _ScanState(path, empty)
    try:
        first = True
        while True:
            try:
                block = stream.read(block_size)
            except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as error:
                kind = "truncated" if isinstance(error, EOFError) else "corrupt"
                raise InputError(f"{path}: {kind} gzip data after line {state.line} ({error})") from None
            if progress is not None:
                progress(raw.tell())
            if not block:
                break
            if first and b"\x00" in block[:4096]:
                raise InputError(f"{path}: binary data, not a FASTA text file (NUL byte in the first 4 kB)")
            first = False
            yield from state.feed(block)
        yield from state.finish()
    finally:
        stream.close()
        raw.close()


class _ScanState:
    """The scanner's position in the file between blocks."""

    def __init__(self, path: Path | str, empty: EmptyPolicy) -> None:
        self.path = path
        self.empty = empty
        self.line = 1  # line of the next byte
        self.column = 0  # bytes of the current line already seen
        self.in_header = False
        self.header = b""
        self.names: dict[str, int] = {}
        self.current: RecordStart | None = None
        self.current_length = 0
        self.total_length = 0
        self.saw_text = False

    def feed(self, block: bytes) -> Iterator[RecordStart | bytes]:
        i, size = 0, len(block)
        while i < size:
            if self.in_header:
                j = block.find(b"\n", i)
                self.header += block[i:] if j < 0 else block[i:j]
                if len(self.header) > _MAX_HEADER:
                    raise InputError(f"{self.path}: line {self.line}: header line longer than 64 kB "
                                     "(binary data, or a file without line ends?)")
                if j < 0:
                    return
                yield from self._header()
                i = j + 1
                continue
            if self.column == 0 and block[i] == 0x3E:  # '>' at a line start
                self.in_header, self.header = True, b""
                self.saw_text = True
                i += 1
                continue
            j = block.find(b"\n>", i)
            end = size if j < 0 else j + 1
            yield from self._sequence(block[i:end])
            i = end

    def _header(self) -> Iterator[RecordStart]:
        self._end_record()
        text = self.header.rstrip(b"\r")
        try:
            # Names may be UTF-8; control bytes (tab aside) mean this is not text.
            decoded = text.decode("utf-8")
            if any(ord(c) < 0x20 and c != "\t" for c in decoded):
                raise UnicodeDecodeError("utf-8", text, 0, 1, "control byte")
        except UnicodeDecodeError:
            raise InputError(f"{self.path}: line {self.line}: binary data in a header line") from None
        parts = decoded.split(maxsplit=1)
        if not parts:
            raise InputError(f"{self.path}: line {self.line}: header without a record name ('>' alone)")
        name = parts[0]
        if name in self.names:
            raise InputError(f"{self.path}: line {self.line}: duplicate record name {name!r} "
                             f"(first at line {self.names[name]})")
        self.names[name] = self.line
        self.current = RecordStart(name, parts[1] if len(parts) > 1 else "", self.line)
        self.current_length = 0
        self.in_header = False
        self.line += 1
        self.column = 0
        yield self.current

    def _sequence(self, chunk: bytes) -> Iterator[bytes]:
        bad = chunk.translate(None, _LINE_BYTES)
        if self.current is None:
            if chunk.strip():
                raise InputError(f"{self.path}: line {self.line + self._blank_lines(chunk)}: sequence data "
                                 "before the first '>' header line (is this a FASTA file?)")
        elif bad:
            self._raise_bad(chunk, bad[0])
        seq = chunk.translate(None, b"\r\n") if self.current is not None else b""
        newlines = chunk.count(b"\n")
        if newlines:
            self.line += newlines
            self.column = len(chunk) - chunk.rfind(b"\n") - 1
        else:
            self.column += len(chunk)
        if seq:
            self.saw_text = True
            self.current_length += len(seq)
            yield seq

    @staticmethod
    def _blank_lines(chunk: bytes) -> int:
        stripped = chunk.lstrip()
        return chunk[: len(chunk) - len(stripped)].count(b"\n")

    def _raise_bad(self, chunk: bytes, byte: int) -> None:
        k = chunk.index(bytes([byte]))
        line = self.line + chunk.count(b"\n", 0, k)
        newline = chunk.rfind(b"\n", 0, k)
        column = k - newline if newline >= 0 else self.column + k + 1
        where = f"{self.path}: line {line}, column {column}"
        record = f" in record {self.current.name!r}" if self.current else ""
        if byte == 0 or byte > 0x7E:
            raise InputError(f"{where}: binary data (byte 0x{byte:02x}){record}")
        shown = {0x20: "space", 0x09: "tab", 0x0D: "carriage return"}.get(byte, repr(chr(byte)))
        raise InputError(f"{where}: {shown} is not a nucleotide code{record} "
                         "(A C G T U N, IUPAC ambiguity codes, either case)")

    def _end_record(self) -> None:
        if self.current is None:
            return
        self.total_length += self.current_length
        if self.current_length == 0:
            message = f"{self.path}: line {self.current.line}: record {self.current.name!r} has no sequence"
            if self.empty == "error":
                raise InputError(message)
            log.warning("%s (skipped)", message)

    def finish(self) -> Iterator[RecordStart]:
        if self.in_header:
            yield from self._header()
        self._end_record()
        if not self.saw_text:
            raise InputError(f"{self.path}: empty file (no FASTA records)")
        if self.total_length == 0:
            raise InputError(f"{self.path}: no sequence data: every record is empty (header lines only?)")
