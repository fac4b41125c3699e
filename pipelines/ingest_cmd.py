"""`seqmamba ingest`: validate a FASTA file, make it indexable, print its composition."""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import click

from ..datasets.fasta import FastaFile
from ..datasets.fasta_scan import random_access_error
from ..datasets.output_safety import check_output_free, refuse_same_file
from ..datasets.stats import RecordStats, StatsCollector
from ..errors import InputError
from .progress import file_progress

log = logging.getLogger(__name__)


def copy_name(source: Path, out_dir: Path) -> Path:
    """``DIR/<stem>.fa.gz``, or ``<stem>.bgz.fa.gz`` where that would be the source itself."""
    stem = "stdin" if str(source) == "-" else source.name.removesuffix(".gz").removesuffix(".bgz")
    for suffix in (".fasta", ".fa", ".fna", ".fas", ".ffn"):
        stem = stem.removesuffix(suffix)
    dest = out_dir / f"{stem}.fa.gz"
    return out_dir / f"{stem}.bgz.fa.gz" if dest.resolve() == source.resolve() else dest


def format_table(records: list[RecordStats], tsv: bool) -> str:
    rows = [("name", "length", "gc", "n_frac", "softmasked_frac")]
    shown = records + ([sum(records[1:], records[0])] if len(records) > 1 else [])
    for r in shown:
        fractions = [r.gc, r.n_fraction, r.soft_masked]
        rows.append((r.name, str(r.length), *("-" if math.isnan(f) else f"{f:.4f}" for f in fractions)))
    if tsv:
        return "\n".join("\t".join(row) for row in rows)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                               for i, (cell, w) in enumerate(zip(row, widths, strict=True)))
                     for row in rows)


@click.command("ingest")
@click.argument("fasta", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@click.option("-o", "--out-dir", type=click.Path(file_okay=False),
              help="Write a bgzip copy and its index here [default: index in place; plain gzip "
                   "input needs -o].")
@click.option("--line-width", type=click.IntRange(min=1), default=60, show_default=True,
              help="Bases per line in the copy.")
@click.option("--strict", is_flag=True, help="Records of length 0 are errors, not warnings.")
@click.option("--tsv", is_flag=True, help="Print the summary as tab-separated values.")
@click.option("--overwrite", is_flag=True, help="Replace the copy in DIR if it exists (atomically) [default: refuse].")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or log lines on stderr.")
def ingest(fasta: str, out_dir: str | None, line_width: int, strict: bool, tsv: bool, overwrite: bool,
           quiet: bool) -> None:
    """Validate FASTA, make it randomly accessible, and print a table of its records.

    Checks every line (header, nucleotide codes, duplicate names, gzip integrity; errors give the
    line and column). Without -o, plain and bgzip files get a .fai (and .gzi) beside them; with -o
    DIR, any file gets a normalised bgzip copy (LF, fixed line width) and its index in DIR. Plain
    gzip, - (standard input) and pipes have no random access, so they need -o. The table
    (stdout) gives per record: length, GC = (G+C)/(A+C+G+T), fraction of non-ACGT bases, fraction
    of soft-masked (lower-case) bases.

    \b
    Examples:
      seqmamba ingest genome.fa                 # genome.fa.fai
      seqmamba ingest genome.fa.gz -o ref/      # ref/genome.fa.gz (bgzip) + .fai + .gzi
      seqmamba ingest genome.fa.gz --tsv -q > summary.tsv
    """
    source = FastaFile(fasta, empty="error" if strict else "warn")
    collector = StatsCollector()
    copy_to: Path | None = None
    if out_dir is not None:
        copy_to = copy_name(source.path, Path(out_dir))
        refuse_same_file([fasta], copy_to)
        check_output_free(copy_to, overwrite)
        os.makedirs(out_dir, exist_ok=True)
    elif source.is_stream:
        raise random_access_error(fasta, "'ingest' without -o", "give a file path, or -o DIR for an indexed "
                                  "bgzip copy")
    elif source.compression == "gzip":
        # Never write beside someone's data unasked (read-only modes do not stop root).
        raise InputError(f"{source.path}: plain gzip has no random access; pass -o DIR to write an "
                         "indexed bgzip copy there")
    if copy_to is not None and not os.access(copy_to.parent, os.W_OK):
        raise InputError(f"{copy_to.parent}: not writable; pass -o DIR for the bgzip copy")

    with file_progress(fasta, quiet, "ingesting") as progress:
        events = collector.wrap(source.scan(progress))
        if copy_to is not None:
            source.write_bgzip(copy_to, line_width=line_width, events=events)
        else:
            for _ in events:
                pass
    indexed = FastaFile(copy_to) if copy_to is not None else source
    indexed.index()
    if not quiet:
        written = f"{copy_to} (bgzip) + " if copy_to is not None else ""
        suffix = ".fai + .gzi" if indexed.compression == "bgzip" else ".fai"
        log.info("%s: valid FASTA, %d records; wrote %s%s%s", fasta, len(collector.records), written,
                 indexed.path.name, suffix)
    click.echo(format_table(collector.records, tsv))
