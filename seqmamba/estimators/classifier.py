"""`MambaSequenceClassifier`: a scikit-learn classifier of DNA sequences of any length."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy.special import softmax
from sklearn.base import ClassifierMixin
from sklearn.model_selection import train_test_split
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted
from torch import nn

from .. import model_dir
from ..datasets.labelled import check_labels
from ..errors import InputError
from ..tokenizers.dna import DNATokenizer
from ..training import Task
from ..training.config import seed_everything
from ._base import ESTIMATOR_NAME, DNAEstimatorBase
from ._dna_data import (
    WindowRef,
    check_sequences,
    iter_batches,
    length_bucketed_order,
    sample_training_windows,
)
from ._heads import POOLINGS, SequenceHeadModel
from ._init import pretrained_encoder

WINDOW_POOLINGS = ("mean", "max")


class _ClassificationTask(Task):
    """Cross-entropy on batches {input_ids, attention_mask, labels}; accuracy for evaluation."""

    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return F.cross_entropy(model(batch["input_ids"], batch["attention_mask"]).float(), batch["labels"])

    def metrics(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        logits = model(batch["input_ids"], batch["attention_mask"]).float()  # (b, n_classes)
        return {"loss": F.cross_entropy(logits, batch["labels"]),
                "acc": (logits.argmax(-1) == batch["labels"]).float().mean()}


class MambaSequenceClassifier(ClassifierMixin, DNAEstimatorBase):
    """Classify DNA sequences (strings, any length) with a bidirectional Mamba encoder, from scratch or
    fine-tuned from a pretrained one (``init``).

    Sequences longer than ``max_len`` are cut into windows (every ``window_stride`` bases, the last
    window shorter); their logits are pooled (``window_pooling``), so a whole chromosome gets one
    prediction with memory bounded by a batch of windows. Training draws one random window per long
    sequence per epoch.

    Args:
        d_model, n_layers, d_state: encoder size (`MambaConfig`).
        bidirectional: forward and reverse scans in every layer (default); False is causal.
        rc_equivariant: strand-symmetric predictions (a sequence and its reverse complement score the
            same); twice the compute.
        pooling: positions -> window embedding: ``"mean"``, ``"max"`` or ``"cls"`` (a [CLS] token
            prepended to every window).
        max_len: longest window, in bases.
        window_stride: distance between window starts (default ``max_len``: no overlap).
        window_pooling: windows -> sequence: ``"mean"`` or ``"max"`` of the logits.
        max_epochs, batch_size, lr, weight_decay: training (AdamW, warm-up + cosine, through
            `seqmamba.training.Trainer`).
        early_stopping: hold out ``validation_fraction`` of the training set (stratified) and stop after
            ``n_iter_no_change`` epochs without a better validation loss, keeping the best weights.
        max_time: stop training after this many seconds (None: no limit), e.g. for a time budget.
        init: start the encoder from a pretrained one: a seqmamba model directory (``seqmamba pretrain``,
            a classifier, an embedder) or a Caduceus checkpoint (directory or hub id). The encoder's
            size, direction and strand handling then come from it (``d_model``, ``n_layers``,
            ``d_state``, ``bidirectional`` and ``rc_equivariant`` are not used); the head is new.
        freeze_encoder: train the head alone (a linear probe of the encoder's pooled embeddings).
        encoder_lr_scale: the encoder learns at ``encoder_lr_scale * lr``, the head at ``lr`` (e.g. 0.1
            when fine-tuning a pretrained encoder, so the new head moves first).
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        n_threads: torch CPU threads while fitting and predicting on a CPU (None: torch's count, lowered
            to the cores the load average leaves idle; see :mod:`seqmamba.training.threads`).
        random_state: seed of the weights, the split and the window draws (None: a fresh one).
        verbose: progress bar and validation lines on stderr.

    Fitted attributes: ``classes_``, ``model_`` (the torch module), ``tokenizer_``, ``head_``,
    ``n_iter_`` (optimizer steps), ``validation_scores_``, ``best_validation_score_``.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> X = ["".join(rng.choice(list("AT" if i % 2 else "GC"), 40)) for i in range(16)]
        >>> y = ["AT" if i % 2 else "GC" for i in range(16)]
        >>> clf = MambaSequenceClassifier(d_model=8, n_layers=1, d_state=4, max_epochs=15, lr=1e-2,
        ...                               device="cpu", random_state=0).fit(X, y)
        >>> clf.predict(["ATTATA", "GGCGCC"]).tolist()
        ['AT', 'GC']
        >>> clf.predict_proba(["ATTATA"]).shape
        (1, 2)
    """

    def __init__(
        self,
        d_model: int = 64,
        n_layers: int = 2,
        d_state: int = 16,
        bidirectional: bool = True,
        rc_equivariant: bool = False,
        pooling: str = "mean",
        max_len: int = 1024,
        window_stride: int | None = None,
        window_pooling: str = "mean",
        max_epochs: int = 10,
        batch_size: int = 32,
        lr: float = 1e-3,
        weight_decay: float = 0.01,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 3,
        max_time: float | None = None,
        init: str | os.PathLike | None = None,
        freeze_encoder: bool = False,
        encoder_lr_scale: float = 1.0,
        device: str = "auto",
        n_threads: int | None = None,
        random_state: int | np.random.RandomState | None = None,
        verbose: int = 0,
    ) -> None:
        self.d_model = d_model
        self.n_layers = n_layers
        self.d_state = d_state
        self.bidirectional = bidirectional
        self.rc_equivariant = rc_equivariant
        self.pooling = pooling
        self.max_len = max_len
        self.window_stride = window_stride
        self.window_pooling = window_pooling
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.max_time = max_time
        self.init = init
        self.freeze_encoder = freeze_encoder
        self.encoder_lr_scale = encoder_lr_scale
        self.device = device
        self.n_threads = n_threads
        self.random_state = random_state
        self.verbose = verbose

    # -- fit ------------------------------------------------------------------------------------

    def fit(self, X: Sequence[str], y: Sequence[Any], *, eval_set: tuple[Sequence[str], Sequence[Any]] | None = None,
            run_dir: str | os.PathLike | None = None, resume: bool = False) -> MambaSequenceClassifier:
        """Train on DNA strings ``X`` with labels ``y`` (from scratch, or from ``init``'s encoder).

        ``eval_set=(X_val, y_val)`` replaces the held-out fraction as the validation set (early
        stopping then watches it).

        ``run_dir``: the training engine writes a checkpoint there at every epoch's end (checkpoint/,
        best/, metrics.jsonl; see `seqmamba.training.Trainer`). ``resume=True`` continues an interrupted
        run from it; with the same data, parameters and an integer ``random_state`` the result equals
        an uninterrupted run. Without ``resume`` a run_dir holding a checkpoint is an error
        (FileExistsError), so a second run never mixes with the first.
        """
        self._check_params()
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
        if self.window_pooling not in WINDOW_POOLINGS:
            raise ValueError(f"window_pooling must be one of {WINDOW_POOLINGS}, got {self.window_pooling!r}")
        sequences = check_sequences(X)
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None")
        labels = np.asarray(y)
        if labels.ndim != 1 or len(labels) != len(sequences):
            raise ValueError(f"y must be 1-D with one label per sequence: {len(sequences)} sequences, "
                             f"y of shape {labels.shape}")
        check_labels(labels, "y")  # None, NaN, pd.NA, '': never a class of their own
        try:
            classes, targets = np.unique(labels, return_inverse=True)
        except TypeError:  # labels of several types that do not sort together (1 and 'a')
            kinds = sorted({type(v).__name__ for v in labels})
            raise InputError(f"y mixes label types ({', '.join(kinds)}); give every label one type") from None
        check_classification_targets(labels)  # continuous numbers are a regression target, not classes
        if len(classes) < 2:
            raise InputError(f"y has a single class ({classes[0]!r}): a classifier needs at least two")
        self.classes_ = classes
        seed = self._seed()
        val = None
        if eval_set is not None:
            val_seqs = check_sequences(eval_set[0], "eval_set X")
            val_targets = self._encode_labels(eval_set[1])
            val = (val_seqs, val_targets)
        elif self.early_stopping:
            idx = np.arange(len(sequences))
            train_idx, val_idx = train_test_split(idx, test_size=self.validation_fraction, random_state=seed,
                                                  stratify=targets)
            val = ([sequences[i] for i in val_idx], targets[val_idx])
            sequences, targets = [sequences[i] for i in train_idx], targets[train_idx]

        self.tokenizer_ = DNATokenizer()
        self.head_ = {"kind": "SequenceHeadModel", "n_outputs": len(self.classes_), "pooling": self.pooling,
                      "add_cls": self.pooling == "cls"}
        seed_everything(seed)
        module = self._new_module(len(self.classes_))
        train = self._train_factory(sequences, targets, seed)
        batches = -(-len(sequences) // self.batch_size)
        val_factory = self._val_factory(*val) if val is not None else None
        self._run_trainer(module, _ClassificationTask(), train, val_factory, batches, seed, run_dir, resume)
        self.model_ = module.eval()
        return self

    def _new_module(self, n_classes: int) -> SequenceHeadModel:
        """A fresh head on a new encoder, or on ``init``'s; frozen or slowed as the parameters say."""
        if not self.encoder_lr_scale > 0:
            raise ValueError(f"encoder_lr_scale must be > 0, got {self.encoder_lr_scale!r}")
        if self.init is None:
            module = SequenceHeadModel(self._mamba_config(), n_classes, self.pooling)
        else:
            encoder = pretrained_encoder(self.init)
            module = SequenceHeadModel(encoder.config, n_classes, self.pooling)
            try:
                module.encoder.load_state_dict(encoder.state_dict())
            except RuntimeError as err:
                raise InputError(f"{self.init}: its encoder cannot start a classifier ({err})") from None
        for param in module.encoder.parameters():
            if self.freeze_encoder:
                param.requires_grad_(False)
            elif self.encoder_lr_scale != 1.0:
                param._lr_scale = float(self.encoder_lr_scale)  # read by seqmamba.training.optim.param_groups
        return module

    def _early_stopping_on(self) -> bool:
        return True  # with a validation set, keep the best epoch's weights

    def _encode_labels(self, y: Sequence[Any]) -> np.ndarray:
        labels = np.asarray(y)
        check_labels(labels, "eval_set y")
        positions = np.searchsorted(self.classes_, labels)
        positions = np.clip(positions, 0, len(self.classes_) - 1)
        unknown = self.classes_[positions] != labels
        if unknown.any():
            raise InputError(f"label {labels[unknown][0]!r} was not seen in training (classes: "
                             f"{self.classes_.tolist()})")
        return positions

    def _train_factory(self, sequences: list[str], targets: np.ndarray, seed: int) -> Callable:
        lengths = [len(s) for s in sequences]
        add_cls = self.head_["add_cls"]

        def batches(epoch: int, ctx: Any):
            rng = np.random.default_rng([seed, epoch])
            windows = sample_training_windows(lengths, self.max_len, rng)
            order = length_bucketed_order(windows, self.batch_size, rng)
            order = order[ctx.rank::ctx.world_size]
            for batch in iter_batches(sequences, windows, self.tokenizer_, self.batch_size, add_cls, order=order):
                rows = [w.row for w in batch.windows]
                yield {**batch.as_dict(), "labels": torch.as_tensor(targets[rows], dtype=torch.long)}

        return batches

    def _val_factory(self, sequences: list[str], targets: np.ndarray) -> Callable:
        # Validation sees a fixed window per sequence (the first), so its loss is comparable across epochs.
        lengths = [len(s) for s in sequences]
        windows = [WindowRef(i, 0, min(n, self.max_len)) for i, n in enumerate(lengths)]
        add_cls = self.head_["add_cls"]

        def batches(epoch: int, ctx: Any):
            mine = windows[ctx.rank::ctx.world_size]
            for batch in iter_batches(sequences, mine, self.tokenizer_, self.batch_size, add_cls):
                rows = [w.row for w in batch.windows]
                yield {**batch.as_dict(), "labels": torch.as_tensor(targets[rows], dtype=torch.long)}

        return batches

    # -- predict --------------------------------------------------------------------------------

    def window_logits(self, X: Sequence[str], names: Sequence[str] | None = None,
                      progress: Callable[[int], None] | None = None) -> tuple[np.ndarray, list[WindowRef]]:
        """Logits of every window ``(n_windows, n_classes)`` and the windows (row of X, start, end)."""
        check_is_fitted(self, "model_")
        sequences = check_sequences(X)
        return self._window_outputs(sequences, lambda m, b: m(b["input_ids"], b["attention_mask"]), names, progress)

    def pool_windows(self, logits: np.ndarray, windows: list[WindowRef], n: int) -> np.ndarray:
        rows = np.array([w.row for w in windows])
        out = np.empty((n, logits.shape[1]), dtype=np.float32)
        if self.window_pooling == "max":
            out.fill(-np.inf)
            np.maximum.at(out, rows, logits)
        else:
            out.fill(0.0)
            np.add.at(out, rows, logits)
            out /= np.bincount(rows, minlength=n)[:, None]
        return out

    def decision_function(self, X: Sequence[str]) -> np.ndarray:
        """Pooled logits: ``(n,)`` (the positive class's margin) for two classes, else ``(n, n_classes)``."""
        logits = self._sequence_logits(X)
        return logits[:, 1] - logits[:, 0] if logits.shape[1] == 2 else logits

    def _sequence_logits(self, X: Sequence[str]) -> np.ndarray:
        check_is_fitted(self, "model_")  # NotFittedError before any look at X, as scikit-learn expects
        sequences = check_sequences(X)
        logits, windows = self.window_logits(sequences)
        return self.pool_windows(logits, windows, len(sequences))

    def predict_proba(self, X: Sequence[str]) -> np.ndarray:
        """Class probabilities ``(n, n_classes)``, columns in the order of ``classes_``."""
        return softmax(self._sequence_logits(X), axis=1)

    def predict_log_proba(self, X: Sequence[str]) -> np.ndarray:
        return np.log(np.clip(self.predict_proba(X), 1e-12, None))

    def predict(self, X: Sequence[str]) -> np.ndarray:
        """The most probable class of every sequence, ``(n,)``."""
        logits = self._sequence_logits(X)
        return self.classes_[logits.argmax(1)]

    # -- checkpoint directory --------------------------------------------------------------------

    def _estimator_record(self) -> dict[str, Any]:
        record = super()._estimator_record()
        record["classes"] = self.classes_.tolist()
        return record

    def _restore(self, directory: Path, record: dict[str, Any]) -> None:
        checked = model_dir.Record(directory / ESTIMATOR_NAME, record)
        classes = checked.get("classes", list[str | int | float | bool])
        n_outputs = record["head"]["n_outputs"]
        if len(classes) != n_outputs or len({repr(c) for c in classes}) != len(classes):
            raise checked.error("classes", f"expected {n_outputs} distinct labels (head.n_outputs), got "
                                           f"{model_dir.shown(classes)}")
        super()._restore(directory, record)
        self.classes_ = np.asarray(classes)

    def __sklearn_tags__(self):  # scikit-learn >= 1.6
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        return tags
