"""Self-supervised pretraining of DNA encoders on whole genomes, through the training engine.

`pretrain` reads FASTA files once into one token array (`seqmamba.datasets.genome_tokens`), draws random
windows from every record in proportion to its length, and trains masked-nucleotide modelling (a
bidirectional encoder) or next-base prediction (``causal=True``) with `seqmamba.training.Trainer`: DDP
under torchrun, bf16 autocast on a GPU, gradient checkpointing, resumable atomic checkpoints,
``metrics.jsonl``. The result is a model directory in `MambaEmbedder.save`'s format::

    DIR/
      config.json, model.safetensors, tokenizer.json, estimator.json   the model (MambaEmbedder.load)
      training/
        options.json          what the run was started with (--resume refuses other options)
        checkpoint/           the last checkpoint: --resume continues it (a larger max_steps trains on)
        best/                 the weights of the best validation loss
        metrics.jsonl         train loss, val_loss, val_accuracy, tokens_per_s, ...

Every window is drawn from its own generator, keyed by (seed, step, slot in the global batch); its
strand flip and masking come from the same key. So the data of a step does not depend on how many
processes share it: two processes with batch 4 train exactly like one with batch 8, and a resumed run
like an uninterrupted one.
"""

from __future__ import annotations

import math
import os
import queue
import re
import shutil
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import model_dir
from .checkpoint import check_trained
from .config import MambaConfig
from .datasets.genome_tokens import GenomeTokens, GenomeWindow, GenomeWindows, ProgressFor, reverse_complement_ids
from .datasets.output_safety import DNA_MODEL, check_not_busy, claim_model_dir, lock_output_dir, refuse_same_file
from .errors import InputError, OutputExistsError, naming_output
from .estimators import MambaEmbedder
from .estimators.embedder import CausalLMModel, MaskedLMModel
from .json_state import read_json, write_json
from .objectives import MaskedNucleotideTask, NextBaseTask, mask_nucleotides
from .tokenizers.dna import COMPLEMENT, PAD, DNATokenizer
from .training import Callback, DistContext, Trainer, TrainerConfig, TrainerState, seed_everything
from .training.device import resolve_device
from .training.distributed import all_reduce_sums
from .training.state import find_checkpoint
from .training.threads import cpu_threads

MAX_WINDOW = 1 << 20
DEFAULT_WINDOW = {"cpu": 1024, "cuda": 8192}
DEFAULT_BATCH = {"cpu": 8, "cuda": 16}
VALID_SEED = 0  # validation windows and their masks: the same set whatever the run's seed
MODEL_FILES = ("estimator.json", "config.json", "model.safetensors", "tokenizer.json")
HINT = "pass resume=True (--resume) to continue it, or overwrite=True (--overwrite) to replace it"
# Options that may change between a run and its --resume (they do not change what is trained on).
_FREE_OPTIONS = ("max_steps", "max_time", "device", "threads", "save_every", "gradient_checkpointing")


@dataclass
class PretrainResult:
    """What `pretrain` returns: the model directory, the fitted embedder and where training stopped."""

    out_dir: Path
    embedder: MambaEmbedder
    global_step: int
    metrics: dict[str, float] = field(default_factory=dict)  # the last validation metrics
    state: TrainerState | None = None


def parse_duration(value: str | float | int) -> float:
    """Seconds from ``90``, ``"90s"``, ``"30m"``, ``"2h"``, ``"1h30m"`` or ``"1d"``.

    Example:
        >>> parse_duration("1h30m"), parse_duration("45"), parse_duration(2.5)
        (5400.0, 45.0, 2.5)
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        text = str(value).strip().lower().replace(" ", "")
        parts = re.fullmatch(r"((?:\d+(?:\.\d*)?|\.\d+)[dhms]?)+", text)
        if not text or parts is None:
            raise ValueError(f"not a duration: {value!r} (give seconds, or e.g. 30m, 2h, 1h30m)")
        units = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "": 1.0}
        seconds = sum(float(n) * units[u] for n, u in re.findall(r"(\d+(?:\.\d*)?|\.\d+)([dhms]?)", text))
    if not seconds > 0 or not math.isfinite(seconds):
        raise ValueError(f"a duration must be positive, got {value!r}")
    return seconds


def default_window(device: str | torch.device = "auto") -> int:
    """The window a device trains on by default: 1,024 bases on a CPU, 8,192 on a GPU."""
    return DEFAULT_WINDOW[resolve_device(device).type]


def pretrain(
    fasta_paths: str | os.PathLike | Sequence[str | os.PathLike] | GenomeTokens,
    out_dir: str | os.PathLike,
    *,
    causal: bool = False,
    rc_equivariant: bool = False,
    d_model: int = 64,
    n_layers: int = 2,
    d_state: int = 16,
    window: int | None = None,
    batch_size: int | None = None,
    grad_accum: int = 1,
    lr: float = 1e-3,
    weight_decay: float = 0.01,
    warmup_steps: int | None = None,
    max_steps: int = 10_000,
    max_time: float | str | None = None,
    mask_fraction: float = 0.15,
    max_n_frac: float = 0.1,
    valid_frac: float = 0.02,
    valid_windows: int = 64,
    eval_every: int = 500,
    save_every: int | None = None,
    gradient_checkpointing: bool = False,
    seed: int = 0,
    device: str = "auto",
    threads: int | None = None,
    resume: bool = False,
    overwrite: bool = False,
    verbose: bool = True,
    progress_for: ProgressFor | None = None,
) -> PretrainResult:
    """Pretrain a DNA encoder on whole genomes; write a model directory that `MambaEmbedder` loads.

    Masked-nucleotide modelling (15 % of bases, 80/10/10) trains a bidirectional encoder; ``causal=True``
    trains a causal one on next-base prediction. Windows of ``window`` bases are drawn from every record
    in proportion to its length, outside a held-out end of each record (``valid_frac``; validation
    windows come from there), skipping windows with more than ``max_n_frac`` N; half of them are
    reverse-complemented unless the model is RC-equivariant. Records shorter than a window are skipped.

    Args:
        fasta_paths: FASTA files (plain, gzip or bgzip), or a `GenomeTokens` already read.
        out_dir: the model directory: new, empty, or one this function wrote (``resume`` continues its
            run, ``overwrite`` starts again); anything else is refused.
        causal, rc_equivariant: the objective and the strand handling (not both).
        d_model, n_layers, d_state: encoder size.
        window: bases per window (None: 1,024 on a CPU, 8,192 on a GPU; at most 1,048,576).
        batch_size: windows per process and micro-step (None: 8 on a CPU, 16 on a GPU); ``grad_accum``
            micro-steps make a step.
        lr, weight_decay, warmup_steps: AdamW, linear warm-up (None: a tenth of max_steps, at most
            1,000), then cosine decay to 0 at ``max_steps``.
        max_steps, max_time: stop at whichever comes first (max_time: seconds, or "30m", "2h").
        mask_fraction: share of bases masked (masked objective).
        max_n_frac, valid_frac, valid_windows: the N filter, the held-out share of each record, and how
            many held-out windows each evaluation scores (chosen with a fixed seed).
        eval_every: steps between evaluations, each followed by a checkpoint and a metrics.jsonl record.
        save_every: also checkpoint every N steps.
        gradient_checkpointing: recompute each layer in the backward pass (long windows).
        seed: weights, window draws, strand flips and masks.
        device, threads: "auto", "cpu", "cuda", "cuda:N"; CPU threads (None: the idle cores).
        resume, overwrite: continue the run in ``out_dir``, or discard it.
        verbose: progress bar and summary lines on stderr (rank 0 only).
        progress_for: reading progress per FASTA file (see `GenomeTokens.read`).

    Returns:
        a `PretrainResult`; ``result.embedder`` is the fitted `MambaEmbedder`.

    Example:
        >>> import tempfile, pathlib
        >>> tmp = pathlib.Path(tempfile.mkdtemp())
        >>> rng = np.random.default_rng(0)
        >>> _ = (tmp / "g.fa").write_text(">chr1\\n" + "".join(rng.choice(list("ACGT"), 5000)) + "\\n")
        >>> result = pretrain([tmp / "g.fa"], tmp / "model", d_model=8, n_layers=1, d_state=4, window=64,
        ...                   batch_size=4, max_steps=3, eval_every=3, device="cpu", threads=1, verbose=False)
        >>> result.global_step, sorted(result.metrics)
        (3, ['val_accuracy', 'val_loss'])
        >>> MambaEmbedder(model=tmp / "model", max_len=64, device="cpu").fit().transform(["ACGT" * 30]).shape
        (1, 8)
    """
    # -- options: checked before anything is read or written
    if causal and rc_equivariant:
        raise ValueError("causal and rc_equivariant exclude each other: the reverse strand would show a causal "
                         "model the bases it predicts")
    if resume and overwrite:
        raise ValueError("resume continues the run in out_dir, overwrite discards it: give one")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    for name, value in (("d_model", d_model), ("n_layers", n_layers), ("d_state", d_state), ("grad_accum", grad_accum),
                        ("max_steps", max_steps), ("valid_windows", valid_windows), ("eval_every", eval_every)):
        _check_positive(name, value)
    device_type = resolve_device(device).type
    window = DEFAULT_WINDOW[device_type] if window is None else window
    batch_size = DEFAULT_BATCH[device_type] if batch_size is None else batch_size
    _check_positive("window", window)
    _check_positive("batch_size", batch_size)
    if window > MAX_WINDOW:
        raise ValueError(f"window must be at most {MAX_WINDOW:,} bases, got {window:,}")
    if not 0 < mask_fraction < 1:
        raise ValueError(f"mask_fraction must be in (0, 1), got {mask_fraction!r}")
    seconds = None if max_time is None else parse_duration(max_time)
    warmup = min(1000, max_steps // 10) if warmup_steps is None else warmup_steps
    out = Path(out_dir)
    main = os.environ.get("RANK", "0") == "0"
    say = _Say(verbose, verbose and main)
    options = {
        "command": "pretrain", "fasta": _describe_input(fasta_paths), "causal": causal,
        "rc_equivariant": rc_equivariant, "d_model": d_model, "n_layers": n_layers, "d_state": d_state,
        "window": window, "batch_size": batch_size, "grad_accum": grad_accum, "lr": lr,
        "weight_decay": weight_decay, "warmup_steps": warmup_steps, "max_steps": max_steps, "max_time": seconds,
        "mask_fraction": mask_fraction, "max_n_frac": max_n_frac, "valid_frac": valid_frac,
        "valid_windows": valid_windows, "eval_every": eval_every, "save_every": save_every,
        "gradient_checkpointing": gradient_checkpointing, "seed": seed, "device": device, "threads": threads,
    }
    run_dir = out / "training"
    if main:  # the other ranks would see rank 0's first writes; the trainer tells them what it found
        if not isinstance(fasta_paths, GenomeTokens):
            refuse_same_file(_as_paths(fasta_paths), out, directory=True)
        fresh = claim_pretrain_dir(out, resume=resume, overwrite=overwrite)
        if resume and not fresh:
            check_resume_options(run_dir, options)
        elif resume:
            say(f"Warning: {out}: no pretraining run to resume; starting afresh")

    # -- data: every input is read and checked before the directory is touched
    genome = (fasta_paths if isinstance(fasta_paths, GenomeTokens)
              else GenomeTokens.read(_as_paths(fasta_paths), progress_for=progress_for))
    windows = GenomeWindows(genome, window, valid_frac=valid_frac, max_n_frac=max_n_frac)
    valid = windows.validation_windows(valid_windows, seed=VALID_SEED) if valid_frac > 0 else []
    for line in windows.describe():
        say(line)
    if valid_frac > 0 and not valid:
        say(f"no held-out window of at least {min(window, 64)} bases passes the N filter: no validation metrics")

    if main:
        with naming_output(out):
            out.mkdir(parents=True, exist_ok=True)
    # One run at a time in DIR (torchrun's ranks are one run: rank 0 holds the lock).
    with lock_output_dir(out, enabled=main):
        return _train(out, genome, windows, valid, options, main=main, say=say, resume=resume, overwrite=overwrite,
                      warmup=warmup, seconds=seconds)


def _train(out: Path, genome: GenomeTokens, windows: GenomeWindows, valid: list[GenomeWindow], options: dict[str, Any],
           *, main: bool, say: _Say, resume: bool, overwrite: bool, warmup: int,
           seconds: float | None) -> PretrainResult:
    """`pretrain` once the inputs are read and DIR is locked: prepare DIR, train, save the model."""
    o = options
    causal, rc_equivariant, window, batch_size = o["causal"], o["rc_equivariant"], o["window"], o["batch_size"]
    grad_accum, mask_fraction, eval_every, seed, device = (o["grad_accum"], o["mask_fraction"], o["eval_every"],
                                                           o["seed"], o["device"])
    d_model, n_layers, d_state = o["d_model"], o["n_layers"], o["d_state"]
    run_dir = out / "training"
    # -- the directory: rank 0 prepares it (the trainer's ranks agree on the checkpoint themselves)
    if main:
        # Again, under the lock: another run may have ended in between.
        claim_pretrain_dir(out, resume=resume, overwrite=overwrite, check_busy=False)
        if overwrite:
            _discard_run(out)
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json(run_dir / model_dir.RUN_OPTIONS, options)  # on --resume only the free options can differ

    # -- model and engine
    seed_everything(seed)
    config = MambaConfig(d_model=d_model, n_layers=n_layers, d_state=d_state, bidirectional=not causal,
                         rc_equivariant=rc_equivariant, vocab_size=DNATokenizer.vocab_size,
                         complement_map=list(COMPLEMENT) if rc_equivariant else None)
    module = CausalLMModel(config) if causal else MaskedLMModel(config)
    task = NextBaseTask(per_window=True) if causal else MaskedNucleotideTask(mask_fraction, per_window=True)
    batches = WindowBatches(windows, batch_size=batch_size, grad_accum=grad_accum, steps_per_epoch=eval_every,
                            seed=seed, masked=not causal, mask_fraction=mask_fraction,
                            rc_augment=not rc_equivariant)
    val_batches = ValidationBatches(windows, valid, batch_size, masked=not causal,
                                    mask_fraction=mask_fraction) if valid else None
    config_t = TrainerConfig(
        max_epochs=None, max_steps=o["max_steps"], batch_size=batch_size, grad_accum_steps=grad_accum, lr=o["lr"],
        weight_decay=o["weight_decay"], warmup_steps=warmup, device=device, seed=seed, save_every=o["save_every"],
        log_every=max(1, eval_every // 10), gradient_checkpointing=True if o["gradient_checkpointing"] else None,
        quiet=not say.verbose, overwrite=overwrite,
    )
    throughput = _Throughput()
    callbacks = [throughput, *([TimeLimit(seconds)] if seconds is not None else [])]
    trainer = Trainer(module, task, batches, val_data=val_batches, config=config_t, run_dir=run_dir,
                      callbacks=callbacks)
    with cpu_threads(o["threads"], resolve_device(device)):
        state = trainer.fit(resume=resume)  # without a checkpoint the trainer starts afresh

    # -- the model directory (rank 0); a diverged run (NaN loss) would embed as NaN: no model then
    check_trained(module, "pretrain", o["lr"])
    module = module.cpu().eval()
    module.gradient_checkpointing = False
    embedder = MambaEmbedder.from_module(module, max_len=window, batch_size=batch_size, mask_fraction=mask_fraction,
                                         device="auto", random_state=seed)
    if main:
        embedder.save(out)
    metrics = dict(state.last_metrics)
    shown = "".join(f"; {k} {v:.4g}" for k, v in metrics.items())
    steps, seconds_run = throughput.done(state.global_step)
    tokens = steps * batch_size * grad_accum * trainer.ctx.world_size * window
    rate = f" ({tokens / seconds_run:,.0f} tokens/s)" if steps and seconds_run > 0 else ""
    say(f"{state.global_step:,} steps; this run {steps:,} in {seconds_run:,.0f} s{rate}{shown}; model in {out}")
    return PretrainResult(out, embedder, state.global_step, metrics, state)


# ------------------------------------------------------------------------------------------- batches

class WindowBatches:
    """The trainer's loader factory of training windows: ``(epoch, ctx) -> micro-batches``.

    An epoch is ``steps_per_epoch`` optimizer steps. Slot ``k`` of step ``s``'s global batch (``batch_size
    x world size x grad_accum`` windows) is drawn from a generator keyed by ``(seed, s, k)``, which also
    decides its strand and its masks; rank ``r`` takes the slots ``(a * world + r) * batch_size + i`` of
    micro-step ``a``. Batches are ``{"input_ids"[, "labels"]}``, int64 ``(b, window)``.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "g.fa"
        >>> _ = path.write_text(">chr1\\n" + "ACGT" * 200 + "\\n")
        >>> windows = GenomeWindows(GenomeTokens.read([path]), 32)
        >>> batches = WindowBatches(windows, batch_size=2, grad_accum=1, steps_per_epoch=3, seed=0)
        >>> [tuple(b["input_ids"].shape) for b in batches(0, DistContext())]
        [(2, 32), (2, 32), (2, 32)]
    """

    def __init__(self, windows: GenomeWindows, *, batch_size: int, grad_accum: int, steps_per_epoch: int, seed: int,
                 masked: bool = True, mask_fraction: float = 0.15, rc_augment: bool = True) -> None:
        self.windows = windows
        self.batch_size, self.grad_accum, self.steps_per_epoch = batch_size, grad_accum, steps_per_epoch
        self.seed, self.masked, self.mask_fraction, self.rc_augment = seed, masked, mask_fraction, rc_augment

    def draw(self, step: int, slot: int) -> tuple[GenomeWindow, bool, torch.Tensor, torch.Tensor | None]:
        """Slot ``slot`` of step ``step``: (window, reverse-complemented, ids, masked targets or None)."""
        rng = np.random.default_rng([self.seed, step, slot])
        window = self.windows.train_window(rng)
        flip = self.rc_augment and bool(rng.random() < 0.5)
        ids = self.windows.genome.window(window)
        ids = torch.from_numpy((reverse_complement_ids(ids) if flip else ids).astype(np.int64))
        if not self.masked:
            return window, flip, ids, None
        generator = torch.Generator().manual_seed(int(rng.integers(2**63)))
        corrupted, targets = mask_nucleotides(ids, self.mask_fraction, generator)
        return window, flip, corrupted, targets

    def batches(self, epoch: int, ctx: DistContext) -> Iterator[dict[str, torch.Tensor]]:
        """This rank's micro-batches of ``epoch``, made here (`__call__` makes them ahead, in a thread)."""
        world, b = ctx.world_size, self.batch_size
        for j in range(self.steps_per_epoch * self.grad_accum):
            step, a = epoch * self.steps_per_epoch + j // self.grad_accum, j % self.grad_accum
            drawn = [self.draw(step, (a * world + ctx.rank) * b + i) for i in range(b)]
            # No attention mask: every position of a training window is a base or N (the model then skips
            # the masking work).
            batch = {"input_ids": torch.stack([d[2] for d in drawn])}
            if self.masked:
                batch["labels"] = torch.stack([d[3] for d in drawn])
            yield batch

    def __call__(self, epoch: int, ctx: DistContext) -> Iterator[dict[str, torch.Tensor]]:
        return prefetch(self.batches(epoch, ctx), depth=2)


def prefetch(items: Iterator[Any], depth: int) -> Iterator[Any]:
    """``items`` made up to ``depth`` ahead in a background thread, so the next batch is drawn and
    masked while the device trains on this one (numpy and torch release the GIL). Same items, same order;
    the thread stops when the consumer closes or drops the iterator.

    Example:
        >>> list(prefetch(iter(range(5)), depth=2))
        [0, 1, 2, 3, 4]
    """
    done = object()
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        slots.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            slots.put((done, None))
        except BaseException as error:  # handed to the consumer, raised there
            slots.put((done, error))

    worker = threading.Thread(target=produce, name="seqmamba-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item, error = slots.get()
            if item is done:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()


class ValidationBatches:
    """The trainer's loader factory of validation windows (forward strand, fixed masks): rank ``r`` scores
    windows ``r, r + world, ...``; shorter windows are padded to the window (padding is masked out, so
    it changes no real position's output)."""

    def __init__(self, windows: GenomeWindows, valid: Sequence[GenomeWindow], batch_size: int, masked: bool = True,
                 mask_fraction: float = 0.15) -> None:
        self.windows, self.valid, self.batch_size = windows, list(valid), batch_size
        self.masked, self.mask_fraction = masked, mask_fraction

    def __call__(self, epoch: int, ctx: DistContext) -> Iterator[dict[str, torch.Tensor]]:
        mine = list(range(ctx.rank, len(self.valid), ctx.world_size))
        for first in range(0, len(mine), self.batch_size):
            rows = []
            for index in mine[first:first + self.batch_size]:
                ids = torch.from_numpy(self.windows.genome.window(self.valid[index]).astype(np.int64))
                targets = None
                if self.masked:
                    generator = torch.Generator().manual_seed(VALID_SEED * 1_000_003 + index)
                    ids, targets = mask_nucleotides(ids, self.mask_fraction, generator)
                rows.append((ids, targets))
            width = self.windows.window  # one shape for every batch: no kernel is compiled per length on a GPU
            batch = {"input_ids": torch.full((len(rows), width), PAD, dtype=torch.long),
                     "attention_mask": torch.zeros(len(rows), width, dtype=torch.long)}
            if self.masked:
                batch["labels"] = torch.full((len(rows), width), -100, dtype=torch.long)
            for row, (ids, targets) in enumerate(rows):
                batch["input_ids"][row, :len(ids)] = ids
                batch["attention_mask"][row, :len(ids)] = 1
                if targets is not None:
                    batch["labels"][row, :len(ids)] = targets
            yield batch


class TimeLimit(Callback):
    """Stops training cleanly (a checkpoint is written) once ``seconds`` have passed since it started.

    Under torchrun the ranks agree at every step (one all-reduce of a flag), so all stop at the same step.

    Example:
        >>> TimeLimit(3600).seconds
        3600
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def on_train_start(self, trainer: Trainer) -> None:
        self.deadline = time.monotonic() + self.seconds

    def on_step_end(self, trainer: Trainer) -> None:
        late = float(time.monotonic() >= self.deadline)
        if trainer.ctx.enabled:
            late = all_reduce_sums(trainer.ctx, [late], trainer.device)[0]
        if late:
            trainer.should_stop = True


class _Throughput(Callback):
    """Where this run started (step, clock), for the summary's tokens/s."""

    def on_train_start(self, trainer: Trainer) -> None:
        self.step, self.clock = trainer.state.global_step, time.perf_counter()

    def done(self, step: int) -> tuple[int, float]:
        if not hasattr(self, "clock"):
            return 0, 0.0
        return step - self.step, time.perf_counter() - self.clock


# ----------------------------------------------------------------------------------- the directory

def claim_pretrain_dir(out_dir: str | os.PathLike, *, resume: bool = False, overwrite: bool = False,
                       check_busy: bool = True) -> bool:
    """Check that ``out_dir`` may take a pretraining run; True when the run starts afresh (nothing to resume).

    The rules every command that writes a DNA model directory follows (`claim_model_dir`): an absent or
    empty directory, or a DNA model directory (a finished model only with ``resume`` or ``overwrite``);
    anything else is refused whatever the flags say. Besides: ``resume`` needs a pretraining run there (a
    `seqmamba train dna` run is not one), and an interrupted run is continued or discarded only when asked.
    Raises `OutputExistsError`, `OutputBusyError` (another run is writing it; ``check_busy=False`` when the
    caller holds DIR's lock itself) or `InputError`; writes nothing.

    Example:
        >>> import tempfile
        >>> claim_pretrain_dir(tempfile.mkdtemp())  # an empty directory: a fresh run
        True
    """
    path = Path(out_dir)
    if check_busy and path.is_dir():
        check_not_busy(path)  # a run writing DIR now: say so, not "an interrupted run"
    run = path / "training"
    checkpoint = find_checkpoint(run) if run.is_dir() else None
    claim_model_dir(path, DNA_MODEL, overwrite, resume=resume and checkpoint is not None, hint=HINT)
    if checkpoint is None:
        if resume and (path / "estimator.json").is_file():
            raise InputError(f"{path}: holds a model without a training checkpoint; nothing to resume (pass "
                             "overwrite=True / --overwrite to replace it)")
        return True  # new, empty, or a run stopped before its first checkpoint: it starts (again)
    if resume:
        if model_dir.run_command(run) != "pretrain":
            raise InputError(f"{path}: holds the run of another command (seqmamba train dna?), not a pretraining "
                             "run; nothing to resume (pass overwrite=True / --overwrite to replace it)")
        return False
    if not overwrite:
        raise OutputExistsError(path, f"holds an interrupted training run ({checkpoint}); {HINT}")
    return True


def check_resume_options(run_dir: Path, options: dict[str, Any]) -> None:
    """Refuse (`InputError`) resuming with options that change what is trained on (a window size, a seed,
    the genomes...); ``max_steps``, ``max_time``, the device and the like may change."""
    path = run_dir / model_dir.RUN_OPTIONS
    if not path.is_file():
        return
    before = read_json(path)
    changed = [name for name in sorted(set(before) | set(options))
               if name not in _FREE_OPTIONS and before.get(name) != options.get(name)]
    if changed:
        shown = "; ".join(f"{name} {options.get(name)!r} (was {before.get(name)!r})" for name in changed[:3])
        raise InputError(f"{run_dir.parent}: resuming with options unlike the run's: {shown}; give the same "
                         "options, or overwrite=True (--overwrite) to start again")


def _discard_run(out: Path) -> None:
    """--overwrite: the old model goes first (its estimator.json before the rest), then the old run."""
    for name in MODEL_FILES:
        (out / name).unlink(missing_ok=True)
    shutil.rmtree(out / "training", ignore_errors=True)


# ------------------------------------------------------------------------------------------ helpers

class _Say:
    """Lines for people on stderr: only when ``verbose`` and on rank 0 (``enabled``)."""

    def __init__(self, verbose: bool, enabled: bool) -> None:
        self.verbose, self.enabled = verbose, enabled

    def __call__(self, line: str) -> None:
        if self.enabled:
            print(line, file=sys.stderr, flush=True)


def _as_paths(value: str | os.PathLike | Sequence[str | os.PathLike]) -> list[str | os.PathLike]:
    return [value] if isinstance(value, (str, os.PathLike)) else list(value)


def _describe_input(value: Any) -> Any:
    if isinstance(value, GenomeTokens):
        return {"records": [[r.path, r.name, r.length] for r in value.records]}
    return [os.path.abspath(p) for p in _as_paths(value)]


def _check_positive(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


__all__ = ["PretrainResult", "TimeLimit", "ValidationBatches", "WindowBatches", "claim_pretrain_dir",
           "default_window", "parse_duration", "pretrain"]
