"""`MambaEmbedder`: DNA sequences -> fixed-size embeddings, a scikit-learn transformer."""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import TransformerMixin, clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from ..errors import InputError
from ..objectives import MaskedNucleotideTask
from ..tokenizers.dna import DNATokenizer
from ..training.config import seed_everything
from ._base import DNAEstimatorBase, read_estimator_record
from ._dna_data import WindowRef, check_sequences, iter_batches, length_bucketed_order, sample_training_windows
from ._heads import POOLINGS, CausalLMModel, MaskedLMModel
from .classifier import MambaSequenceClassifier

try:  # scikit-learn >= 1.6
    from sklearn.frozen import FrozenEstimator
except ImportError:  # pragma: no cover - older scikit-learn
    FrozenEstimator = None


class MambaEmbedder(TransformerMixin, DNAEstimatorBase):
    """Fixed-size embeddings ``(n, d_model)`` of DNA sequences of any length.

    Three ways to get a model:

    - ``MambaEmbedder(...).fit(X)``: train an encoder self-supervised (masked-nucleotide modelling);
    - ``MambaEmbedder(model=fitted_classifier)`` or ``MambaEmbedder.from_classifier(clf)``: reuse a trained
      `MambaSequenceClassifier`'s encoder (``fit`` then trains nothing);
    - ``MambaEmbedder(model=MambaSequenceClassifier(...))`` with an unfitted classifier: ``fit(X, y)``
      trains a copy of it on the labels, then embeds with it (supervised embeddings inside a Pipeline).

    Long sequences are windowed as in the classifier; window embeddings are averaged (weighted by
    their length) into one row per sequence. `embed_windows` gives one row per window instead.

    Args:
        model: None, a `MambaSequenceClassifier` (fitted or not), a fitted one wrapped in scikit-learn's
            ``FrozenEstimator`` (which ``clone`` keeps fitted: grid searches, pipelines), a model directory path,
            or a Caduceus checkpoint (its directory or hub id, see `seqmamba.load_caduceus`).
        pooling: positions -> embedding: ``"mean"``, ``"max"`` or ``"cls"`` (position 0: the [CLS]
            token of a model trained with one, else the first base, which a bidirectional encoder
            conditions on the whole window).
        d_model, n_layers, d_state, bidirectional, rc_equivariant, max_len, window_stride, max_epochs,
            batch_size, lr, weight_decay, device, n_threads, random_state, verbose: as in
            `MambaSequenceClassifier` (the size ones only matter when ``fit`` trains).
        mask_fraction: share of bases hidden in masked-nucleotide training.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> X = ["".join(rng.choice(list("ACGT"), 60)) for _ in range(8)]
        >>> emb = MambaEmbedder(d_model=8, n_layers=1, d_state=4, max_epochs=1, device="cpu", random_state=0)
        >>> emb.fit_transform(X).shape
        (8, 8)
        >>> emb.get_feature_names_out()[:3].tolist()
        ['emb_0', 'emb_1', 'emb_2']
    """

    def __init__(
        self,
        model: Any = None,
        pooling: str = "mean",
        d_model: int = 64,
        n_layers: int = 2,
        d_state: int = 16,
        bidirectional: bool = True,
        rc_equivariant: bool = False,
        max_len: int = 1024,
        window_stride: int | None = None,
        max_epochs: int = 5,
        batch_size: int = 32,
        lr: float = 1e-3,
        weight_decay: float = 0.01,
        mask_fraction: float = 0.15,
        device: str = "auto",
        n_threads: int | None = None,
        random_state: int | np.random.RandomState | None = None,
        verbose: int = 0,
    ) -> None:
        self.model = model
        self.pooling = pooling
        self.d_model = d_model
        self.n_layers = n_layers
        self.d_state = d_state
        self.bidirectional = bidirectional
        self.rc_equivariant = rc_equivariant
        self.max_len = max_len
        self.window_stride = window_stride
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.mask_fraction = mask_fraction
        self.device = device
        self.n_threads = n_threads
        self.random_state = random_state
        self.verbose = verbose

    @classmethod
    def from_classifier(cls, classifier: MambaSequenceClassifier, pooling: str = "mean",
                        **params: Any) -> MambaEmbedder:
        """A fitted embedder on a fitted classifier's encoder (its windows, batch size, device and threads)."""
        check_is_fitted(classifier, "model_")
        for name in ("max_len", "window_stride", "batch_size", "device", "n_threads"):
            params.setdefault(name, getattr(classifier, name))
        return cls(model=classifier, pooling=pooling, **params).fit()

    @classmethod
    def from_module(cls, module: MaskedLMModel | CausalLMModel, pooling: str = "mean",
                    **params: Any) -> MambaEmbedder:
        """A fitted embedder around a trained language model (`MaskedLMModel` or `CausalLMModel`), e.g. one
        that `seqmamba.pretraining.pretrain` trained. Its encoder's size, direction and strand handling set
        ``d_model``, ``n_layers``, ``d_state``, ``bidirectional`` and ``rc_equivariant``; ``params`` sets
        the rest (``max_len``, ``batch_size``, ...). `save` then writes the usual model directory.

        Example:
            >>> from seqmamba.config import MambaConfig
            >>> cfg = MambaConfig(d_model=8, n_layers=1, d_state=4, bidirectional=True, vocab_size=10)
            >>> emb = MambaEmbedder.from_module(MaskedLMModel(cfg), max_len=64, device="cpu")
            >>> emb.transform(["ACGT" * 20]).shape
            (1, 8)
        """
        if not isinstance(module, (MaskedLMModel, CausalLMModel)):
            raise TypeError(f"module must be a MaskedLMModel or a CausalLMModel, got {type(module).__name__}")
        config = module.config
        params.update(d_model=config.d_model, n_layers=config.n_layers, d_state=config.d_state,
                      bidirectional=config.bidirectional, rc_equivariant=config.rc_equivariant)
        embedder = cls(pooling=pooling, **params)
        embedder.model_ = module.eval()
        embedder.tokenizer_ = DNATokenizer()
        embedder.head_ = {"kind": type(module).__name__, "n_outputs": DNATokenizer.vocab_size, "pooling": pooling,
                          "add_cls": False}
        embedder.d_model_ = config.d_model
        return embedder

    # -- fit ------------------------------------------------------------------------------------

    def fit(self, X: Sequence[str] | None = None, y: Sequence[Any] | None = None) -> MambaEmbedder:
        """Train (self-supervised, or the given classifier on ``y``), or adopt a trained model."""
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
        source = self.model
        if FrozenEstimator is not None and isinstance(source, FrozenEstimator):  # fitted, and kept so by clone()
            source = source.estimator
        if isinstance(source, (str, os.PathLike)):
            source = load_model_dir(source, device=self.device)
        if isinstance(source, MambaEmbedder):
            check_is_fitted(source, "model_")
            self._adopt(source)
            return self
        if isinstance(source, MambaSequenceClassifier):
            try:
                check_is_fitted(source, "model_")
            except NotFittedError:
                if X is None or y is None:
                    raise ValueError("MambaEmbedder: model is an unfitted classifier; fit(X, y) trains it "
                                     "(scikit-learn's clone(), as in GridSearchCV, unfits a fitted one: pass "
                                     "FrozenEstimator(clf) from sklearn.frozen, or its model directory)") from None
                source = clone(source).fit(X, y)
            self._adopt(source)
            return self
        if source is not None:
            raise TypeError(f"model must be None, a MambaSequenceClassifier, a MambaEmbedder (either may be in a "
                            f"FrozenEstimator) or a model directory, "
                            f"got {type(source).__name__}")
        if X is None:
            raise ValueError("MambaEmbedder.fit: X is needed to train an encoder (or pass model=...)")
        self._fit_masked(check_sequences(X))
        return self

    def _adopt(self, source: DNAEstimatorBase) -> None:
        # A shallow copy of the module is enough: inference never changes weights.
        self.model_ = copy.copy(source.model_)
        self.tokenizer_ = source.tokenizer_
        self.head_ = dict(source.head_)
        self.d_model_ = source.model_.config.d_model

    def _fit_masked(self, sequences: list[str]) -> None:
        self._check_params()
        if not 0 < self.mask_fraction < 1:
            raise ValueError(f"mask_fraction must be in (0, 1), got {self.mask_fraction!r}")
        seed = self._seed()
        self.tokenizer_ = DNATokenizer()
        self.head_ = {"kind": "MaskedLMModel", "n_outputs": DNATokenizer.vocab_size, "pooling": self.pooling,
                      "add_cls": self.pooling == "cls"}
        seed_everything(seed)
        module = MaskedLMModel(self._mamba_config(), self.pooling)
        lengths = [len(s) for s in sequences]

        def batches(epoch: int, ctx: Any):
            rng = np.random.default_rng([seed, epoch])
            windows = sample_training_windows(lengths, self.max_len, rng)
            order = length_bucketed_order(windows, self.batch_size, rng)[ctx.rank::ctx.world_size]
            for batch in iter_batches(sequences, windows, self.tokenizer_, self.batch_size,
                                      self.head_["add_cls"], order=order):
                yield batch.as_dict()

        n_batches = -(-len(sequences) // self.batch_size)
        self._run_trainer(module, MaskedNucleotideTask(self.mask_fraction), batches, None, n_batches, seed)
        self.model_ = module.eval()
        self.d_model_ = module.config.d_model

    # -- transform ------------------------------------------------------------------------------

    def embed_windows(self, X: Sequence[str], names: Sequence[str] | None = None,
                      progress: Callable[[int], None] | None = None) -> tuple[np.ndarray, list[WindowRef]]:
        """One embedding per window ``(n_windows, d_model)`` and the windows (row of X, start, end)."""
        check_is_fitted(self, "model_")
        sequences = check_sequences(X)
        pooling = self.pooling
        return self._window_outputs(sequences, lambda m, b: m.embed(b["input_ids"], b["attention_mask"], pooling),
                                    names, progress)

    def transform(self, X: Sequence[str]) -> np.ndarray:
        """Embeddings ``(n, d_model)``: window embeddings averaged, weighted by window length."""
        check_is_fitted(self, "model_")  # NotFittedError before any look at X, as scikit-learn expects
        sequences = check_sequences(X)
        emb, windows = self.embed_windows(sequences)
        return pool_window_embeddings(emb, windows, len(sequences))

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """``emb_0 .. emb_{d_model-1}``."""
        check_is_fitted(self, "model_")
        return np.asarray([f"emb_{i}" for i in range(self.d_model_)], dtype=object)

    # -- checkpoint directory --------------------------------------------------------------------

    def _estimator_record(self) -> dict[str, Any]:
        record = super()._estimator_record()
        record["params"].pop("model", None)  # the weights are the model now
        return record

    def _restore(self, directory: Path, record: dict[str, Any]) -> None:
        super()._restore(directory, record)
        self.d_model_ = self.model_.config.d_model

    def __sklearn_tags__(self):  # scikit-learn >= 1.6
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        tags.requires_fit = True
        return tags


def pool_window_embeddings(emb: np.ndarray, windows: Sequence[WindowRef], n: int) -> np.ndarray:
    """Window embeddings ``(n_windows, d)`` -> ``(n, d)``, each sequence's windows length-weighted."""
    rows = np.array([w.row for w in windows])
    weights = np.array([w.end - w.start for w in windows], dtype=np.float64)
    out = np.zeros((n, emb.shape[1]), dtype=np.float64)
    np.add.at(out, rows, emb * weights[:, None])
    out /= np.bincount(rows, weights=weights, minlength=n)[:, None]
    return out.astype(np.float32)


def load_model_dir(directory: str | os.PathLike, device: str | None = None
                   ) -> MambaSequenceClassifier | MambaEmbedder:
    """The estimator a model directory holds (classifier or embedder), fitted.

    A Caduceus checkpoint (a directory whose config.json says ``model_type: caduceus``, or a hub id such as
    ``kuleshov-group/caduceus-ph_seqlen-131k_d_model-256_n_layer-16``) gives an embedder on its encoder.
    """
    from ..caduceus import is_caduceus_source

    if not (Path(directory) / "estimator.json").is_file() and is_caduceus_source(directory):
        from .caduceus_mlm import load_caduceus

        model, _ = load_caduceus(directory)  # its tokenizer is DNATokenizer's default, as from_module's
        return MambaEmbedder.from_module(model, **({} if device is None else {"device": device}))
    record = read_estimator_record(directory)
    kind = record.get("estimator")
    if kind == "MambaSequenceClassifier":
        return MambaSequenceClassifier.load(directory, device=device)
    if kind == "MambaEmbedder":
        return MambaEmbedder.load(directory, device=device)
    raise InputError(f"{directory}: unknown estimator {kind!r}")
