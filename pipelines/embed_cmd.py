"""`seqmamba embed`: embeddings of FASTA records (or of their windows) as Parquet or .npy."""

from __future__ import annotations

import click

from .options import device_option, quiet_option, threads_option


@click.command("embed")
@click.argument("model_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("fasta", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), required=True,
              help="embeddings.parquet (id [, start, end], file, emb_0..) or embeddings.npy (the matrix only).")
@click.option("--per-window", is_flag=True, help="One row per window, with its coordinates.")
@click.option("--pooling", type=click.Choice(["mean", "max", "cls"]), default="mean", show_default=True,
              help="Positions -> window embedding.")
@click.option("--batch-size", type=click.IntRange(min=1), help="Windows per batch [default: the model's].")
@device_option
@threads_option
@click.option("--overwrite", is_flag=True, help="Replace the -o file if it exists (atomically) [default: refuse].")
@quiet_option()
def embed(model_dir: str, fasta: tuple[str, ...], output: str, per_window: bool, pooling: str,
          batch_size: int | None, device: str, threads: int | None, overwrite: bool, quiet: bool) -> None:
    """Write an embedding per record (or per window) of FASTA files, from a trained model.

    MODEL_DIR is a classifier (`seqmamba train dna`) or an embedder saved from Python. Rows follow
    the records in file order; a record's windows are averaged, weighted by length. Records stream
    through in chunks, each written as it is done (memory stays flat), into a file renamed into place
    at the end. Parquet columns: id [, start, end], file (the FASTA file as given: names may repeat
    across files), emb_0.. . FASTA may be - (standard input) or a pipe, read once as it comes.

    \b
    Examples:
      seqmamba embed model/ genes.fa -o embeddings.parquet
      seqmamba embed model/ genome.fa.gz --per-window -o windows.parquet
      torchrun --nproc_per_node 4 -m seqmamba.pipelines.cli embed model/ g/*.fa -o emb.parquet  # docs/scaling.md
      python -c "import polars as pl; print(pl.read_parquet('embeddings.parquet'))"
    """
    from ..datasets.output_safety import check_output_free, refuse_same_file
    from ..estimators import MambaEmbedder, load_model_dir
    from .dna_jobs import write_embeddings
    from .embedding_files import check_embedding_output
    from .memory import bound_kernel_caches
    from .progress import RecordProgress
    from .record_stream import RecordSurvey, record_chunks, survey_records
    from .sharding import (
        check_shardable,
        is_first_process,
        merge_embeddings,
        read_embedding_shape,
        run_sharded,
        under_torchrun,
    )

    check_embedding_output(output)
    refuse_same_file([model_dir, *fasta], output)
    check_output_free(output, overwrite)
    bound_kernel_caches()  # before the model first runs: flat memory over long runs
    survey = survey_records(fasta)  # every file validated before the model loads
    if under_torchrun():
        check_shardable(fasta, output, not survey.complete)
    source = load_model_dir(model_dir, device=device)
    params = {"batch_size": batch_size} if batch_size is not None else {}
    embedder = MambaEmbedder(model=source, pooling=pooling, max_len=source.max_len,
                             window_stride=source.window_stride, device=device, n_threads=threads,
                             **{"batch_size": source.batch_size, **params}).fit()
    shapes = []

    def work(records: range | None, path: str) -> None:
        part = RecordSurvey(survey.lengths[records.start:records.stop]) if records is not None else survey
        progress = RecordProgress("embedding", part.n_records, part.n_bases, quiet or not is_first_process())
        try:
            shapes.append(write_embeddings(embedder, record_chunks(fasta, records=records), path, per_window, part,
                                           progress))
        finally:
            progress.close()

    if under_torchrun():  # this process's share of the records, merged by the first process
        reports = run_sharded(output, survey.lengths, work, merge_embeddings)
        rows, width = read_embedding_shape(output) if reports else (0, 0)
    else:
        work(None, output)
        reports, (rows, width) = True, shapes[0]
    if not quiet and reports:
        click.echo(f"wrote {rows:,} x {width} embeddings to {output}", err=True)
