"""`seqmamba windows`: BED of fixed-size windows over a FASTA file."""

from __future__ import annotations

import contextlib
import logging

import click

from ..datasets.atomic import output_or_stdout
from ..datasets.bed import read_bed
from ..datasets.output_safety import check_output_free, refuse_same_file
from ..datasets.windows import WindowedGenome
from .progress import file_progress

log = logging.getLogger(__name__)


@click.command("windows")
@click.argument("fasta", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@click.option("--size", type=click.IntRange(min=1), default=1_000_000, show_default=True,
              help="Window length in bases.")
@click.option("--stride", type=click.IntRange(min=1), default=None,
              help="Distance between window starts [default: --size, no overlap].")
@click.option("--max-n-frac", type=click.FloatRange(0.0, 1.0), default=1.0, show_default=True,
              help="Drop windows with a larger fraction of non-ACGT bases.")
@click.option("--partial", type=click.Choice(["keep", "pad", "drop"]), default="keep", show_default=True,
              help="The shorter window at a record's end: keep it, pad it (for models; the BED "
                   "coordinates stay inside the record) or drop it.")
@click.option("--strand", type=click.Choice(["+", "-", "both"]), default="+", show_default=True,
              help="Strand column; 'both' writes every window twice.")
@click.option("-r", "--regions", type=click.Path(exists=True, dir_okay=False),
              help="BED file: tile these regions instead of whole records.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True),
              help="BED file to write [default: stdout].")
@click.option("--overwrite", is_flag=True, help="Replace the -o file if it exists (atomically) [default: refuse].")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary on stderr.")
def windows(fasta: str, size: int, stride: int | None, max_n_frac: float, partial: str, strand: str,
            regions: str | None, output: str | None, overwrite: bool, quiet: bool) -> None:
    """Write windows over FASTA as BED6 (0-based, half-open; name '.', score 0).

    FASTA may be plain, gzip or bgzip, a file, - (standard input) or a pipe; it is read once as a
    stream, so memory stays a few windows whatever the genome's size. Windows run every --stride
    bases from each record's start; at most one shorter window covers a record's end (see
    --partial).

    \b
    Examples:
      seqmamba windows genome.fa.gz > windows.bed
      seqmamba windows genome.fa.gz --size 1000000 --stride 100000 -o windows.bed
      seqmamba windows genome.fa --max-n-frac 0.1 --partial drop --strand both
      seqmamba windows genome.fa --size 100000 --regions peaks.bed
      zcat genome.fa.gz | seqmamba windows - --size 100000 > windows.bed
    """
    refuse_same_file([fasta, regions], output)
    check_output_free(output, overwrite)
    genome = WindowedGenome(fasta, size, stride, partial=partial, max_n_frac=max_n_frac, strand=strand,
                            regions=read_bed(regions) if regions else None)
    count = 0
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(output_or_stdout(output))
        progress = stack.enter_context(file_progress(fasta, quiet))
        lines = []
        for window in genome.windows(progress=progress):
            lines.append(window.to_bed())
            count += 1
            if len(lines) >= 4096:
                out.write("\n".join(lines) + "\n")
                lines.clear()
        if lines:
            out.write("\n".join(lines) + "\n")
    if not quiet:
        log.info("%d windows of %d bp, stride %d, from %s", count, size, genome.stride, fasta)
