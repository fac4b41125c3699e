"""`Trainer`: one training loop for every seqmamba model, on a CPU, a GPU or many GPUs under torchrun."""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import logging
import math
import os
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Dataset

from . import state as ckpt_state
from .ahead import compile_step_kernels, distinct_batches, first_rows, start_workers, stop_workers
from .callbacks import Callback
from .config import TrainerConfig, TrainerState, seed_everything
from .data import LoaderFactory, ResumableSampler, ShardSampler, check_data, groups, make_loader, to_device
from .device import resolve_device
from .distributed import (
    DistContext,
    all_gather_objects,
    all_reduce_sums,
    barrier,
    broadcast_object,
    init_distributed,
    shutdown,
)
from .graphs import GraphedEvaluation, GraphedStep
from .metrics import MetricsWriter
from .optim import build_optimizer, build_scheduler, lr_tensors
from .progress import TrainProgress
from .task import Task, as_task

log = logging.getLogger(__name__)
_SUM_DTYPE = {"mps": torch.float32}  # validation sums: float64, except where a device has none


class Trainer:
    """Trains any ``nn.Module`` on a `Task`: AdamW, warm-up + cosine, clipping, accumulation, bf16 on
    CUDA, early stopping, atomic resumable checkpoints, metrics.jsonl, and DDP under torchrun.

    Args:
        model: the module to train (moved to the device; under torchrun wrapped in DDP for training).
        task: a `Task`, or a function ``loss_fn(model, batch) -> scalar tensor``.
        train_data: a map-style Dataset (sampled with a DistributedSampler; batched by the trainer with
            ``collate_fn``) or a factory ``(epoch, ctx) -> iterable of batches``.
        val_data: the same kinds, for evaluation and early stopping (optional).
        config: a `TrainerConfig`.
        run_dir: where checkpoint/, best/ and metrics.jsonl go; None writes nothing (no resume).
        callbacks: `Callback` objects.
        collate_fn: DataLoader's collate_fn for map-style datasets.

    Example:
        >>> import tempfile
        >>> from torch.utils.data import TensorDataset
        >>> from seqmamba.training import SupervisedTask, Trainer, TrainerConfig, seed_everything
        >>> seed_everything(0)
        >>> x = torch.randn(64, 4)
        >>> data = TensorDataset(x, x @ torch.ones(4, 1))
        >>> trainer = Trainer(nn.Linear(4, 1), SupervisedTask(nn.functional.mse_loss), data, val_data=data,
        ...                   config=TrainerConfig(max_epochs=20, batch_size=16, lr=0.1, quiet=True),
        ...                   run_dir=tempfile.mkdtemp())
        >>> state = trainer.fit()
        >>> state.global_step, state.last_metrics["val_loss"] < 0.05
        (80, True)
    """

    def __init__(
        self,
        model: nn.Module,
        task: Task | Callable[[nn.Module, Any], torch.Tensor],
        train_data: Dataset | LoaderFactory,
        *,
        val_data: Dataset | LoaderFactory | None = None,
        config: TrainerConfig | None = None,
        run_dir: str | os.PathLike | None = None,
        callbacks: Sequence[Callback] = (),
        collate_fn: Callable[[list[Any]], Any] | None = None,
    ) -> None:
        self.model = model
        self.task = as_task(task)
        check_data(train_data, "train_data")
        if val_data is not None:
            check_data(val_data, "val_data")
        self.train_data, self.val_data = train_data, val_data
        self.config = config or TrainerConfig()
        if self.config.patience is not None and val_data is None:
            raise ValueError("Trainer: early stopping (patience) needs val_data")
        self.run_dir = None if run_dir is None else Path(run_dir)
        self.callbacks = list(callbacks)
        self.collate_fn = collate_fn
        self.state = TrainerState()
        self.should_stop = False
        self.ctx = DistContext()
        self.device = torch.device("cpu")
        self.optimizer: torch.optim.Optimizer | None = None
        self.scheduler: torch.optim.lr_scheduler.LRScheduler | None = None
        self._ddp: nn.Module = model
        self._graph_step: GraphedStep | None = None
        self._graph_eval: GraphedEvaluation | None = None  # with graphed steps, evaluation is replayed too
        self._best_in_memory: dict[str, torch.Tensor] | None = None

    # ------------------------------------------------------------------------------------- public

    def fit(self, resume: bool = False) -> TrainerState:
        """Train until max_epochs / max_steps / early stopping; returns the final `TrainerState`.

        ``resume=True`` continues from ``run_dir/checkpoint`` exactly where it was written (weights,
        optimizer, schedule, RNG, data position): the result equals an uninterrupted run. Without a
        checkpoint it starts afresh.
        """
        self.device = resolve_device(self.config.device)
        self.ctx = init_distributed(self.device)
        try:
            return self._fit(resume)
        finally:
            shutdown(self.ctx)
            self.ctx = DistContext()

    def evaluate(self) -> dict[str, float]:
        """Validation metrics (``val_<name>``), averaged over every sample of every rank."""
        if self.val_data is None:
            raise ValueError("Trainer.evaluate: no val_data")
        model, task = self.model, self.task
        was_training = model.training
        model.eval()
        sums: dict[str, float | torch.Tensor] = {}
        count = 0
        graphed = self._graph_eval  # during a graphed fit: replayed, under its own autocast
        with torch.no_grad(), contextlib.nullcontext() if graphed is not None else self._autocast():
            for batch in self._val_batches():
                batch = to_device(batch, self.device)
                n = task.batch_size(batch)
                metrics = graphed(batch) if graphed is not None else task.metrics(model, batch)
                for name, value in metrics.items():
                    # summed where it lies, in float64 as Python's floats are: no wait for the GPU per batch
                    if torch.is_tensor(value):
                        value = value.detach().to(_SUM_DTYPE.get(value.device.type, torch.float64))
                    sums[name] = sums.get(name, 0.0) + value * n
                count += n
        model.train(was_training)
        sums = {name: float(value) for name, value in sums.items()}  # one read-back per metric
        # Objects, not a tensor all-reduce: a rank with no validation batch has no metric names either.
        totals: dict[str, float] = {}
        total_count = 0
        for rank_sums, rank_count in all_gather_objects(self.ctx, (sums, count)):
            total_count += rank_count
            for name, value in rank_sums.items():
                totals[name] = totals.get(name, 0.0) + value
        if total_count == 0:
            raise ValueError("Trainer.evaluate: val_data gave no batches")
        return {f"val_{name}": value / total_count for name, value in totals.items()}

    # ---------------------------------------------------------------------------------- set-up

    def _autocast(self, cache: bool = True) -> contextlib.AbstractContextManager:
        """bf16 autocast or nothing, as the precision says; ``cache=False``: without autocast's cache of cast
        weights, which a CUDA graph cannot keep."""
        precision = self.config.precision
        if precision == "auto":
            # bf16 needs no loss scaling; GPUs before Ampere would only emulate it.
            cuda_bf16 = self.device.type == "cuda" and torch.cuda.is_bf16_supported()
            precision = "bf16" if cuda_bf16 else "fp32"
        if precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16, cache_enabled=cache)

    def _graphs_taken(self, model: nn.Module) -> bool:
        """Whether this run's steps go through CUDA graphs (``cuda_graphs``, where they can: see TrainerConfig)."""
        cfg = self.config
        if not cfg.cuda_graphs:
            return False
        why = None
        if self.device.type != "cuda":
            why = "not on a CUDA device"
        elif self.ctx.enabled:
            why = "several processes (DDP)"
        elif cfg.grad_accum_steps != 1:
            why = "gradient accumulation"
        elif any(getattr(m, "gradient_checkpointing", False) is True for m in model.modules()):
            why = "gradient checkpointing"
        if why is not None:  # off a GPU there is nothing to say: graphs are a GPU's (the estimators always ask)
            (log.debug if self.device.type != "cuda" else log.info)("cuda_graphs: steps run eagerly (%s)", why)
        return why is None

    def _train_loader(self, epoch: int, skip_batches: int) -> Iterable[Any]:
        cfg = self.config
        if _is_factory(self.train_data):
            batches = self.train_data(epoch, self.ctx)
            # A factory cannot start mid-epoch: replay its start (same epoch, same batches) and drop it.
            return itertools.islice(batches, skip_batches, None)
        sampler = ResumableSampler(self.train_data, self.ctx, shuffle=cfg.shuffle, seed=cfg.seed)
        sampler.set_epoch(epoch, start=skip_batches * cfg.batch_size)
        return make_loader(self.train_data, sampler, cfg.batch_size, cfg.drop_last, cfg.num_workers,
                           self.collate_fn, self.device.type == "cuda", cfg.seed + epoch)

    def _val_batches(self) -> Iterable[Any]:
        data = self.val_data
        if _is_factory(data):
            return data(self.state.epoch, self.ctx)
        cfg = self.config
        return make_loader(data, ShardSampler(len(data), self.ctx), cfg.eval_batch_size or cfg.batch_size,
                           False, cfg.num_workers, self.collate_fn, self.device.type == "cuda", cfg.seed)

    def _total_steps(self) -> int | None:
        """Optimizer steps of the whole run, for the schedule and the progress bar (None: unknown)."""
        cfg = self.config
        if _is_factory(self.train_data):
            return cfg.max_steps
        samples = len(ResumableSampler(self.train_data, self.ctx, shuffle=False, seed=0))
        batches = samples // cfg.batch_size if cfg.drop_last else math.ceil(samples / cfg.batch_size)
        if batches == 0:
            raise ValueError(f"train_data has {samples} samples per process, fewer than one batch of "
                             f"{cfg.batch_size} (drop_last=True)")
        per_epoch = math.ceil(batches / cfg.grad_accum_steps)
        by_epochs = None if cfg.max_epochs is None else cfg.max_epochs * per_epoch
        return min(n for n in (cfg.max_steps, by_epochs) if n is not None)

    def _prepare_run_dir(self, resume: bool) -> Path | None:
        """Rank 0 looks for a checkpoint and tidies; every rank gets the same answer (or error)."""
        found, error = None, None
        if self.ctx.is_main and self.run_dir is not None:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            ckpt_state.clean_stale(self.run_dir)
            found = ckpt_state.find_checkpoint(self.run_dir)
            if found is not None and not resume:
                if self.config.overwrite:
                    for name in ("checkpoint", ".checkpoint.old", "best", ".best.old"):
                        shutil.rmtree(self.run_dir / name, ignore_errors=True)
                    (self.run_dir / "metrics.jsonl").unlink(missing_ok=True)
                    found = None
                else:
                    error = (f"{self.run_dir} already holds a training checkpoint; pass resume=True "
                             f"(--resume) to continue it or overwrite=True to start again")
            elif found is None:  # a fresh run: nothing from an earlier attempt may mix in
                shutil.rmtree(self.run_dir / "best", ignore_errors=True)
                (self.run_dir / "metrics.jsonl").unlink(missing_ok=True)
        if resume and self.run_dir is None:
            error = "resume=True needs a run_dir"
        found, error = broadcast_object(self.ctx, (None if found is None else str(found), error))
        if error:
            raise FileExistsError(error) if "already holds" in error else ValueError(error)
        return None if found is None else Path(found)

    def _restore(self, directory: Path) -> None:
        saved = ckpt_state.read_checkpoint(directory)
        ckpt_state.load_model_weights(self.model, directory)
        self.optimizer.load_state_dict(saved["optimizer"])
        self.scheduler.load_state_dict(saved["scheduler"])
        trainer = saved["trainer"]
        self.state = TrainerState(**trainer["state"])
        old = trainer["config"]
        for name in ("batch_size", "grad_accum_steps", "seed", "shuffle", "drop_last"):
            if old.get(name) != getattr(self.config, name):
                log.warning("resuming with %s=%r (the checkpoint used %r): the run will differ from an "
                            "uninterrupted one", name, getattr(self.config, name), old.get(name))
        if trainer["world_size"] != self.ctx.world_size:
            log.warning("resuming on %d processes, the checkpoint was written by %d: data order changes",
                        self.ctx.world_size, trainer["world_size"])
        if self.ctx.is_main:
            MetricsWriter(self.run_dir / "metrics.jsonl").truncate(self.state.metrics_offset)
        if self.ctx.rank < len(saved["rng"]):
            ckpt_state.restore_rng(*saved["rng"][self.ctx.rank], self.device)
        else:
            seed_everything(self.config.seed + self.ctx.rank)
        log.info("resumed from %s at step %d (epoch %d)", directory, self.state.global_step, self.state.epoch)

    # --------------------------------------------------------------------------------- the loop

    def _fit(self, resume: bool) -> TrainerState:
        cfg = self.config
        if self._compiles_kernels():
            start_workers()  # on a fresh machine: their start overlaps CUDA's and the model's
        model = self.model.to(self.device)
        if cfg.gradient_checkpointing is not None:
            _set_gradient_checkpointing(model, cfg.gradient_checkpointing)
        total_steps = self._total_steps()
        schedule = cfg.schedule if total_steps is not None else "constant"
        graphs = self._graphs_taken(model)
        self.optimizer = build_optimizer(model, cfg.lr, cfg.weight_decay, cfg.betas, cfg.adam_eps, capturable=graphs)
        self.scheduler = build_scheduler(self.optimizer, cfg.warmup_steps, total_steps, schedule, cfg.min_lr_ratio)
        self.state = TrainerState()
        self.should_stop = False
        found = self._prepare_run_dir(resume)
        if found is not None:
            self._restore(found)
        else:
            seed_everything(cfg.seed)
        self._graph_step = self._graph_eval = None
        if graphs:
            lr_tensors(self.optimizer)  # after the scheduler and the restore: both leave numbers
            self._graph_step = GraphedStep(model, self.task.loss, self.optimizer, cfg.max_grad_norm,
                                           lambda: self._autocast(cache=False))
            self._graph_eval = GraphedEvaluation(model, self.task.metrics, lambda: self._autocast(cache=False))
        self._metrics = MetricsWriter(self.run_dir / "metrics.jsonl") if self.run_dir and self.ctx.is_main else None
        if self._compiles_kernels():
            self._compile_ahead(model)  # before DDP wraps the model: the dry run's backward must not all-reduce
        self._ddp = model
        if self.ctx.enabled:
            self._ddp = DistributedDataParallel(model, device_ids=[self.device.index] if self.device.type == "cuda"
                                                else None)
        self._progress = TrainProgress(total_steps, self.state.global_step, disable=cfg.quiet or not self.ctx.is_main)
        try:
            for cb in self.callbacks:
                cb.on_train_start(self)
            if cfg.eval_at_start and found is None and self.val_data is not None:
                self._write_record("eval", self._evaluate_and_track())
            self._loop()
        finally:
            self._progress.close()
            self._ddp = model
            if self._graph_step is not None:  # the graphs' memory and the gradients they kept go with them
                self._graph_step = self._graph_eval = None
                self.optimizer.zero_grad(set_to_none=True)
        if cfg.restore_best:
            self._load_best()
        for cb in self.callbacks:
            cb.on_train_end(self)
        return self.state

    def _compiles_kernels(self) -> bool:
        """Whether the first steps compile GPU kernels (Triton, on a CUDA device)."""
        return self.device.type == "cuda"

    def _compile_ahead(self, model: nn.Module) -> None:
        """Compile the kernels of a training step on the first batch and on the epoch's last, partial batch (where
        the data's length is known), and of an evaluation of each distinct batch shape of the validation set (up to
        8), in parallel before the first step instead of one by one inside it (training/ahead.py,
        kernels/compile_ahead.py)."""
        cfg = self.config
        try:
            first = next(iter(self._train_loader(self.state.epoch, 0)), None)
            evals = distinct_batches(self._val_batches()) if self.val_data is not None else []
        except Exception:  # the loop meets the same error and reports it
            stop_workers()
            return
        train = [first] if first is not None else []
        if not _is_factory(self.train_data) and not cfg.drop_last and train:
            train += self._last_batch(first, len(ResumableSampler(self.train_data, self.ctx, shuffle=False, seed=0)),
                                      cfg.batch_size)
        compile_step_kernels(model, self.task.loss, [to_device(b, self.device) for b in train],
                             [to_device(b, self.device) for b in evals], self._autocast,
                             graphed=self._graph_step is not None)

    @staticmethod
    def _last_batch(first: Any, samples: int, batch_size: int) -> list[Any]:
        """[the epoch's last, partial batch] cut from its first batch, or [] where every batch is full."""
        rest = samples % batch_size
        return [first_rows(first, rest)] if rest and samples > batch_size else []

    def _done(self) -> bool:
        cfg, st = self.config, self.state
        return (self.should_stop or st.stopped_early or (cfg.max_steps is not None and st.global_step >= cfg.max_steps)
                or (cfg.max_epochs is not None and st.epoch >= cfg.max_epochs))

    def _loop(self) -> None:
        cfg, st = self.config, self.state
        self._clock = time.perf_counter()
        self._clock_samples, self._clock_tokens = st.samples, st.tokens
        start_step = st.global_step
        while not self._done():
            self._progress.set_epoch(st.epoch)
            trained = False
            for group, last in groups(self._train_loader(st.epoch, st.batches_in_epoch), cfg.grad_accum_steps):
                trained = True
                self._step(group)
                if last:
                    self._end_epoch()
                else:
                    self._maybe_evaluate_and_save()
                if self._done():
                    break
            if not trained:
                if st.batches_in_epoch == 0:
                    raise ValueError("train_data gave no batches for an epoch")
                self._end_epoch()  # resumed exactly at an epoch's end
        if st.global_step == start_step:
            return  # resumed a finished run: nothing new to record
        final: dict[str, float] = {}
        if not st.stopped_early and st.last_eval_step != st.global_step and self.val_data is not None:
            final = self._evaluate_and_track()
        if st.batches_in_epoch:  # stopped mid-epoch: log the partial epoch and keep its position
            self._write_record("end", {**self._epoch_record(), **final})
            self._save()
        elif final:
            self._write_record("eval", final)
            self._save()

    def _step(self, group: list[Any]) -> None:
        cfg, st, model = self.config, self.state, self._ddp
        model.train()
        n = len(group)
        if self._graph_step is not None:
            self._graphed_step(group[0])
            return
        loss_total = torch.zeros((), device=self.device)
        tokens = 0
        for i, batch in enumerate(group):
            batch = to_device(batch, self.device)
            # Gradients are all-reduced once per optimizer step, at the last micro-batch.
            sync = i == n - 1 or not isinstance(model, DistributedDataParallel)
            with contextlib.nullcontext() if sync else model.no_sync():
                with self._autocast():
                    loss = self.task.loss(model, batch)
                if loss.ndim != 0:
                    raise ValueError(f"task.loss must return a scalar, got shape {tuple(loss.shape)}")
                (loss / n).backward()
            loss_total += loss.detach().float()
            st.samples += self.task.batch_size(batch)
            tokens += self.task.num_tokens(batch)
        st.tokens += tokens
        grad_norm = None
        if cfg.max_grad_norm is not None:
            grad_norm = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.max_grad_norm))
        lr = self.optimizer.param_groups[0]["lr"]
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self._after_step(float(loss_total) / n, lr, grad_norm, n, tokens)

    def _graphed_step(self, batch: Any) -> None:
        """One step through `GraphedStep` (eager, captured or replayed; it zeroes the gradients in place)."""
        batch = to_device(batch, self.device)
        lr = float(self.optimizer.param_groups[0]["lr"])  # a tensor here: the graph reads it on the device
        loss, norm = self._graph_step(batch)
        self.scheduler.step()
        self.state.samples += self.task.batch_size(batch)
        tokens = self.task.num_tokens(batch)
        self.state.tokens += tokens
        self._after_step(float(loss), lr, None if norm is None else float(norm), 1, tokens)

    def _after_step(self, step_loss: float, lr: float, grad_norm: float | None, n: int, tokens: int) -> None:
        """The bookkeeping of a finished optimizer step: counters, progress, the log record, callbacks."""
        cfg, st = self.config, self.state
        st.global_step += 1
        st.batches_in_epoch += n
        st.loss_sum += step_loss
        st.loss_steps += 1
        st.last_lr = lr
        self._progress.step(step_loss, lr, tokens * self.ctx.world_size)
        if cfg.log_every and st.global_step % cfg.log_every == 0:
            self._write_record("train", {"loss": step_loss, "lr": lr, "grad_norm": grad_norm})
        for cb in self.callbacks:
            cb.on_step_end(self)

    def _maybe_evaluate_and_save(self) -> None:
        cfg, st = self.config, self.state
        if self.val_data is not None and cfg.eval_every and st.global_step % cfg.eval_every == 0:
            metrics = self._evaluate_and_track()
            self._write_record("eval", metrics)
        if cfg.save_every and st.global_step % cfg.save_every == 0:
            self._save()

    def _end_epoch(self) -> None:
        cfg, st = self.config, self.state
        record = self._epoch_record()
        step_eval = cfg.eval_every is not None and st.global_step % cfg.eval_every == 0
        if self.val_data is not None and (cfg.eval_every is None or step_eval):
            record.update(self._evaluate_and_track())
        self._write_record("epoch", record)
        for cb in self.callbacks:
            cb.on_epoch_end(self, record)
        st.epoch += 1
        st.batches_in_epoch = 0
        st.loss_sum, st.loss_steps, st.samples, st.tokens = 0.0, 0, 0, 0
        self._clock = time.perf_counter()
        self._clock_samples = self._clock_tokens = 0
        self._save()

    def _epoch_record(self) -> dict[str, Any]:
        """Train loss and throughput of the epoch so far, over all ranks."""
        st = self.state
        loss_sum, loss_steps, samples, tokens = all_reduce_sums(
            self.ctx, [st.loss_sum, st.loss_steps, st.samples, st.tokens], self.device)
        seconds = time.perf_counter() - self._clock
        local = [st.samples - self._clock_samples, st.tokens - self._clock_tokens]
        done_samples, done_tokens = all_reduce_sums(self.ctx, local, self.device)
        return {
            "train_loss": loss_sum / loss_steps if loss_steps else None,
            "lr": st.last_lr,
            "samples": int(samples),
            "tokens": int(tokens),
            "seconds": round(seconds, 3),
            "samples_per_s": done_samples / seconds if seconds > 0 else None,
            "tokens_per_s": done_tokens / seconds if seconds > 0 else None,
        }

    def _evaluate_and_track(self) -> dict[str, float]:
        cfg, st = self.config, self.state
        metrics = self.evaluate()
        st.last_eval_step = st.global_step
        st.last_metrics = dict(metrics)
        if cfg.monitor not in metrics:
            raise KeyError(f"monitor {cfg.monitor!r} is not among the validation metrics {sorted(metrics)}")
        value = metrics[cfg.monitor]
        if st.best_metric is None:
            improved = True
        elif cfg.mode == "min":
            improved = value < st.best_metric - cfg.min_delta
        else:
            improved = value > st.best_metric + cfg.min_delta
        if improved:
            st.best_metric, st.best_step, st.bad_evals = value, st.global_step, 0
            self._save_best(metrics)
        else:
            st.bad_evals += 1
            if cfg.patience is not None and st.bad_evals >= cfg.patience:
                st.stopped_early = True
        shown = ", ".join(f"{k}={v:.4g}" for k, v in metrics.items())
        self._progress.write(f"step {st.global_step}: {shown}" + (" (best)" if improved else ""))
        for cb in self.callbacks:
            cb.on_evaluate(self, metrics)
        return metrics

    # ------------------------------------------------------------------------------------- files

    def _write_record(self, event: str, values: dict[str, Any]) -> None:
        if self._metrics is not None:
            self._metrics.write({"event": event, "epoch": self.state.epoch, "step": self.state.global_step,
                                 **values, "time": round(time.time(), 3)})

    def _save(self) -> None:
        if self.run_dir is None:
            return
        # Every rank's RNG, so each continues its own stream after a resume.
        rng = all_gather_objects(self.ctx, ckpt_state.capture_rng(self.device))
        if self.ctx.is_main:
            self.state.metrics_offset = self._metrics.offset()
            trainer = {"state": dataclasses.asdict(self.state), "config": self.config.to_dict(),
                       "world_size": self.ctx.world_size}
            ckpt_state.write_checkpoint(self.run_dir, self.model, self.optimizer, self.scheduler, trainer, rng)
        barrier(self.ctx)

    def _save_best(self, metrics: dict[str, float]) -> None:
        if self.run_dir is None:
            if self.config.restore_best:
                self._best_in_memory = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
            return
        if self.ctx.is_main:
            info = {"step": self.state.global_step, "epoch": self.state.epoch, "monitor": self.config.monitor,
                    "metrics": metrics}
            ckpt_state.write_best(self.run_dir, self.model, info)

    def _load_best(self) -> None:
        barrier(self.ctx)
        if self.run_dir is not None and (self.run_dir / "best").is_dir():
            ckpt_state.load_model_weights(self.model, self.run_dir / "best")
        elif self._best_in_memory is not None:
            self.model.load_state_dict(self._best_in_memory)


def _is_factory(data: Any) -> bool:
    return callable(data) and not isinstance(data, Dataset)


def _set_gradient_checkpointing(model: nn.Module, value: bool) -> None:
    """Flip every ``gradient_checkpointing`` switch in the model (encoders inside task heads included)."""
    switches = [m for m in model.modules() if hasattr(m, "gradient_checkpointing")]
    if not switches:
        raise ValueError(f"{type(model).__name__} has no module with a gradient_checkpointing switch")
    for module in switches:
        module.gradient_checkpointing = value
