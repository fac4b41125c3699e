"""`seqmamba classify`: predict the class of every FASTA record (or of every window of it)."""

from __future__ import annotations

import click

from .train_cmd import _check_device


@click.command("classify")
@click.argument("model_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("fasta", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True),
              help="TSV to write [default: stdout].")
@click.option("--per-window", is_flag=True, help="One row per window (BED coordinates) instead of per record.")
@click.option("--batch-size", type=click.IntRange(min=1), help="Windows per batch [default: the model's].")
@click.option("--device", default="auto", show_default=True, callback=_check_device,
              help="auto, cpu, cuda or cuda:N.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary on stderr.")
def classify(model_dir: str, fasta: tuple[str, ...], output: str | None, per_window: bool, batch_size: int | None,
             device: str, quiet: bool) -> None:
    """Classify every record of FASTA files (plain, gzip or bgzip) with a trained model.

    Records of any length: long ones are cut into the model's windows and the window logits pooled,
    so a whole chromosome gets one row. Every file is checked first; then records stream through in
    chunks and rows are written as they come (memory stays flat), into a file renamed into place at
    the end. Progress goes to stderr (a bar on a terminal, a line every 30 s in a log). Output
    columns: id, length, predicted, then prob_<class> per class; with --per-window: #chrom, start,
    end (0-based, half-open), predicted, prob_<class>...

    \b
    Examples:
      seqmamba classify model/ reads.fa -o predictions.tsv
      seqmamba classify model/ genome.fa.gz --per-window -o windows.tsv
    """
    import time

    from ..estimators import MambaSequenceClassifier
    from .dna_jobs import write_predictions
    from .memory import bound_kernel_caches
    from .progress import RecordProgress
    from .record_stream import record_chunks, survey_records

    start = time.perf_counter()
    bound_kernel_caches()  # before the model first runs: flat memory over long runs
    survey = survey_records(fasta)  # every file validated before the model loads
    clf = MambaSequenceClassifier.load(model_dir, device=device)
    if batch_size is not None:
        clf.batch_size = batch_size
    progress = RecordProgress("classifying", survey.n_records, survey.n_bases, quiet)
    try:
        write_predictions(clf, record_chunks(fasta), output, per_window, progress)
    finally:
        progress.close()
    if not quiet:
        click.echo(f"classified {survey.n_records:,} record(s), {survey.n_bases:,} bp in "
                   f"{time.perf_counter() - start:.1f} s", err=True)
