"""`seqmamba pretrain`: self-supervised pretraining of a DNA encoder on whole genomes (`seqmamba.pretraining`)."""

from __future__ import annotations

import os
from typing import Any

import click

from .options import device_option, quiet_option, threads_option


class Duration(click.ParamType):
    """Seconds, or a number with a unit: ``90``, ``30m``, ``2h``, ``1h30m``."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        from ..pretraining import parse_duration

        try:
            return parse_duration(value)
        except ValueError as err:
            self.fail(str(err), param, ctx)


@click.command("pretrain")
@click.argument("genomes", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False), required=True,
              help="Model directory to write (new or empty, or one of an earlier `pretrain` with --resume or "
                   "--overwrite).")
@click.option("--causal", is_flag=True,
              help="A causal encoder trained on next-base prediction [default: bidirectional, masked bases].")
@click.option("--rc-equivariant", is_flag=True,
              help="Strand-symmetric encoder (twice the compute); no reverse-complement augmentation then.")
@click.option("--d-model", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--n-layers", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--d-state", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--window", type=click.IntRange(min=8, max=1 << 20), default=None,
              help="Bases per window, up to 1048576 [default: 1024 on a CPU, 8192 on a GPU].")
@click.option("--batch-size", type=click.IntRange(min=1), default=None,
              help="Windows per process and micro-step [default: 8 on a CPU, 16 on a GPU].")
@click.option("--grad-accum", type=click.IntRange(min=1), default=1, show_default=True,
              help="Micro-steps per optimizer step.")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=1e-3, show_default=True)
@click.option("--weight-decay", type=click.FloatRange(min=0), default=0.01, show_default=True)
@click.option("--warmup-steps", type=click.IntRange(min=0), default=None,
              help="Linear warm-up, then cosine decay [default: a tenth of --max-steps, at most 1000].")
@click.option("--max-steps", type=click.IntRange(min=1), default=10_000, show_default=True)
@click.option("--max-time", type=Duration(), default=None,
              help="Stop cleanly after this long (seconds, or 30m, 2h, 1h30m), with a checkpoint.")
@click.option("--mask-fraction", type=click.FloatRange(min=0, max=1, min_open=True, max_open=True), default=0.15,
              show_default=True, help="Share of bases masked (masked objective).")
@click.option("--max-n-frac", type=click.FloatRange(min=0, max=1), default=0.1, show_default=True,
              help="Skip windows with a larger share of N (non-ACGT) bases.")
@click.option("--valid-frac", type=click.FloatRange(min=0, max=0.5, max_open=True), default=0.02, show_default=True,
              help="Held-out end of every record (never trained on); validation windows come from it.")
@click.option("--valid-windows", type=click.IntRange(min=1), default=64, show_default=True,
              help="Held-out windows scored at each evaluation (chosen with a fixed seed).")
@click.option("--eval-every", type=click.IntRange(min=1), default=500, show_default=True,
              help="Steps between evaluations (each with a checkpoint and a metrics.jsonl record).")
@click.option("--save-every", type=click.IntRange(min=1), default=None, help="Also checkpoint every N steps.")
@click.option("--grad-checkpointing", is_flag=True, help="Recompute layers in the backward pass (long windows).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@device_option
@threads_option
@click.option("--resume", is_flag=True,
              help="Continue the run in DIR (after an interrupt, or with a larger --max-steps); same options.")
@click.option("--overwrite", is_flag=True, help="Discard the model or run in DIR and start again.")
@quiet_option()
def pretrain(genomes: tuple[str, ...], out_dir: str, causal: bool, rc_equivariant: bool, d_model: int, n_layers: int,
             d_state: int, window: int | None, batch_size: int | None, grad_accum: int, lr: float,
             weight_decay: float, warmup_steps: int | None, max_steps: int, max_time: float | None,
             mask_fraction: float, max_n_frac: float, valid_frac: float, valid_windows: int, eval_every: int,
             save_every: int | None, grad_checkpointing: bool, seed: int, device: str, threads: int | None,
             resume: bool, overwrite: bool, quiet: bool) -> None:
    """Pretrain a Mamba DNA encoder on whole genomes (FASTA, plain or gzip) into DIR.

    Random windows from every record, in proportion to its length; the last --valid-frac of each
    record is held out for validation. A bidirectional encoder learns masked-nucleotide modelling
    (15% of bases, 80/10/10), a --causal one next-base prediction. DIR is a model directory that
    `seqmamba embed`, MambaEmbedder(model=DIR) and `seqmamba train dna --init DIR` read;
    DIR/training/ holds the checkpoint and metrics.jsonl. Ctrl-C, SIGTERM or --max-time stop with a
    checkpoint: the same command with --resume continues (also with a larger --max-steps).

    \b
    Examples:
      seqmamba pretrain genomes/*.fa.gz -o pretrained/ --max-steps 2000
      seqmamba pretrain genome.fa.gz -o pretrained/ --rc-equivariant --window 8192 --max-time 2h
      seqmamba pretrain genome.fa.gz -o pretrained/ --resume --max-steps 20000
      torchrun --standalone --nproc_per_node 8 -m seqmamba.pipelines.cli pretrain genome.fa.gz -o pretrained/
      seqmamba embed pretrained/ genes.fa -o embeddings.parquet
    """
    from ..pretraining import pretrain as run_pretrain
    from .progress import file_progress

    if causal and rc_equivariant:
        raise click.UsageError("--causal and --rc-equivariant exclude each other: the reverse strand would show a "
                               "causal model the bases it predicts")
    if resume and overwrite:
        raise click.UsageError("--resume continues the run in DIR, --overwrite discards it: give one")
    main = os.environ.get("RANK", "0") == "0"  # torchrun's ranks share stderr: rank 0 speaks for the run
    run_pretrain(
        list(genomes), out_dir, causal=causal, rc_equivariant=rc_equivariant, d_model=d_model, n_layers=n_layers,
        d_state=d_state, window=window, batch_size=batch_size, grad_accum=grad_accum, lr=lr,
        weight_decay=weight_decay, warmup_steps=warmup_steps, max_steps=max_steps, max_time=max_time,
        mask_fraction=mask_fraction, max_n_frac=max_n_frac, valid_frac=valid_frac, valid_windows=valid_windows,
        eval_every=eval_every, save_every=save_every, gradient_checkpointing=grad_checkpointing, seed=seed,
        device=device, threads=threads, resume=resume, overwrite=overwrite, verbose=not quiet,
        progress_for=lambda path: file_progress(path, quiet or not main),
    )
