"""`seqmamba train dna`: train a DNA sequence classifier from a labelled table or one FASTA per class."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import click

from ..model_dir import RUN_OPTIONS
from .options import device_option, quiet_option, threads_option

log = logging.getLogger(__name__)


def _parse_class(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> list[tuple[str, str]]:
    pairs = []
    for value in values:
        label, sep, path = value.partition("=")
        if not sep or not label.strip() or not path.strip():
            raise click.BadParameter(f"{value!r}: expected LABEL=FASTA")
        pairs.append((label.strip(), path.strip()))
    return pairs


@click.command("dna")
@click.option("--train", "train_path", type=click.Path(dir_okay=False),
              help="CSV/TSV with 'sequence' and 'label' columns.")
@click.option("--class", "classes", multiple=True, callback=_parse_class, metavar="LABEL=FASTA",
              help="A FASTA file whose records all have LABEL (repeat, one per class).")
@click.option("--valid", "valid_path", type=click.Path(dir_okay=False),
              help="Validation CSV/TSV: early stopping on it; the best epoch's weights are kept.")
@click.option("-o", "--out", "model_dir", type=click.Path(file_okay=False), required=True,
              help="Model directory to write (config.json, model.safetensors, tokenizer.json, estimator.json).")
@click.option("--d-model", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--n-layers", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--d-state", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--rc-equivariant/--no-rc-equivariant", default=False, show_default=True,
              help="Strand-symmetric predictions (twice the compute).")
@click.option("--init", "init", metavar="MODEL",
              help="Start the encoder from a pretrained one: a model directory (seqmamba pretrain, a classifier, "
                   "an embedder) or a Caduceus checkpoint (directory or hub id). Its size options then apply.")
@click.option("--freeze-encoder", is_flag=True, help="Train the new head alone (a linear probe).")
@click.option("--encoder-lr-scale", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True,
              help="The encoder learns at this times --lr (e.g. 0.1 when fine-tuning from --init).")
@click.option("--pooling", type=click.Choice(["mean", "max", "cls"]), default="mean", show_default=True)
@click.option("--max-len", type=click.IntRange(min=1), default=1024, show_default=True,
              help="Window length; longer sequences are windowed.")
@click.option("--epochs", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=1e-3, show_default=True)
@click.option("--weight-decay", type=click.FloatRange(min=0), default=0.01, show_default=True)
@click.option("--early-stopping", is_flag=True,
              help="Without --valid: hold out 10% of the training set for early stopping.")
@click.option("--patience", type=click.IntRange(min=1), default=3, show_default=True,
              help="Epochs without a better validation loss before stopping.")
@device_option
@threads_option
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--resume", is_flag=True,
              help="Continue an interrupted run from MODEL_DIR/training/checkpoint (give the same options).")
@click.option("--overwrite", is_flag=True,
              help="Replace a DNA model already in MODEL_DIR, or start again where a run was interrupted "
                   "(any other non-empty directory is refused).")
@quiet_option("No progress bar.")
def dna(train_path: str | None, classes: list[tuple[str, str]], valid_path: str | None, model_dir: str,
        d_model: int, n_layers: int, d_state: int, rc_equivariant: bool, init: str | None, freeze_encoder: bool,
        encoder_lr_scale: float, pooling: str, max_len: int, epochs: int,
        batch_size: int, lr: float, weight_decay: float, early_stopping: bool, patience: int, device: str,
        threads: int | None, seed: int, resume: bool, overwrite: bool, quiet: bool) -> None:
    """Train a Mamba DNA classifier (from scratch, or from a pretrained encoder with --init) into MODEL_DIR.

    Every epoch ends with a checkpoint in MODEL_DIR/training/ (with metrics.jsonl). A run stopped by
    Ctrl-C, SIGTERM or a full disk continues with the same command plus --resume; the finished model
    then equals an uninterrupted run's. The checkpoint is removed once the model is saved.

    \b
    Examples:
      seqmamba train dna --train gue/prom_300_tata/train.csv --valid gue/prom_300_tata/dev.csv -o model/
      seqmamba train dna --class coding=cds.fa --class intergenic=ig.fa -o model/ --max-len 2048
      seqmamba train dna --train train.csv -o model/ --resume      # after an interrupt
      seqmamba train dna --train train.csv -o model/ --init pretrained/ --encoder-lr-scale 0.1
      seqmamba classify model/ genome.fa -o predictions.tsv
    """
    from ..datasets.labelled import check_classes, read_class_fastas, read_labelled_table
    from ..datasets.output_safety import DNA_MODEL, check_not_busy, claim_model_dir, lock_output_dir, refuse_same_file
    from ..estimators import MambaSequenceClassifier
    from ..training.state import find_checkpoint
    from .dna_jobs import check_output_dir

    if (train_path is None) == (not classes):
        raise click.UsageError("give either --train TABLE or --class LABEL=FASTA (repeated), not both or neither")
    if resume and overwrite:
        raise click.UsageError("--resume continues the run in MODEL_DIR, --overwrite discards it: give one")
    check_not_busy(model_dir)  # a run writing MODEL_DIR now: say so, not "an interrupted run"
    run_dir = training_run_dir(model_dir, resume, overwrite)
    # Before any work: MODEL_DIR holds no input, and is new, empty or a DNA model (finished: --overwrite).
    refuse_same_file([train_path, valid_path, init, *(path for _, path in classes)], model_dir, directory=True)
    resuming = resume and run_dir.is_dir() and find_checkpoint(run_dir) is not None
    claim_model_dir(model_dir, DNA_MODEL, overwrite, resume=resuming)
    if train_path is not None:
        X, y = read_labelled_table(train_path)
        source = train_path
    else:
        X, y, _ = read_class_fastas(classes)
        source = ", ".join(path for _, path in classes)
    check_classes(y, source)
    eval_set = read_labelled_table(valid_path) if valid_path else None
    if eval_set is not None:
        unknown = sorted(set(eval_set[1]) - set(y))
        if unknown:
            from ..errors import InputError

            raise InputError(f"{valid_path}: label(s) {', '.join(map(repr, unknown[:5]))} not in the training set")
    check_output_dir(model_dir)
    clf = MambaSequenceClassifier(
        d_model=d_model, n_layers=n_layers, d_state=d_state, rc_equivariant=rc_equivariant, pooling=pooling,
        init=init, freeze_encoder=freeze_encoder, encoder_lr_scale=encoder_lr_scale,
        max_len=max_len, max_epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
        early_stopping=early_stopping, n_iter_no_change=patience, device=device, n_threads=threads,
        random_state=seed,
        verbose=0 if quiet else 1,
    )
    # What decides the trained model; device and the progress bar may change between the two halves.
    run_options = {name: value for name, value in click.get_current_context().params.items()
                   if name not in ("resume", "overwrite", "quiet", "device", "threads")}
    # One run at a time in MODEL_DIR (torchrun's ranks are one run: rank 0 holds the lock).
    with lock_output_dir(model_dir, enabled=os.environ.get("RANK", "0") == "0"):
        claim_model_dir(model_dir, DNA_MODEL, overwrite, resume=resuming)  # again: another run may have ended
        if overwrite:
            shutil.rmtree(run_dir, ignore_errors=True)
        check_run_options(run_dir, run_options, model_dir, resume)
        clf.fit(X, y, eval_set=eval_set, run_dir=run_dir, resume=resume)
        clf.save(model_dir)
        finish_training_run(run_dir)
    message = (f"trained on {len(X)} sequences, classes {', '.join(map(str, clf.classes_))}; "
               f"{clf.n_iter_} steps; model in {model_dir}")
    if eval_set is not None:
        message += f"; validation accuracy {clf.score(*eval_set):.4f}"
    click.echo(message, err=True)


def training_run_dir(model_dir: str, resume: bool, overwrite: bool) -> Path:
    """MODEL_DIR/training; an interrupted run there needs --resume or --overwrite (checked before any work)."""
    from ..errors import InputError
    from ..training.state import find_checkpoint

    run_dir = Path(model_dir) / "training"
    found = find_checkpoint(run_dir) if run_dir.is_dir() else None
    if found is not None and not (resume or overwrite):
        raise InputError(f"{model_dir}: holds an interrupted training run ({found}); pass --resume to continue "
                         "it (with the same options) or --overwrite to start again")
    if resume and found is None:
        log.warning("%s: no checkpoint to resume from; training from the start", run_dir)
    return run_dir


def check_run_options(run_dir: Path, options: dict, model_dir: str, resume: bool) -> None:
    """Record a new run's options in RUN_DIR/options.json; on --resume, refuse options unlike those.

    A resumed run with another learning rate, model size or training file would continue the old
    checkpoint under new settings and give a model neither run describes.
    """
    from ..errors import InputError
    from ..json_state import read_json, write_json
    from ..training.state import find_checkpoint

    path = run_dir / RUN_OPTIONS
    options = {name: list(map(list, value)) if name == "classes" else value for name, value in options.items()}
    # Only an interrupted run binds: a finished one's options.json records what its model was trained with.
    if resume and path.exists() and find_checkpoint(run_dir) is not None:
        before = read_json(path)
        changed = [name for name in sorted(set(before) | set(options)) if before.get(name) != options.get(name)]
        if changed:
            shown = "; ".join(f"--{name.replace('_', '-')} {options.get(name)!r} (was {before.get(name)!r})"
                              for name in changed[:3])
            raise InputError(f"{model_dir}: --resume with options unlike the interrupted run's: {shown}; give the "
                             "same options, or --overwrite to start again")
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(path, options)


def finish_training_run(run_dir: Path) -> None:
    """The model is saved: drop the checkpoints (so the next run starts afresh), keep metrics.jsonl and the
    options the model was trained with."""
    for name in ("checkpoint", ".checkpoint.old", "best", ".best.old"):
        shutil.rmtree(run_dir / name, ignore_errors=True)
