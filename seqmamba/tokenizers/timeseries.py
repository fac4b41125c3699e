"""Time-series tokenizer: z-scoring with training statistics, instance normalisation, patching.

Shapes: a series is ``(T, C)``; a batch of windows ``(batch, L, C)``; tokens are patches of
``patch_len`` rows taken every ``stride`` rows, ``n_patches = (L - patch_len) // stride + 1``
(one more with ``pad_end=True``, which repeats the last row ``stride`` times as PatchTST does).
"""

from __future__ import annotations

import os
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_array, check_is_fitted

from ..errors import InputError
from ..json_state import read_json, write_json
from .instance_norm import InstanceStats, instance_denormalize, instance_normalize

ChannelMode = Literal["independent", "mixing"]
ArrayLike = np.ndarray | torch.Tensor


class TimeSeriesTokenizer(TransformerMixin, BaseEstimator):
    """Scales series and cuts windows into patch tokens for a Mamba encoder.

    Args:
        patch_len: rows per token (1: one token per time step).
        stride: rows between token starts (``patch_len``: non-overlapping patches).
        channel_mode: ``"independent"`` (each variable its own sequence of tokens, weights shared
            across variables: ``(batch * C, n_patches, patch_len)``) or ``"mixing"`` (one
            sequence whose tokens hold every variable: ``(batch, n_patches, C * patch_len)``).
        instance_norm: :meth:`encode` normalises each window (RevIN) and :meth:`decode` undoes it.
        pad_end: repeat the last row ``stride`` times before patching (PatchTST), one more token.
        min_std: a training std below it counts as a constant variable, scaled by 1 (centred only),
            so nothing is divided by zero.
        eps: added to the variance in instance normalisation.

    Fitted attributes: ``mean_``, ``scale_`` (``(C,)`` float64), ``n_features_in_`` and, when
    fitted on a named series, ``feature_names_in_``.

    Example:
        >>> tok = TimeSeriesTokenizer(patch_len=4, stride=4).fit(np.random.rand(100, 3))
        >>> x = torch.as_tensor(tok.transform(np.random.rand(2, 16, 3)), dtype=torch.float32)  # (2, 16, 3)
        >>> tokens, stats = tok.encode(x)
        >>> tokens.shape  # (batch * C, n_patches, patch_len)
        torch.Size([6, 4, 4])
        >>> torch.allclose(tok.unpatch(tokens, n_channels=3), x)
        True
    """

    def __init__(self, patch_len: int = 16, stride: int = 8, channel_mode: ChannelMode = "independent",
                 instance_norm: bool = False, pad_end: bool = False, min_std: float = 1e-8,
                 eps: float = 1e-5) -> None:
        self.patch_len = patch_len
        self.stride = stride
        self.channel_mode = channel_mode
        self.instance_norm = instance_norm
        self.pad_end = pad_end
        self.min_std = min_std
        self.eps = eps

    # -- z-scoring --------------------------------------------------------------------------------

    def fit(self, X: Any, y: Any = None) -> TimeSeriesTokenizer:
        """Learn each variable's mean and std (population std, as scikit-learn's StandardScaler)
        from the training span ``X``: ``(T, C)`` array or tensor, or a TimeSeries."""
        self._check_params()
        names = None if isinstance(X, (np.ndarray, torch.Tensor)) else getattr(X, "columns", None)
        values = _as_2d(X if isinstance(X, (np.ndarray, torch.Tensor)) else getattr(X, "values", X), "fit")
        if not np.isfinite(values).all():
            raise InputError("fit: the training span holds NaN or inf; read it with missing='interpolate'")
        std = values.std(axis=0, dtype=np.float64)
        self.mean_ = values.mean(axis=0, dtype=np.float64)  # (C,)
        self.scale_ = np.where(std < self.min_std, 1.0, std)  # (C,)
        self.n_features_in_ = values.shape[1]
        if names is not None:
            self.feature_names_in_ = np.asarray([str(n) for n in names], dtype=object)
        return self

    def transform(self, X: ArrayLike) -> ArrayLike:
        """``(x - mean_) / scale_`` along the last axis: ``(..., C)`` in, same shape and kind out."""
        return self._affine(X, inverse=False)

    def inverse_transform(self, X: ArrayLike) -> ArrayLike:
        """Back to the original units: ``(..., C)``, e.g. a forecast ``(batch, H, C)``."""
        return self._affine(X, inverse=True)

    def _affine(self, X: ArrayLike, inverse: bool) -> ArrayLike:
        check_is_fitted(self, ("mean_", "scale_"))
        if not isinstance(X, (np.ndarray, torch.Tensor)):
            X = np.asarray(getattr(X, "values", X))  # a frame, a TimeSeries, a list, any array-like
        if X.ndim == 0 or X.shape[-1] != self.n_features_in_:
            n = X.shape[-1] if X.ndim else 0
            raise ValueError(f"X has {n} features, but {type(self).__name__} is expecting {self.n_features_in_} "
                             "features as input (the variables are X's last axis)")
        if isinstance(X, torch.Tensor):
            mean = torch.as_tensor(self.mean_, dtype=X.dtype, device=X.device)
            scale = torch.as_tensor(self.scale_, dtype=X.dtype, device=X.device)
        else:
            X = np.asarray(X)
            dtype = X.dtype if np.issubdtype(X.dtype, np.floating) else np.float64
            X = X.astype(dtype, copy=False)
            mean, scale = self.mean_.astype(dtype), self.scale_.astype(dtype)
        return X * scale + mean if inverse else (X - mean) / scale

    # -- instance normalisation and patches ----------------------------------------------------

    def n_patches(self, length: int) -> int:
        """Tokens per variable for a window of ``length`` rows."""
        self._check_params()
        if length < self.patch_len:
            raise ValueError(f"a window of {length} rows is shorter than patch_len={self.patch_len}")
        return (length - self.patch_len) // self.stride + 1 + int(self.pad_end)

    def patch(self, x: ArrayLike) -> torch.Tensor:
        """Windows ``(batch, L, C)`` to tokens: ``(batch * C, n_patches, patch_len)`` (independent;
        row ``b * C + c`` is variable c of window b) or ``(batch, n_patches, C * patch_len)``
        (mixing; a token holds variable 0's patch, then variable 1's...)."""
        x = _as_windows(x)
        n_patches = self.n_patches(x.shape[1])
        batch, _, channels = x.shape
        if self.pad_end:
            x = torch.cat([x, x[:, -1:].expand(batch, self.stride, channels)], dim=1)  # (batch, L + S, C)
        patches = x.unfold(1, self.patch_len, self.stride)  # (batch, n_patches, C, patch_len)
        if self.channel_mode == "mixing":
            return patches.reshape(batch, n_patches, channels * self.patch_len)
        return patches.permute(0, 2, 1, 3).reshape(batch * channels, n_patches, self.patch_len)

    def unpatch(self, tokens: torch.Tensor, n_channels: int, length: int | None = None) -> torch.Tensor:
        """Tokens back to windows ``(batch, L', C)``, averaging rows that overlapping patches share.

        ``L' = (n_patches - 1) * stride + patch_len`` rows are covered; pass ``length`` to cut the
        result (e.g. the window length before ``pad_end``). Needs ``stride <= patch_len``: with gaps
        between patches some rows are in no token.
        """
        self._check_params()
        if self.stride > self.patch_len:
            raise ValueError(f"cannot unpatch with stride {self.stride} > patch_len {self.patch_len}: rows are missing")
        if self.channel_mode == "mixing":
            batch, n_patches, width = tokens.shape  # (batch, n_patches, C * patch_len)
            if width != n_channels * self.patch_len:
                raise ValueError(f"tokens of width {width} are not {n_channels} x patch_len {self.patch_len}")
            per_channel = tokens.reshape(batch, n_patches, n_channels, self.patch_len).permute(0, 2, 1, 3)
        else:
            rows, n_patches, width = tokens.shape  # (batch * C, n_patches, patch_len)
            if width != self.patch_len or rows % n_channels:
                raise ValueError(f"tokens of shape {tuple(tokens.shape)} are not (batch * {n_channels}, "
                                 f"n_patches, {self.patch_len})")
            per_channel = tokens.reshape(rows // n_channels, n_channels, n_patches, self.patch_len)
        batch = per_channel.shape[0]
        covered = (n_patches - 1) * self.stride + self.patch_len
        columns = per_channel.reshape(batch * n_channels, n_patches, self.patch_len).transpose(1, 2)
        fold = dict(output_size=(1, covered), kernel_size=(1, self.patch_len), stride=(1, self.stride))
        summed = F.fold(columns, **fold)  # (batch * C, 1, 1, covered)
        counts = F.fold(torch.ones_like(columns[:1]), **fold)  # (1, 1, 1, covered): patches per row
        series = (summed / counts).reshape(batch, n_channels, covered).transpose(1, 2)  # (batch, L', C)
        return series if length is None else series[:, :length]

    def encode(self, x: ArrayLike) -> tuple[torch.Tensor, InstanceStats | None]:
        """Scaled windows ``(batch, L, C)`` -> (tokens as :meth:`patch` gives them, instance stats or
        None). Keep the stats for :meth:`decode`."""
        x = _as_windows(x)
        stats = None
        if self.instance_norm:
            x, stats = instance_normalize(x, self.eps)
        return self.patch(x), stats

    def decode(self, y: torch.Tensor, stats: InstanceStats | None = None, n_channels: int | None = None
               ) -> torch.Tensor:
        """A forecasting head's output back to ``(batch, H, C)``, instance normalisation undone.

        ``y``: ``(batch * C, H)`` from a channel-independent head (give ``n_channels``), or
        ``(batch, H, C)``. The result is still z-scored: :meth:`inverse_transform` gives units.
        """
        if y.ndim == 2:
            if n_channels is None:
                raise ValueError("decode of (batch * C, H) needs n_channels")
            rows, horizon = y.shape
            if rows % n_channels:
                raise ValueError(f"{rows} rows are not a multiple of n_channels={n_channels}")
            y = y.reshape(rows // n_channels, n_channels, horizon).transpose(1, 2)  # (batch, H, C)
        elif y.ndim != 3:
            raise ValueError(f"decode takes (batch * C, H) or (batch, H, C), got shape {tuple(y.shape)}")
        return instance_denormalize(y, stats) if stats is not None else y

    # -- state ---------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable parameters and, once fitted, statistics (as stored in checkpoints)."""
        state: dict[str, Any] = {"type": "TimeSeriesTokenizer", "format": 1, "params": self.get_params()}
        if hasattr(self, "mean_"):
            state["fitted"] = {"mean_": self.mean_.tolist(), "scale_": self.scale_.tolist()}
            if hasattr(self, "feature_names_in_"):
                state["fitted"]["feature_names_in_"] = [str(n) for n in self.feature_names_in_]
        return state

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> TimeSeriesTokenizer:
        if state.get("type") != "TimeSeriesTokenizer":
            raise InputError(f"not a TimeSeriesTokenizer state: type={state.get('type')!r}")
        tok = cls(**state.get("params", {}))
        fitted = state.get("fitted")
        if fitted:
            tok.mean_ = np.asarray(fitted["mean_"], dtype=np.float64)
            tok.scale_ = np.asarray(fitted["scale_"], dtype=np.float64)
            if tok.mean_.shape != tok.scale_.shape or tok.mean_.ndim != 1:
                raise InputError("TimeSeriesTokenizer state: mean_ and scale_ must be lists of one length")
            tok.n_features_in_ = len(tok.mean_)
            if "feature_names_in_" in fitted:
                tok.feature_names_in_ = np.asarray(fitted["feature_names_in_"], dtype=object)
        return tok

    def save(self, path: str | os.PathLike) -> None:
        """Write :meth:`to_dict` as JSON, atomically (a half-written file never replaces a good one)."""
        write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike) -> TimeSeriesTokenizer:
        return cls.from_dict(read_json(path))

    def _check_params(self) -> None:
        for name in ("patch_len", "stride"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.channel_mode not in ("independent", "mixing"):
            raise ValueError(f"channel_mode must be 'independent' or 'mixing', not {self.channel_mode!r}")


def _as_2d(values: Any, where: str) -> np.ndarray:
    """A real-valued ``(T, C)`` array with at least one row and one column (scikit-learn's `check_array`:
    its ValueError or TypeError for 1-D, complex, sparse, text or empty input; NaN is left to the caller)."""
    array = values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else values
    return check_array(array, dtype="numeric", ensure_all_finite=False, input_name=where)


def _as_windows(x: ArrayLike) -> torch.Tensor:
    x = torch.as_tensor(x)
    if x.ndim != 3:
        raise ValueError(f"need windows (batch, L, C), got shape {tuple(x.shape)}")
    return x
