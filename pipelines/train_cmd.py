"""`seqmamba train`: the training commands. Every one runs the same engine (seqmamba.training), alone or
under ``torchrun`` for several GPUs and machines."""

from __future__ import annotations

import os

import click

from .options import device_option, quiet_option
from .train_dna_cmd import dna
from .train_forecast_cmd import train_forecast


@click.group("train")
def train() -> None:
    """Train models (one process, or many under torchrun).

    \b
    Several GPUs on one machine, or several machines:
      torchrun --nproc_per_node 8 -m seqmamba.pipelines.cli train ...
      torchrun --nnodes 2 --node_rank 0 --nproc_per_node 8 \\
               --rdzv_backend c10d --rdzv_endpoint HOST:29500 -m seqmamba.pipelines.cli train ...
    """


@train.command("selftest", hidden=True)
@click.option("-o", "--out", "run_dir", type=click.Path(file_okay=False), required=True,
              help="Run directory (checkpoint/, best/, metrics.jsonl).")
@device_option
@click.option("--max-steps", type=click.IntRange(min=1), default=40, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True,
              help="Per process; the global batch is this times the number of processes.")
@click.option("--grad-accum", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--lr", type=float, default=3e-3, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--save-every", type=click.IntRange(min=1), help="Also checkpoint every N steps.")
@click.option("--resume", is_flag=True, help="Continue from RUN_DIR/checkpoint.")
@click.option("--overwrite", is_flag=True, help="Start again in a RUN_DIR that has a checkpoint.")
@quiet_option("No progress bar.")
@click.option("--step-delay", type=float, default=0.0, hidden=True, help="Seconds to sleep per step (tests).")
def selftest(run_dir: str, device: str, max_steps: int, batch_size: int, grad_accum: int, lr: float, seed: int,
             save_every: int | None, resume: bool, overwrite: bool, quiet: bool, step_delay: float) -> None:
    """Train a tiny model on synthetic data through the training engine (checks it works here)."""
    from ..datasets.output_safety import lock_output_dir
    from ..errors import naming_output
    from ..training.selftest import run_selftest

    with naming_output(run_dir):
        os.makedirs(run_dir, exist_ok=True)
    try:
        # One run at a time in RUN_DIR (torchrun's ranks are one run: rank 0 holds the lock).
        with lock_output_dir(run_dir, enabled=os.environ.get("RANK", "0") == "0"):
            trainer, state = run_selftest(run_dir, device=device, max_steps=max_steps, batch_size=batch_size,
                                          grad_accum_steps=grad_accum, lr=lr, seed=seed, save_every=save_every,
                                          quiet=quiet, resume=resume, step_delay=step_delay, overwrite=overwrite)
    except FileExistsError as err:  # a run directory in use: say how to go on, no traceback
        raise click.ClickException(str(err)) from None
    # torchrun's ranks share stdout: rank 0 speaks for the run.
    if os.environ.get("RANK", "0") == "0":
        world = os.environ.get("WORLD_SIZE", "1")
        val = state.last_metrics.get("val_loss", float("nan"))
        click.echo(f"selftest: {state.global_step} steps on {trainer.device} x {world} process(es); "
                   f"val_loss {val:.4g}; run directory {run_dir}")


# Each task's command lives in its own file, which imports nothing of this one.
train.add_command(dna)
train.add_command(train_forecast)
