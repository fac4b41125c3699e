"""Labelled DNA sets for classification: ``sequence,label`` tables (CSV/TSV) or one FASTA file per class.

Every problem is an `InputError` naming the file and the place (line, record), so the CLI prints one line.
"""

from __future__ import annotations

import csv
import itertools
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..tokenizers.dna import AMBIGUITY, NUCLEOTIDES
from .fasta import FastaFile

SEQUENCE_COLUMN, LABEL_COLUMN = "sequence", "label"
# Label texts that stand for a missing value: an empty cell, and what str() makes of NaN and pd.NA.
MISSING_LABEL_TEXTS = frozenset({"", "nan", "<na>"})


def is_missing_label(value: Any) -> bool:
    """True for None, NaN, pd.NA, NaT and the texts '', 'nan', '<NA>' (any case, blanks around)."""
    if value is None:
        return True
    if isinstance(value, str):
        return value.strip().lower() in MISSING_LABEL_TEXTS
    import pandas as pd

    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # an array-like "label": not a missing value
        return False


def check_labels(labels: Iterable[Any], source: str = "y") -> None:
    """InputError naming the first missing label's row (0-based position in ``labels``) and the count.

    A missing label would otherwise become a class of its own (``nan``) or stop training with a TypeError.
    """
    values = list(labels)
    missing = [i for i, value in enumerate(values) if is_missing_label(value)]
    if missing:
        raise InputError(f"{source}: row {missing[0]} (0-based) has no label ({values[missing[0]]!r}); "
                         f"{len(missing)} missing in all; drop those sequences or give them a class")


def read_labelled_table(path: str | os.PathLike) -> tuple[list[str], list[str]]:
    """Sequences and labels of a CSV or TSV file with ``sequence`` and ``label`` columns (others ignored).

    The delimiter is a tab for ``.tsv``/``.tab`` files or a header holding a tab, else a comma. Labels
    are kept as text.

    Example:
        >>> X, y = read_labelled_table("../shared/data/dna/gue/prom_core_tata/train.csv")  # doctest: +SKIP
        >>> len(X[0]), y[:3]  # doctest: +SKIP
        (70, ['0', '1', '0'])
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not a table")
    with open(path, newline="", encoding="utf-8-sig") as handle:  # a file, or a pipe (<(zcat x.csv.gz)): read once
        header_line = handle.readline()
        if not header_line.strip():
            raise InputError(f"{path}: line 1: empty file, expected a header with 'sequence' and 'label'")
        tab = path.suffix.lower() in (".tsv", ".tab") or "\t" in header_line
        lines = _LastLine(itertools.chain([header_line], handle))
        reader = csv.reader(lines, delimiter="\t" if tab else ",")
        header = [name.strip().lower() for name in next(reader)]
        missing = [c for c in (SEQUENCE_COLUMN, LABEL_COLUMN) if c not in header]
        if missing:
            raise InputError(f"{path}: line 1: missing column(s) {', '.join(missing)}; the header has "
                             f"{', '.join(header)} (expected 'sequence' and 'label', "
                             f"{'tab' if tab else 'comma'}-separated)")
        si, li = header.index(SEQUENCE_COLUMN), header.index(LABEL_COLUMN)
        sequences, labels = [], []
        for row in reader:
            line = reader.line_num
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) <= max(si, li):
                raise InputError(f"{path}: line {line}: {len(row)} field(s), expected at least {max(si, li) + 1}")
            seq, label = row[si].strip(), row[li].strip()
            if not seq:
                raise InputError(f"{path}: line {line}: empty sequence")
            bad = _NOT_A_BASE.search(seq)
            if bad:  # here, with the line and column: the model would name only 'sequence 4', position 20
                raise _bad_base(path, line, lines.last, row, si, "\t" if tab else ",", seq, bad)
            if not label:
                raise InputError(f"{path}: line {line}: empty label")
            if is_missing_label(label):
                raise InputError(f"{path}: line {line}: missing label ({label!r} stands for a missing value); "
                                 "every row needs a class label")
            sequences.append(seq)
            labels.append(label)
    if not sequences:
        raise InputError(f"{path}: no rows after the header")
    return sequences, labels


# What the DNA tokenizer reads: A C G T U N and the IUPAC ambiguity codes, either case.
_BASES = NUCLEOTIDES + "U" + AMBIGUITY
_NOT_A_BASE = re.compile(f"[^{_BASES}{_BASES.lower()}]")


class _LastLine:
    """Lines of ``handle``, remembering the last one read (for the column of an error)."""

    def __init__(self, handle) -> None:
        self.handle, self.last = handle, ""

    def __iter__(self):
        return self

    def __next__(self) -> str:
        self.last = next(self.handle)
        return self.last


def _bad_base(path: Path, line: int, raw: str, row: list[str], index: int, delimiter: str, seq: str,
              bad: re.Match) -> InputError:
    """InputError naming the file, the 1-based line and column of a character that is not a base."""
    text = raw.rstrip("\r\n")
    cell = row[index]
    if delimiter.join(row) == text:  # no quoting: the fields lie side by side
        start = sum(len(c) + 1 for c in row[:index]) + len(cell) - len(cell.lstrip())
    else:
        start = text.find(seq)
    char = bad.group()
    shown = {" ": "space", "\t": "tab"}.get(char, repr(char))
    where = (f"line {line}, column {start + bad.start() + 1}" if start >= 0
             else f"line {line}, sequence position {bad.start() + 1}")
    return InputError(f"{path}: {where}: {shown} is not a nucleotide code in the sequence "
                      "(A C G T U N, IUPAC ambiguity codes, either case)")


def read_class_fastas(pairs: Iterable[tuple[str, str | os.PathLike]]) -> tuple[list[str], list[str], list[str]]:
    """``(label, FASTA)`` pairs -> sequences, labels and record names (every record of a file gets its label)."""
    sequences, labels, names = [], [], []
    for label, path in pairs:
        if not label:
            raise InputError(f"{path}: empty class label (write LABEL=FASTA)")
        for name, seq in FastaFile(path).records():
            sequences.append(seq)
            labels.append(label)
            names.append(name)
    return sequences, labels, names


def check_classes(labels: list[str], source: str) -> None:
    """InputError unless ``labels`` hold at least two classes."""
    classes = sorted(set(labels))
    if len(classes) < 2:
        shown = repr(classes[0]) if classes else "none"
        raise InputError(f"{source}: a single class ({shown}) in {len(labels)} sequence(s); a classifier "
                         "needs at least two")


def read_fasta_records(paths: Iterable[str | os.PathLike], *, with_files: bool = False
                       ) -> tuple[list[str], list[str]] | tuple[list[str], list[str], list[str]]:
    """Record names and sequences of every record of every file, in order; ``with_files=True`` adds each
    record's file (as given), which tells apart records of the same name in two files.

    A record of length 0 is an error here: every input record must get its row in the output. A path
    may be ``-`` (standard input) or a pipe, read once.

    Example:
        >>> names, sequences, files = read_fasta_records(["hg38.fa", "t2t.fa"], with_files=True)  # doctest: +SKIP
        >>> list(zip(files, names))[:2]  # doctest: +SKIP
        [('hg38.fa', 'chrX'), ('t2t.fa', 'chrX')]
    """
    names, sequences, files = [], [], []
    for path in paths:
        for name, seq in FastaFile(path, empty="error").records():
            names.append(name)
            sequences.append(seq)
            files.append(os.fspath(path))
    return (names, sequences, files) if with_files else (names, sequences)
