"""`seqmamba classify`: predict the class of every FASTA record (or of every window of it)."""

from __future__ import annotations

import click

from .options import device_option, quiet_option, threads_option


@click.command("classify")
@click.argument("model_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("fasta", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True),
              help="TSV to write [default: stdout].")
@click.option("--per-window", is_flag=True, help="One row per window (BED coordinates) instead of per record.")
@click.option("--batch-size", type=click.IntRange(min=1), help="Windows per batch [default: the model's].")
@device_option
@threads_option
@click.option("--overwrite", is_flag=True, help="Replace the -o file if it exists (atomically) [default: refuse].")
@quiet_option()
def classify(model_dir: str, fasta: tuple[str, ...], output: str | None, per_window: bool, batch_size: int | None,
             device: str, threads: int | None, overwrite: bool, quiet: bool) -> None:
    """Classify every record of FASTA files (plain, gzip or bgzip) with a trained model.

    Records of any length: long ones are cut into the model's windows and the window logits pooled,
    so a whole chromosome gets one row. Every file is checked first; then records stream through in
    chunks and rows are written as they come (memory stays flat), into a file renamed into place at
    the end. FASTA may be - (standard input) or a pipe, read once as it comes (checked as it streams).
    Progress goes to stderr (a bar on a terminal, a line every 30 s in a log). Output columns: id,
    file (the FASTA file as given: names may repeat across files), length, predicted, then
    prob_<class> per class; with --per-window: #chrom, start, end (0-based, half-open), file,
    predicted, prob_<class>...

    \b
    Examples:
      seqmamba classify model/ reads.fa -o predictions.tsv
      seqmamba classify model/ genome.fa.gz --per-window -o windows.tsv
      zcat genome.fa.gz | seqmamba classify model/ - -o predictions.tsv
      torchrun --nproc_per_node 4 -m seqmamba.pipelines.cli classify model/ g/*.fa -o predictions.tsv  # docs/scaling.md
    """
    import time

    from ..datasets.output_safety import check_output_free, refuse_same_file
    from ..estimators import MambaSequenceClassifier
    from .dna_jobs import write_predictions
    from .memory import bound_kernel_caches
    from .progress import RecordProgress
    from .record_stream import RecordTally, record_chunks, survey_records
    from .sharding import check_shardable, is_first_process, merge_tables, run_sharded, under_torchrun

    refuse_same_file([model_dir, *fasta], output)
    check_output_free(output, overwrite)
    start = time.perf_counter()
    bound_kernel_caches()  # before the model first runs: flat memory over long runs
    survey = survey_records(fasta)  # every file validated before the model loads (streams: as they come)
    sharded = under_torchrun()
    if sharded:
        check_shardable(fasta, output, not survey.complete)
    clf = MambaSequenceClassifier.load(model_dir, device=device)
    clf.n_threads = threads  # this run's, not the one saved with the model
    if batch_size is not None:
        clf.batch_size = batch_size
    tally = RecordTally()

    def work(records: range | None, path: str | None) -> None:
        lengths = survey.lengths[records.start:records.stop] if records is not None else survey.lengths
        progress = RecordProgress("classifying", len(lengths) if survey.complete else None,
                                  sum(lengths) if survey.complete else None, quiet or not is_first_process())
        try:
            write_predictions(clf, tally.count(record_chunks(fasta, records=records)), path, per_window, progress)
        finally:
            progress.close()

    if sharded:  # torchrun: this process's share of the records, merged by the first process
        reports = run_sharded(output, survey.lengths, work, merge_tables)
        tally.records, tally.bases = survey.n_records, survey.n_bases
    else:
        work(None, output)
        reports = True
    if not quiet and reports:
        click.echo(f"classified {tally.records:,} record(s), {tally.bases:,} bp in "
                   f"{time.perf_counter() - start:.1f} s", err=True)
