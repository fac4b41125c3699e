"""`seqmamba quickstart`: the main job end to end on a generated task, on a CPU (about 40 s on a 2-core CPU)."""

from __future__ import annotations

import time

import click

from .options import threads_option

# Sized for a 2-core CPU: about 40 s there, start-up included (`time seqmamba quickstart`; earlier runs in
# docs/results/dna.md).
# Max pooling: a channel that counts positions and reads out at one motif learns in tens of steps, where a
# mean over 2,000 positions dilutes that signal ~60-fold.
DEFAULTS = {"n_train": 256, "n_test": 160, "length": (2000, 2400), "d_model": 16, "n_layers": 1, "d_state": 8,
            "pooling": "max", "epochs": 4, "batch_size": 8, "lr": 1e-2}


def run_quickstart(out_dir: str, seed: int = 0, quiet: bool = False, threads: int | None = None,
                   overwrite: bool = False, **overrides) -> dict[str, float]:
    """Generate, write FASTA, train, classify, embed, compare with k-mers; returns the accuracies and seconds.

    ``out_dir`` is new, empty or an earlier quickstart's (its marker file says so; its files are rewritten);
    writing the quickstart's files into any other directory needs ``overwrite``. ``threads``: torch CPU
    threads (None: the cores other running tasks leave idle, as for every DNA estimator).
    """
    opts = {**DEFAULTS, **overrides, "n_threads": threads}
    return _run(out_dir, seed, quiet, overwrite, opts)


def _run(out_dir: str, seed: int, quiet: bool, overwrite: bool, opts: dict) -> dict[str, float]:
    import numpy as np

    from ..baselines.kmer import kmer_logistic_regression
    from ..datasets.atomic import atomic_output
    from ..datasets.labelled import read_class_fastas
    from ..datasets.output_safety import QUICKSTART, claim_model_dir
    from ..datasets.synthetic import LABELS, motif_order_task, write_fasta
    from ..estimators import MambaEmbedder, MambaSequenceClassifier
    from .dna_jobs import check_output_dir, write_embeddings, write_predictions
    from .record_stream import record_chunks, survey_records

    started = time.perf_counter()
    out = claim_model_dir(out_dir, QUICKSTART, overwrite)
    check_output_dir(out)
    with atomic_output(out / QUICKSTART.record) as marker:  # a later quickstart may rewrite this folder
        marker.write("written by `seqmamba quickstart`, which may rewrite its files here\n")
    say = (lambda msg: None) if quiet else (lambda msg: click.echo(msg, err=True))

    X, y = motif_order_task(opts["n_train"], opts["length"], seed=seed)
    X_test, y_test = motif_order_task(opts["n_test"], opts["length"], seed=seed + 1)
    for label in LABELS:
        picked = [i for i, lab in enumerate(y) if lab == label]
        write_fasta(out / f"train_{label}.fa", (f"train{i}" for i in picked), [X[i] for i in picked])
    write_fasta(out / "test.fa", (f"test{i}" for i in range(len(X_test))), X_test)
    with open(out / "test_labels.tsv", "w") as handle:
        handle.write("id\tlabel\n" + "".join(f"test{i}\t{lab}\n" for i, lab in enumerate(y_test)))
    say(f"wrote {len(X)} training sequences ({opts['length'][0]}-{opts['length'][1]} bp; label = which motif "
        f"comes first) as train_{LABELS[0]}.fa / train_{LABELS[1]}.fa and {len(X_test)} held-out as test.fa in {out}")

    # Train from the FASTA files, as `seqmamba train dna --class LABEL=FASTA` does.
    X_fa, y_fa, _ = read_class_fastas((label, out / f"train_{label}.fa") for label in LABELS)
    clf = MambaSequenceClassifier(
        d_model=opts["d_model"], n_layers=opts["n_layers"], d_state=opts["d_state"], pooling=opts["pooling"],
        max_len=opts["length"][1],
        max_epochs=opts["epochs"], batch_size=opts["batch_size"], lr=opts["lr"], device="cpu",
        n_threads=opts["n_threads"], random_state=seed,
        verbose=0 if quiet else 1,
    ).fit(X_fa, y_fa)
    clf.save(out / "model")
    trained = time.perf_counter()

    test_fa = [out / "test.fa"]
    write_predictions(clf, record_chunks(test_fa), str(out / "predictions.tsv"), False)
    embedder = MambaEmbedder.from_classifier(clf)
    write_embeddings(embedder, record_chunks(test_fa), str(out / "embeddings.parquet"), False,
                     survey_records(test_fa))
    truth = dict(zip((f"test{i}" for i in range(len(y_test))), y_test))
    with open(out / "predictions.tsv") as handle:
        rows = [line.rstrip("\n").split("\t") for line in handle]
    at = {column: i for i, column in enumerate(rows[0])}
    predicted = {row[at["id"]]: row[at["predicted"]] for row in rows[1:]}
    accuracy = float(np.mean([label == truth[name] for name, label in predicted.items()]))

    baseline = kmer_logistic_regression(k=6).fit(X, y)
    kmer_accuracy = float(baseline.score(X_test, y_test))
    seconds = time.perf_counter() - started
    result = {"accuracy": accuracy, "kmer_accuracy": kmer_accuracy, "seconds": seconds,
              "train_seconds": trained - started}
    if not quiet:
        click.echo(f"\nheld-out accuracy ({len(X_test)} sequences):\n"
                   f"  Mamba classifier (d_model {opts['d_model']}, {opts['n_layers']} bidirectional layer(s))"
                   f"  {accuracy:.3f}\n"
                   f"  6-mer logistic regression                           {kmer_accuracy:.3f}   (chance 0.5)\n"
                   f"outputs in {out}: model/, predictions.tsv, embeddings.parquet; {seconds:.0f} s in all")
    return result


@click.command("quickstart")
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False), default="seqmamba-quickstart",
              show_default=True, help="Directory for the FASTA files, the model and the outputs.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--overwrite", is_flag=True,
              help="Write into an existing directory that an earlier quickstart did not make (its files of "
                   "the same names are replaced) [default: refuse].")
@threads_option
@click.option("-q", "--quiet", is_flag=True, help="Only the final result line.")
def quickstart(out_dir: str, seed: int, overwrite: bool, threads: int | None, quiet: bool) -> None:
    """Classify long DNA from FASTA, end to end, on a CPU: about 40 s on a 2-core CPU (no download).

    Generates 2-2.4 kbp sequences whose label says which of two motifs comes first (they lie
    ~1,500 bases apart; k-mer counts cannot tell), writes them as FASTA, trains a small
    bidirectional Mamba classifier, classifies held-out FASTA (predictions.tsv), writes its
    embeddings (embeddings.parquet) and compares with a 6-mer logistic regression.

    \b
    Examples:
      seqmamba quickstart
      seqmamba quickstart -o /tmp/qs --seed 1
      seqmamba classify /tmp/qs/model /tmp/qs/test.fa
    """
    result = run_quickstart(out_dir, seed=seed, quiet=quiet, overwrite=overwrite, threads=threads)
    if quiet:
        click.echo(f"accuracy {result['accuracy']:.3f} (6-mer baseline {result['kmer_accuracy']:.3f}) "
                   f"in {result['seconds']:.0f} s")
