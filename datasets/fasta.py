"""FASTA files (plain, gzip, bgzip): validated streaming, random access through pyfaidx, bgzip copies.

Example:
    >>> import gzip, tempfile
    >>> path = Path(tempfile.mkdtemp()) / "genome.fa.gz"
    >>> with gzip.open(path, "wt") as handle:
    ...     _ = handle.write(">chr1 first\\nACGTACGTAC\\nGGTT\\n>chr2\\nNNAC\\n")
    >>> fasta = FastaFile(path)
    >>> for name, seq in fasta.records():                      # whole records, one pass
    ...     print(name, len(seq))
    chr1 14
    chr2 4
    >>> index = FastaFile(fasta.write_bgzip(path.with_name("genome.bgz.fa.gz"))).index()
    >>> str(index["chr1"][8:12])                               # random access, 0-based half-open
    'ACGG'
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from ..errors import InputError, naming_output
from .atomic import atomic_path
from .fai_check import index_problem
from .fasta_scan import (
    SEQUENCE_BYTES,
    Compression,
    EmptyPolicy,
    OnceStream,
    RecordStart,
    detect_compression,
    is_stream,
    random_access_error,
    scan_fasta,
)
from .leftovers import owner_tag, sweep

# Sequence characters and CR (dropped from sequence lines wherever it is, as the scanner does).
_DELETE_SEQUENCE = dict.fromkeys([*SEQUENCE_BYTES, ord("\r")])
BGZIP_HINT = ("for random access, recompress it with bgzip (`gunzip -c {p} | bgzip -c > {stem}.bgz.fa.gz`), "
              "or run `seqmamba ingest {p} -o DIR`, or call FastaFile.write_bgzip()")


class FastaFile:
    """One FASTA file, plain, gzip or bgzip (told apart by content, not by name).

    - :meth:`scan`: the validating pass; sequence in chunks, memory bounded (see ``scan_fasta``).
    - :meth:`records`: ``(name, sequence)`` per record through Biopython, for reading a file once.
    - :meth:`index`: random access through pyfaidx (builds the ``.fai``, and ``.gzi`` for bgzip).
    - :meth:`write_bgzip`: a normalised, bgzip-compressed copy that can be indexed.

    Records of length 0 are skipped with a warning; ``empty="error"`` rejects them.

    ``-`` (standard input), a pipe (``<(zcat x.fa.gz)``) or a FIFO is read once, as it comes (plain or
    gzip, told apart without seeking): :meth:`scan`, :meth:`records` or :meth:`lengths` once;
    :meth:`index` needs a file (``is_stream`` says which).

    Example:
        >>> import gzip, tempfile
        >>> path = Path(tempfile.mkdtemp()) / "ecoli.fna.gz"
        >>> with gzip.open(path, "wt") as handle:
        ...     _ = handle.write(">NC_000913.3 E. coli\\nAGCTTTTCATTCTGACTGCA\\n")
        >>> fasta = FastaFile(path)
        >>> fasta.compression
        'gzip'
        >>> {name: len(seq) for name, seq in fasta.records()}
        {'NC_000913.3': 20}
    """

    def __init__(self, path: str | os.PathLike, *, empty: EmptyPolicy = "warn") -> None:
        self.path = Path(path)
        self.empty = empty
        self.is_stream = is_stream(path)
        self._once = OnceStream(path) if self.is_stream else None
        self.compression: Compression = self._once.compression if self._once else detect_compression(self.path)

    def __repr__(self) -> str:
        return f"FastaFile({str(self.path)!r}, compression={self.compression!r})"

    def scan(self, progress: Callable[[int], None] | None = None) -> Iterator[RecordStart | bytes]:
        """Validate while streaming: a :class:`RecordStart` per record, then its sequence chunks."""
        return scan_fasta(self._once or self.path, empty=self.empty, progress=progress)

    def records(self) -> Iterator[tuple[str, str]]:
        """``(name, sequence)`` for every non-empty record, in file order, case kept.

        Biopython parses; each record is checked on the way and, on any problem, the validating
        scanner re-reads the file to report the exact line and column.
        """
        if self._once is not None:
            yield from self._scanned_records()
            return
        from Bio.SeqIO.FastaIO import SimpleFastaParser

        names: set[str] = set()
        any_sequence = False
        handle = self._text_handle()
        try:
            if not self._starts_with_header(handle):
                self._raise_located()
            for title, sequence in SimpleFastaParser(self._checked_lines(handle)):
                name = title.split(maxsplit=1)[0] if title.strip() else ""
                if not name or name in names:
                    self._raise_located()
                names.add(name)
                if not sequence:
                    if self.empty == "error":
                        self._raise_located()
                    continue
                any_sequence = True
                yield name, sequence
        except (EOFError, gzip.BadGzipFile, OSError, UnicodeDecodeError):
            self._raise_located()
        finally:
            handle.close()
        if not any_sequence:
            self._raise_located()

    def lengths(self) -> dict[str, int]:
        """Length of every record (empty ones included), from the ``.fai`` if it is this file's, else a scan."""
        fai = self.path.with_name(self.path.name + ".fai")
        if (self._once is None and self.compression != "gzip" and fai.is_file()
                and self._index_problem(fai, self.path.with_name(self.path.name + ".gzi")) is None):
            lengths = {}
            with open(fai) as handle:
                for line in handle:
                    fields = line.split("\t")
                    lengths[fields[0]] = int(fields[1])
            return lengths
        lengths, name = {}, None
        for event in self.scan():
            if isinstance(event, RecordStart):
                name = event.name
                lengths[name] = 0
            else:
                lengths[name] += len(event)
        return lengths

    def index(self, index_dir: str | os.PathLike | None = None):
        """A ``pyfaidx.Fasta`` (raw strings, 0-based slices), building its index when missing.

        ``index_dir`` puts the ``.fai``/``.gzi`` there instead of beside the file (for read-only
        data). Plain gzip cannot be indexed: the error says how to make a bgzip copy.
        """
        import pyfaidx

        if self.is_stream:
            raise random_access_error(self.path, "an index")
        if self.compression == "gzip":
            stem = self.path.name.removesuffix(".gz").rsplit(".", 1)[0]
            raise InputError(f"{self.path}: plain gzip, which has no random access; "
                             + BGZIP_HINT.format(p=self.path, stem=stem))
        folder = Path(index_dir) if index_dir is not None else self.path.parent
        fai = folder / (self.path.name + ".fai")
        gzi = folder / (self.path.name + ".gzi")
        if not fai.exists() and not os.access(folder, os.W_OK):
            raise InputError(f"{self.path}: no index ({fai.name}) and {folder} is not writable; "
                             "pass index_dir (or `seqmamba ingest -o DIR`)")
        problem = self._index_problem(fai, gzi)
        if problem is not None and not os.access(folder, os.W_OK):  # never trusted, and not ours to replace
            raise InputError(f"{fai}: does not match {self.path.name} ({problem}), and {folder} is not writable "
                             "to rebuild it; pass index_dir (or `seqmamba ingest -o DIR`)")
        try:
            if problem is not None:
                self._build_index(fai, gzi if self.compression == "bgzip" else None)
            # rebuild=False: pyfaidx never writes (its in-place rebuild is what _build_index replaces).
            return pyfaidx.Fasta(str(self.path), indexname=str(fai),
                                 gzi_indexname=str(gzi) if self.compression == "bgzip" else None,
                                 as_raw=True, sequence_always_upper=False, duplicate_action="stop", rebuild=False)
        except pyfaidx.FastaIndexingError as error:
            # Irregular line widths and the like: a normalised copy always indexes.
            raise InputError(f"{self.path}: cannot index: {error}; `seqmamba ingest {self.path} -o DIR` "
                             "writes an indexable copy") from None
        except ValueError as error:
            raise InputError(f"{self.path}: cannot index: {error}") from None

    def _index_problem(self, fai: Path, gzi: Path) -> str | None:
        # Older than the file (pyfaidx's own rule), or not its index any more (a rewrite the times miss).
        return index_problem(self.path, self.compression, fai, gzi if self.compression == "bgzip" else None)

    def _build_index(self, fai: Path, gzi: Path | None) -> None:
        """Build the .fai (and .gzi) in a hidden folder beside them, then rename them into place.

        pyfaidx writes its index files in place: an interrupt or a full disk would leave a truncated
        .fai that the next run trusts (it is newer than the FASTA), and records would go missing.
        """
        import pyfaidx

        with naming_output(fai):
            sweep(fai.parent, f".index.{fai.name}.")  # a killed run's staging folder (see leftovers.py)
            staging = Path(tempfile.mkdtemp(prefix=f".index.{fai.name}.{owner_tag()}.", dir=fai.parent))
        try:
            staged_fai, staged_gzi = staging / fai.name, None if gzi is None else staging / gzi.name
            with naming_output(fai, only_write_errors=True):
                try:
                    pyfaidx.Faidx(str(self.path), indexname=str(staged_fai),
                                  gzi_indexname=None if staged_gzi is None else str(staged_gzi),
                                  duplicate_action="stop").close()
                except OSError as error:
                    raise with_errno(error) from None
            with naming_output(fai):
                for staged, final in ((staged_gzi, gzi), (staged_fai, fai)):  # the .fai last: it marks done
                    if staged is not None:
                        with open(staged, "rb") as handle:
                            os.fsync(handle.fileno())
                        os.replace(staged, final)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def write_bgzip(
        self,
        dest: str | os.PathLike,
        *,
        line_width: int = 60,
        progress: Callable[[int], None] | None = None,
        events: Iterator[RecordStart | bytes] | None = None,
    ) -> Path:
        """Validate and write a bgzip copy (LF line ends, ``line_width`` bases a line), atomically.

        The copy indexes with pyfaidx or ``samtools faidx``. Empty records are dropped, as in
        :meth:`scan`. ``events`` replaces this file's own scan (to count bases in the same pass).
        Returns ``dest``.
        """
        from Bio import bgzf

        dest = Path(dest)
        if dest.resolve() == self.path.resolve():
            raise InputError(f"{dest}: the bgzip copy would overwrite its source")
        with atomic_path(dest) as tmp:
            writer = bgzf.BgzfWriter(str(tmp), "wb")
            try:
                _write_wrapped(events if events is not None else self.scan(progress), writer, line_width)
            finally:
                writer.close()
        return dest

    # -- helpers --------------------------------------------------------------------------------

    def _scanned_records(self) -> Iterator[tuple[str, str]]:
        # A stream cannot be read a second time to locate an error: the validating scanner reads it once.
        name, parts = None, []
        for event in self.scan():
            if isinstance(event, RecordStart):
                if parts:
                    yield name, b"".join(parts).decode("ascii")
                name, parts = event.name, []
            else:
                parts.append(event)
        if parts:
            yield name, b"".join(parts).decode("ascii")

    def _text_handle(self) -> io.TextIOBase:
        # The scanner's rules: UTF-8 headers, lines end at LF only (a CR before it is part of a CRLF end).
        if self.compression == "plain":
            return open(self.path, encoding="utf-8", errors="strict", newline="\n")
        return gzip.open(self.path, "rt", encoding="utf-8", errors="strict", newline="\n")

    def _checked_lines(self, handle: io.TextIOBase) -> Iterator[str]:
        # Biopython drops spaces and keeps control bytes; both are errors here, as in the scanner.
        for line in handle:
            body = line.rstrip("\n")
            if line[0] == ">":
                if any(ord(c) < 0x20 and c != "\t" for c in body[1:].rstrip("\r")):
                    self._raise_located()
            elif body.translate(_DELETE_SEQUENCE):
                self._raise_located()
            yield line

    @staticmethod
    def _starts_with_header(handle: io.TextIOBase) -> bool:
        # SimpleFastaParser skips anything before the first '>': here that is an error.
        while True:
            position = handle.tell()
            line = handle.readline()
            if not line:
                return True  # empty: reported after parsing
            if line.strip():
                handle.seek(position)
                return line.startswith(">")

    def _raise_located(self) -> None:
        for _ in self.scan():
            pass
        raise InputError(f"{self.path}: not a valid FASTA file")


def with_errno(error: OSError) -> OSError:
    """pyfaidx reports a failed index write (a full disk) as a new OSError without errno ("... may not be
    writable"); the failure it replaces, errno and all, is its ``__context__``."""
    cause = error.__context__
    if error.errno is None and isinstance(cause, OSError) and cause.errno is not None:
        return cause
    return error


def _write_wrapped(events: Iterator[RecordStart | bytes], out, width: int) -> None:
    carry = b""
    started = False

    def flush_lines(data: bytes, final: bool) -> bytes:
        full = len(data) - len(data) % width
        if full:
            out.write(b"\n".join(data[i:i + width] for i in range(0, full, width)) + b"\n")
        rest = data[full:]
        if final and rest:
            out.write(rest + b"\n")
            return b""
        return rest

    pending_header: RecordStart | None = None
    for event in events:
        if isinstance(event, RecordStart):
            if started:
                carry = flush_lines(carry, final=True)
            pending_header, started = event, False
            continue
        if not started:
            # Header written with its first sequence chunk: empty records vanish from the copy.
            title = f"{pending_header.name} {pending_header.description}".rstrip()
            out.write(f">{title}\n".encode())
            started = True
        carry = flush_lines(carry + event, final=False)
    if started:
        flush_lines(carry, final=True)
