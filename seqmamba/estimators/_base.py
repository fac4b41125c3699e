"""What both DNA estimators share: the model's config, training through the Trainer, windowed
inference, pickling without pickled modules, and the checkpoint directory.

Checkpoint directory (what ``save`` writes and ``seqmamba classify`` / ``embed`` read)::

    config.json         MambaConfig, seqmamba's checkpoint envelope
    model.safetensors   weights (encoder + head)
    tokenizer.json      DNATokenizer state
    estimator.json      estimator type, hyperparameters, classes, head (kind, outputs, pooling)
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from safetensors.torch import load as load_bytes
from safetensors.torch import save as save_bytes
from sklearn.base import BaseEstimator
from torch import nn

from .. import checkpoint as ckpt
from .. import model_dir
from ..config import MambaConfig
from ..datasets.atomic import atomic_output, staged_files
from ..datasets.output_safety import API_HINT, DNA_MODEL, claim_model_dir
from ..errors import InputError
from ..inference import GraphedForward, cuda_graphs_wanted
from ..model_dir import ESTIMATOR_NAME, TOKENIZER_NAME  # the layout: model_dir.py's
from ..tokenizers.dna import COMPLEMENT, DNATokenizer
from ..training import Callback, Task, Trainer, TrainerConfig
from ..training.ahead import compile_forward_kernels, first_rows
from ..training.device import resolve_device
from ..training.threads import INFERENCE_REUSE_S, cpu_threads
from ._dna_data import WindowRef, iter_batches, plan_windows
from ._heads import POOLINGS, build_module

ESTIMATOR_FORMAT = 1


class _TimeLimit(Callback):
    """Stops training cleanly once ``seconds`` have passed (benchmarks with a wall-clock budget)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def on_train_start(self, trainer: Trainer) -> None:
        self.deadline = time.monotonic() + self.seconds

    def on_step_end(self, trainer: Trainer) -> None:
        if time.monotonic() >= self.deadline:
            trainer.should_stop = True


def json_ready(value: Any) -> Any:
    """NumPy scalars and arrays as plain Python, for estimator.json."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


class DNAEstimatorBase(BaseEstimator):
    """Machinery for estimators holding a DNA model in ``model_`` (not a public class)."""

    # Subclasses set these in fit: model_ (nn.Module), tokenizer_, head_ (dict: kind, n_outputs,
    # pooling, add_cls).

    # -- model ----------------------------------------------------------------------------------

    def _mamba_config(self) -> MambaConfig:
        return MambaConfig(
            d_model=self.d_model, n_layers=self.n_layers, d_state=self.d_state, bidirectional=self.bidirectional,
            rc_equivariant=self.rc_equivariant, vocab_size=DNATokenizer.vocab_size,
            complement_map=list(COMPLEMENT) if self.rc_equivariant else None,
        )

    def _check_params(self) -> None:
        for name in ("d_model", "n_layers", "d_state", "max_len", "max_epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{type(self).__name__}: {name} must be a positive integer, got {value!r}")
        if self.window_stride is not None and not 1 <= self.window_stride:
            raise ValueError(f"{type(self).__name__}: window_stride must be positive, got {self.window_stride!r}")
        if not self.lr > 0:
            raise ValueError(f"{type(self).__name__}: lr must be > 0, got {self.lr!r}")

    @property
    def _stride(self) -> int:
        return int(self.window_stride or self.max_len)

    def _n_threads(self) -> int | None:
        return getattr(self, "n_threads", None)  # estimators pickled before the parameter existed

    def _torch_device(self) -> torch.device:
        return resolve_device(self.device)

    def _seed(self) -> int:
        rs = self.random_state
        if rs is None:
            return int(np.random.default_rng().integers(2**31))
        if isinstance(rs, np.random.RandomState):
            return int(rs.randint(2**31))
        return int(rs)

    def _trainer_config(self, steps: int, seed: int, early_stopping: bool) -> TrainerConfig:
        return TrainerConfig(
            max_epochs=None, max_steps=max(1, steps), batch_size=self.batch_size, lr=self.lr,
            weight_decay=self.weight_decay, warmup_steps=min(steps // 10, 200), device=self.device, seed=seed,
            eval_every=max(1, steps // self.max_epochs), patience=self.n_iter_no_change if early_stopping else None,
            restore_best=early_stopping, quiet=not self.verbose, cuda_graphs=cuda_graphs_wanted(),
        )

    def _run_trainer(self, module: nn.Module, task: Task, train: Callable, val: Callable | None,
                     batches_per_epoch: int, seed: int, run_dir: str | os.PathLike | None = None,
                     resume: bool = False) -> None:
        # Steps rather than epochs: a loader factory has no length, and the schedule needs the total.
        early = val is not None and self._early_stopping_on()
        config = self._trainer_config(batches_per_epoch * self.max_epochs, seed, early)
        callbacks = [_TimeLimit(self.max_time)] if getattr(self, "max_time", None) else []
        trainer = Trainer(module, task, train, val_data=val, config=config, callbacks=callbacks, run_dir=run_dir)
        with cpu_threads(self._n_threads(), self._torch_device()):
            state = trainer.fit(resume=resume)
        ckpt.check_trained(module, "fit", self.lr)  # a diverged run (NaN loss) would answer NaN for every input
        self.n_iter_ = state.global_step
        self.best_validation_score_ = state.best_metric
        self.validation_scores_ = dict(state.last_metrics)

    def _early_stopping_on(self) -> bool:
        return bool(getattr(self, "early_stopping", False))

    # -- windowed inference ---------------------------------------------------------------------

    def _window_outputs(
        self, sequences: Sequence[str], fn: Callable[[nn.Module, dict[str, torch.Tensor]], torch.Tensor],
        names: Sequence[str] | None = None, progress: Callable[[int], None] | None = None,
    ) -> tuple[np.ndarray, list[WindowRef]]:
        """fn(model, batch) -> (b, k) for every window; rows in window order (input order)."""
        model = self.model_
        device = self._torch_device()
        model.to(device).eval()
        windows = plan_windows(sequences, self.max_len, self._stride)
        out: np.ndarray | None = None
        position = {id(w): i for i, w in enumerate(windows)}

        def batches():
            return iter_batches(sequences, windows, self.tokenizer_, self.batch_size, add_cls=self.head_["add_cls"],
                                names=names)

        def collect(values: torch.Tensor, batch_windows: list[WindowRef]) -> None:
            nonlocal out
            values = values.cpu().numpy()  # waits for this batch's kernels
            check_finite_outputs(values, batch_windows, names)
            if out is None:
                out = np.empty((len(windows), values.shape[1]), dtype=np.float32)
            out[[position[id(w)] for w in batch_windows]] = values
            if progress is not None:
                progress(sum(w.end - w.start for w in batch_windows))

        forward = GraphedForward(model, fn)  # short windows on a GPU: one graph launch per batch
        with torch.inference_mode(), cpu_threads(self._n_threads(), device, reuse_seconds=INFERENCE_REUSE_S):
            first = next(iter(batches()), None) if device.type == "cuda" else None
            if first is not None:
                self._compile_predict_kernels(model, fn, first.as_dict(), len(windows), device)
            pending = None
            for batch in batches():
                values = forward({k: v.to(device, non_blocking=True) for k, v in batch.as_dict().items()})  # (b, k)
                values = values.float().clone()  # a replayed graph's buffer is rewritten by the next replay
                if pending is not None:  # the previous batch is read back while this one runs
                    collect(*pending)
                pending = (values, batch.windows)
            if pending is not None:
                collect(*pending)
        assert out is not None
        return out, windows

    def _compile_predict_kernels(self, model: nn.Module, fn: Callable, first: dict[str, torch.Tensor],
                                 n_windows: int, device: torch.device) -> None:
        """On a GPU: compile the kernels of the first batch and of the last, partial one in parallel before the
        first batch runs, not one by one inside it (training/ahead.py)."""
        first = {k: v.to(device) for k, v in first.items()}
        rest = n_windows % self.batch_size if n_windows > self.batch_size else 0
        compile_forward_kernels(model, fn, [first] + ([first_rows(first, rest)] if rest else []))

    # -- pickling: weights as safetensors bytes, never a pickled nn.Module ------------------------

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__().copy()
        model = state.pop("model_", None)
        if model is not None:
            tensors = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
            state["_weights"] = save_bytes(tensors)
            state["_config"] = json.dumps(model.config.to_dict())
        tokenizer = state.pop("tokenizer_", None)
        if tokenizer is not None:
            state["_tokenizer"] = json.dumps(tokenizer.to_dict())
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        weights, config = state.pop("_weights", None), state.pop("_config", None)
        tokenizer = state.pop("_tokenizer", None)
        super().__setstate__(state)
        if tokenizer is not None:
            self.tokenizer_ = DNATokenizer.from_dict(json.loads(tokenizer))
        if weights is not None:
            head = self.head_
            module = build_module(head["kind"], MambaConfig.from_dict(json.loads(config)), head["n_outputs"],
                                  head["pooling"])
            tensors = load_bytes(weights)
            ckpt.check_finite_tensors(tensors, f"pickled {type(self).__name__}")
            module.load_state_dict(tensors)
            self.model_ = module.eval()

    # -- checkpoint directory --------------------------------------------------------------------

    def _estimator_record(self) -> dict[str, Any]:
        params = {k: json_ready(v) for k, v in self.get_params(deep=False).items()
                  if isinstance(json_ready(v), (int, float, str, bool, type(None), list))}
        return {"format": ESTIMATOR_FORMAT, "estimator": type(self).__name__, "params": params,
                "head": self.head_}

    def save(self, directory: str | os.PathLike, overwrite: bool = True) -> Path:
        """Write the fitted estimator as a checkpoint directory (no pickle), all files or none.

        A failure (`OutputError` on a full disk) or an interrupt leaves ``directory`` as it was.
        ``directory`` must be new, empty, or a DNA model directory (this estimator's or the other DNA
        estimator's, or ``seqmamba train dna``'s): a model there is replaced (``overwrite=False`` refuses
        it, as the command line does without ``--overwrite``). Any other directory (data, a forecaster,
        a model directory holding other files) is refused with `OutputExistsError`, whatever ``overwrite``.
        """
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, "model_")
        directory = claim_model_dir(directory, DNA_MODEL, overwrite, hint=API_HINT)
        text = json.dumps(self._estimator_record(), indent=2) + "\n"
        # estimator.json goes in last: a directory holding it holds the matching weights and tokenizer.
        with staged_files(directory, last=ESTIMATOR_NAME) as staging:
            ckpt.save_pretrained(self.model_, staging, self.model_.config)
            self.tokenizer_.save(staging / TOKENIZER_NAME)
            with atomic_output(staging / ESTIMATOR_NAME) as handle:
                handle.write(text)
        return directory

    @classmethod
    def load(cls, directory: str | os.PathLike, device: str | None = None):
        """A fitted estimator from a directory written by `save` (or ``seqmamba train dna``).

        Every file is checked first (`seqmamba.model_dir`): InputError names the file and the field, or the
        tensor whose shape differs from the one config.json implies.
        """
        directory = Path(directory)
        record = read_estimator_record(directory)
        if record["estimator"] != cls.__name__:
            raise InputError(f"{directory}: holds a {record['estimator']}, not a {cls.__name__}")
        checked = model_dir.Record(directory / ESTIMATOR_NAME, record)
        checked.check_fields("params", model_dir.hints_of(cls))
        params = valid_params(cls, record.get("params", {}))
        if device is not None:
            params["device"] = device
        est = cls(**params)
        checked.build("params", lambda _: est._check_params())
        est._restore(directory, record)
        return est

    def _restore(self, directory: Path, record: dict[str, Any]) -> None:
        head = record["head"]
        self.model_ = read_module(directory, head).eval()
        self.head_ = head
        self.tokenizer_ = DNATokenizer.load(directory / TOKENIZER_NAME)


def check_finite_outputs(values: np.ndarray, windows: Sequence[WindowRef], names: Sequence[str] | None) -> None:
    """The last guard before a result leaves the model: NaN or inf (damaged weights, an overflow) is an
    InputError naming the record and window, never a probability, label or embedding."""
    if np.isfinite(values).all():
        return
    i = int(np.flatnonzero(~np.isfinite(values).all(axis=1))[0])
    w = windows[i]
    name = names[w.row] if names is not None else f"sequence {w.row}"
    value = values[i][~np.isfinite(values[i])][0]
    raise InputError(f"record {name!r}, bases {w.start}-{w.end}: the model's output is not finite ({value}); "
                     "no result is written for it (are the model's weights damaged?)")


def read_estimator_record(directory: str | os.PathLike) -> dict[str, Any]:
    """estimator.json of a checkpoint directory, checked field by field; InputError naming the file otherwise.

    Checked: ``format``, ``estimator``, ``params`` (an object; its fields by the estimator's `load`) and
    ``head`` (``kind``, ``n_outputs``, ``pooling``, ``add_cls``).
    """
    path = Path(directory) / ESTIMATOR_NAME
    if not path.is_file():
        run = Path(directory) / "training"
        if (run / "checkpoint").is_dir() or (run / ".checkpoint.old").is_dir():
            command = "seqmamba pretrain" if model_dir.run_command(run) == "pretrain" else "seqmamba train dna"
            raise InputError(f"{directory}: its training was stopped before the model was saved ({run} holds the "
                             f"checkpoint); run the same `{command}` command with --resume to finish it")
        found = model_dir.directory_kind(directory)
        if found is not None and found[0] != model_dir.DNA_MODEL:
            raise model_dir.wrong_kind(path, found[1], "DNA model written by `seqmamba train dna` or an "
                                       "estimator's save()", subject=f"no such file; {directory}")
        raise InputError(f"{path}: no such file; is {directory} a model directory written by "
                         "`seqmamba train dna` or an estimator's save()?")
    record = model_dir.read_record(path)
    version = record.get("format", int)
    if version != ESTIMATOR_FORMAT:
        raise record.error("format", f"estimator record format {version} is not supported (this seqmamba reads "
                                     f"{ESTIMATOR_FORMAT})")
    record.get("estimator", str)
    record.get("params", dict, {})
    record.get("head.kind", str)
    record.positive_int("head.n_outputs")
    record.get("head.pooling", Literal[POOLINGS])
    record.get("head.add_cls", bool)
    return record.data


def read_module(directory: str | os.PathLike, head: dict[str, Any]) -> nn.Module:
    """The module of a DNA model directory: config.json (checked against estimator.json's ``head``) and
    model.safetensors (every tensor's name and shape checked against the module the config describes)."""
    config_record = model_dir.read_config(directory)
    found = config_record.get("model_type", str)
    if model_dir.kind_of(found) == model_dir.FORECASTER:
        raise model_dir.wrong_kind(config_record.path, found, "DNA model")
    if found != head["kind"]:
        raise config_record.error("model_type", f"{found!r} differs from {ESTIMATOR_NAME}'s head.kind "
                                                f"{head['kind']!r} (the files of two different models?)")
    config = ckpt.load_config(directory)
    module = config_record.build("config", lambda _: build_module(head["kind"], config, head["n_outputs"],
                                                                  head["pooling"]))
    ckpt.load_weights(module, directory)
    return module


def valid_params(cls: type[BaseEstimator], params: dict[str, Any]) -> dict[str, Any]:
    """The stored hyperparameters that ``cls`` still takes (older or newer records load)."""
    names = set(cls._get_param_names())
    return {k: v for k, v in params.items() if k in names}
