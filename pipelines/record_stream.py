"""FASTA records for `classify` and `embed`: validated up front, then streamed in chunks of bounded size.

The first pass (the validating scanner: bytes in blocks, nothing kept but lengths) finds a bad record
before any model work and gives the totals for progress and for a ``.npy`` header. The second pass
hands the records over a chunk at a time, so memory holds one chunk, not the input: 10,000 records or
10 million take the same (a single record longer than a chunk is a chunk of its own).

Standard input (``-``) and pipes (``<(zcat x.fa.gz)``, FIFOs) are read once: the first pass skips them,
they are validated as they stream, and their totals are known only at the end (`RecordSurvey.complete`).
Every chunk carries each record's file, as the user named it, so records of the same name in two files
stay apart in the output.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

from ..datasets.fasta import FastaFile
from ..datasets.fasta_scan import RecordStart, input_name, is_stream
from ..errors import InputError

CHUNK_BASES = 1_000_000
CHUNK_RECORDS = 4096


class Chunk(NamedTuple):
    """Consecutive records: their names, sequences and files (each as given: a path, or ``-``)."""

    names: list[str]
    sequences: list[str]
    files: list[str]


@dataclass(frozen=True)
class RecordSurvey:
    """Every record's length, in input order (files in the order given); ``complete`` is False when
    some input streams (standard input, a pipe) and was left out."""

    lengths: list[int]
    complete: bool = True

    @property
    def n_records(self) -> int | None:
        return len(self.lengths) if self.complete else None

    @property
    def n_bases(self) -> int | None:
        return sum(self.lengths) if self.complete else None


def survey_records(paths: Iterable[str | os.PathLike]) -> RecordSurvey:
    """Validate every file (`InputError` naming file, line and column) and measure its records.

    A record of length 0 is an error here: every input record must get its row in the output. Streams
    (standard input, pipes: `is_stream`) are read once, later; one named twice is an error now.
    """
    lengths: list[int] = []
    streams: set[str] = set()
    for path in paths:
        if is_stream(path):
            key = os.path.realpath(path) if os.fspath(path) != "-" else "-"
            if key in streams:
                raise InputError(f"{input_name(path)}: given twice; standard input or a pipe can be read only once")
            streams.add(key)
            continue
        for event in FastaFile(path, empty="error").scan():
            if isinstance(event, RecordStart):
                lengths.append(0)
            else:
                lengths[-1] += len(event)
    return RecordSurvey(lengths, complete=not streams)


def record_chunks(paths: Iterable[str | os.PathLike], max_bases: int | None = None,
                  max_records: int | None = None, records: range | None = None) -> Iterator[Chunk]:
    """`Chunk` s of consecutive records, up to ``max_bases`` bases or ``max_records`` records (default
    `CHUNK_BASES`, `CHUNK_RECORDS`); ``records``: only these (indices over all the files, in order), as a
    process of a sharded run takes them."""
    max_bases = CHUNK_BASES if max_bases is None else max_bases
    max_records = CHUNK_RECORDS if max_records is None else max_records
    chunk = Chunk([], [], [])
    bases = 0
    index = -1  # of the record, over all the files
    for path in paths:
        source = os.fspath(path)
        for name, sequence in FastaFile(path, empty="error").records():
            index += 1
            if records is not None and index < records.start:
                continue
            if records is not None and index >= records.stop:
                break
            chunk.names.append(name)
            chunk.sequences.append(sequence)
            chunk.files.append(source)
            bases += len(sequence)
            if bases >= max_bases or len(chunk.names) >= max_records:
                yield chunk
                chunk, bases = Chunk([], [], []), 0
    if chunk.names:
        yield chunk


class RecordTally:
    """Counts the records and bases of the chunks passing through `count` (totals of streamed input)."""

    def __init__(self) -> None:
        self.records = self.bases = 0

    def count(self, chunks: Iterable[Chunk]) -> Iterator[Chunk]:
        for chunk in chunks:
            self.records += len(chunk.names)
            self.bases += sum(map(len, chunk.sequences))
            yield chunk
