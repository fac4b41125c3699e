"""Forecasting networks: windows ``(batch, L, C)`` in, direct multi-horizon forecasts ``(batch, H, C)`` out.

Two architectures, both with instance normalisation (RevIN) around the network:

- ``"variate"`` (default; S-Mamba, Wang et al. 2024, arXiv:2403.11144): each variable's whole
  lookback is one token (``Linear(L, d_model)``); a bidirectional Mamba mixes the C variate
  tokens; ``Linear(d_model, H)`` reads each token's forecast, added to a linear ``(L -> H)`` map of
  the same variable (``linear_skip``, DLinear's model, shared across variables) that reads the
  RevIN-normalised window (``skip_input="normalized"``) or the window as given (``"raw"``). C tokens
  per window make an epoch cheap, and the encoder sees correlations between variables. It is not
  causal over time: a new row changes every token. Covariates are more tokens: a past-observed covariate's
  lookback (``Linear(L, d_model)``, shared with the targets), a future-known covariate's lookback and horizon
  (``Linear(L + H, d_model)``); only the targets' tokens are read out. With ``quantiles``, a second head
  gives each target's quantiles as offsets from the point forecast, in units of the window's spread.
- ``"patch"``: each variable on its own (weights shared), its lookback cut into patches of
  ``patch_len`` rows; a causal Mamba runs over the patch tokens and the last token's state gives
  the H steps. Causal over time, so a stream can be continued token by token (:class:`PatchStream`).
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..config import MambaConfig
from ..encoder import MambaEncoder
from ..inference import InferenceCache
from ..modules.revin import RevIN
from ..tokenizers.instance_norm import InstanceStats
from ..tokenizers.timeseries import TimeSeriesTokenizer

ARCHITECTURES = ("variate", "patch")
SKIP_INPUTS = ("normalized", "raw")


@dataclass
class ForecastConfig:
    """Every hyperparameter of a forecasting network, as JSON-able data.

    ``n_variables`` are the targets (the variables forecast); ``n_past`` past-observed and ``n_future``
    future-known covariates are inputs only (``"variate"`` networks); ``quantiles`` (levels in (0, 1),
    increasing) adds a quantile head (``"variate"`` networks). A window's columns are the targets, then the
    past covariates, then the future covariates; with future covariates it holds ``L + H`` rows.

    Example:
        >>> cfg = ForecastConfig(lookback=96, horizon=24, n_variables=7)
        >>> ForecastConfig.from_dict(cfg.to_dict()) == cfg
        True
        >>> ForecastConfig(lookback=96, horizon=24, n_variables=1, n_future=4, quantiles=[0.1, 0.5, 0.9]).n_inputs
        5
    """

    lookback: int
    horizon: int
    n_variables: int
    architecture: str = "variate"
    d_model: int = 128
    n_layers: int = 2
    d_state: int = 16
    patch_len: int = 16
    dropout: float = 0.1
    revin: bool = True
    linear_skip: bool = True
    skip_input: str = "normalized"
    n_past: int = 0
    n_future: int = 0
    quantiles: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {self.architecture!r}")
        for name in ("lookback", "horizon", "n_variables", "d_model", "n_layers", "d_state", "patch_len"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.architecture == "patch" and self.patch_len > self.lookback:
            raise ValueError(f"patch_len {self.patch_len} is longer than the lookback {self.lookback}")
        if self.skip_input not in SKIP_INPUTS:
            raise ValueError(f"skip_input must be one of {SKIP_INPUTS}, got {self.skip_input!r}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        for name in ("n_past", "n_future"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
        self.quantiles = check_quantiles(self.quantiles)
        if self.architecture != "variate" and (self.n_past or self.n_future or self.quantiles):
            raise ValueError("covariates and quantiles need architecture='variate' (the patch network forecasts "
                             "each variable from its own past)")

    @property
    def n_inputs(self) -> int:
        """Columns of a window: targets, past covariates, future covariates."""
        return self.n_variables + self.n_past + self.n_future

    @property
    def window_rows(self) -> int:
        """Rows of a window: the lookback, and the horizon too when future covariates are known over it."""
        return self.lookback + (self.horizon if self.n_future else 0)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ForecastConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"ForecastConfig: unknown keys {unknown}")
        return cls(**data)


def check_quantiles(levels: Any) -> list[float]:
    """Quantile levels as a list of floats, strictly increasing, each in (0, 1); ValueError otherwise.

    Example:
        >>> check_quantiles((0.1, 0.5, 0.9))
        [0.1, 0.5, 0.9]
    """
    if levels is None:
        return []
    if isinstance(levels, (str, bytes)) or not hasattr(levels, "__iter__"):
        raise ValueError(f"quantiles must be a list of levels in (0, 1), got {levels!r}")
    out = []
    for level in levels:
        if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0 < float(level) < 1:
            raise ValueError(f"quantile levels must lie strictly between 0 and 1, got {level!r}")
        out.append(float(level))
    if any(b <= a for a, b in itertools.pairwise(out)):
        raise ValueError(f"quantile levels must be strictly increasing, got {out}")
    return out


def build_model(config: ForecastConfig) -> nn.Module:
    """The network a config describes."""
    return VariateMamba(config) if config.architecture == "variate" else PatchMamba(config)


class VariateMamba(nn.Module):
    """S-Mamba style: one token per variable, a bidirectional Mamba across variables.

    Example:
        >>> net = VariateMamba(ForecastConfig(lookback=32, horizon=8, n_variables=3, d_model=16, d_state=4))
        >>> net(torch.randn(2, 32, 3)).shape  # (batch, H, C)
        torch.Size([2, 8, 3])
        >>> cfg = ForecastConfig(lookback=32, horizon=8, n_variables=2, n_past=1, n_future=1, d_model=16,
        ...                      d_state=4, quantiles=[0.1, 0.5, 0.9])
        >>> point, q = VariateMamba(cfg)(torch.randn(2, 40, 4), quantiles=True)  # (batch, L + H, C + P + F)
        >>> point.shape, q.shape, bool((q.diff(dim=-1) >= 0).all())  # (batch, H, C), (batch, H, C, Q)
        (torch.Size([2, 8, 2]), torch.Size([2, 8, 2, 3]), True)
    """

    def __init__(self, config: ForecastConfig) -> None:
        super().__init__()
        self.config = config
        self.revin = RevIN(config.n_variables, affine=False) if config.revin else None
        self.embed = nn.Linear(config.lookback, config.d_model)
        self.dropout = nn.Dropout(config.dropout)
        # The variables have no order: a bidirectional scan lets every token see all the others.
        self.encoder = MambaEncoder(MambaConfig(d_model=config.d_model, n_layers=config.n_layers,
                                                d_state=config.d_state, bidirectional=True))
        self.head = nn.Linear(config.d_model, config.horizon)
        # DLinear's whole model is one (L -> H) map per variable; keeping it beside the Mamba path means
        # the network starts from a strong linear forecast and learns the non-linear rest.
        self.skip = nn.Linear(config.lookback, config.horizon) if config.linear_skip else None
        # Created last, and only when used: a network without them draws the same weights as before.
        self.revin_past = RevIN(config.n_past, affine=False) if config.revin and config.n_past else None
        self.embed_future = nn.Linear(config.lookback + config.horizon, config.d_model) if config.n_future else None
        n_q = len(config.quantiles)
        self.qhead = nn.Linear(config.d_model, config.horizon * n_q) if n_q else None

    def forward(self, x: torch.Tensor, quantiles: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """x (batch, L, C) -> forecast (batch, H, C).

        With covariates x is ``(batch, L, C + P)`` or, with future covariates, ``(batch, L + H, C + P + F)``
        (see :class:`ForecastConfig`); targets and past covariates are read over the lookback only.
        ``quantiles=True`` (a network with ``quantiles``) returns ``(point, quantiles)``, the quantiles
        ``(batch, H, C, Q)``: the point forecast plus the quantile head's offsets times the window's spread,
        sorted along Q (never crossing).

        ``skip_input="normalized"``: ``denorm(head(encoder) + skip(norm(x)))``.
        ``skip_input="raw"``: ``skip(x) + std * head(encoder)``: the linear path reads the window's
        own level (it can pull a forecast back towards the series' long-run mean, which a
        normalised input cannot see); the Mamba path still works on the normalised tokens and its
        output is scaled back by the window's spread only.
        """
        cfg = self.config
        L, C, P = cfg.lookback, cfg.n_variables, cfg.n_past
        raw = x if x.shape[1:] == (L, C) else x[:, :L, :C]  # (batch, L, C): the targets' lookback
        stats = None
        target = raw
        if self.revin is not None:
            target, stats = self.revin(raw)
        series = target.transpose(1, 2)  # (batch, C, L)
        inputs = series
        if P:
            past = x[:, :L, C:C + P]  # (batch, L, P)
            if self.revin_past is not None:
                past, _ = self.revin_past(past)
            inputs = torch.cat([series, past.transpose(1, 2)], dim=1)  # (batch, C + P, L)
        tokens = self.embed(inputs)  # (batch, C + P, d_model)
        if self.embed_future is not None:
            future = x[:, :L + cfg.horizon, C + P:].transpose(1, 2)  # (batch, F, L + H)
            tokens = torch.cat([tokens, self.embed_future(future)], dim=1)  # (batch, C + P + F, d_model)
        hidden = self.encoder(self.dropout(tokens))
        if tokens.shape[1] != C:
            hidden = hidden[:, :C]  # (batch, C, d_model): only the targets are read out
        y = self.head(hidden)  # (batch, C, H)
        if self.skip is not None and cfg.skip_input == "raw":
            residual = y.transpose(1, 2)  # (batch, H, C)
            if stats is not None:
                residual = residual * stats.std
            point = self.skip(raw.transpose(1, 2)).transpose(1, 2) + residual
        else:
            if self.skip is not None:
                y = y + self.skip(series)
            y = y.transpose(1, 2)  # (batch, H, C)
            point = self.revin.denormalize(y, stats) if stats is not None else y
        if not quantiles:
            return point
        if self.qhead is None:
            raise ValueError("this network has no quantile head (ForecastConfig.quantiles is empty)")
        batch, n_q = x.shape[0], len(cfg.quantiles)
        offsets = self.qhead(hidden).reshape(batch, C, cfg.horizon, n_q).permute(0, 2, 1, 3)  # (batch, H, C, Q)
        if stats is not None:
            offsets = offsets * stats.std[..., None]  # (batch, 1, C, 1): the window's spread
        return point, torch.sort(point[..., None] + offsets, dim=-1).values

    @torch.no_grad()
    def start_quantiles(self, offsets: torch.Tensor) -> None:
        """Set the quantile head to constant ``offsets`` ``(H, Q)`` (in units of the window's spread, the same
        for every window and target): its weight to zero, its bias to the offsets."""
        if self.qhead is None:
            raise ValueError("start_quantiles: the network has no quantile head")
        nn.init.zeros_(self.qhead.weight)
        self.qhead.bias.copy_(offsets.reshape(-1).to(self.qhead.bias))

    @torch.no_grad()
    def start_from_linear(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        """Set the skip to ``weight`` (H, L), ``bias`` (H,) and zero the Mamba head's output layer.

        The network then computes exactly the linear forecast. The first gradient step moves the head
        and the skip only (no gradient flows back through a zero head), the next ones the encoder too.
        """
        if self.skip is None:
            raise ValueError("start_from_linear: the network has no linear skip (linear_skip=False)")
        self.skip.weight.copy_(weight)
        self.skip.bias.copy_(bias)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    @staticmethod
    def blended_state(start: dict[str, torch.Tensor], trained: dict[str, torch.Tensor], weight: float
                      ) -> dict[str, torch.Tensor]:
        """Weights whose forecast is ``(1 - weight) * start's + weight * trained's``, exactly.

        ``start`` must be a linear start (head zero; see :meth:`start_from_linear`). For fixed encoder
        weights the forecast is affine in the skip's and the head's weights, and the start's forecast does
        not depend on its encoder, so mixing the skips, scaling the head by ``weight`` and keeping the
        trained encoder mixes the two forecasts. A quantile head is mixed as the skip (the start's has zero
        weights: its offsets do not depend on the encoder either), so the quantiles mix too (before sorting).
        """
        mixed = {}
        for name, value in trained.items():
            if name.startswith(("skip.", "qhead.")):
                # The start is copied before training moves the network (to a GPU, say): mix on trained's device.
                mixed[name] = (1 - weight) * start[name].to(value.device) + weight * value
            elif name.startswith("head."):
                mixed[name] = weight * value
            else:
                mixed[name] = value
        return mixed


class PatchMamba(nn.Module):
    """Channel-independent patch tokens through a causal Mamba; the last token's state forecasts.

    The window is patched from its end: the first ``L % patch_len`` rows are dropped, so the last
    token always ends at the last row and a stream adds one token per ``patch_len`` new rows.

    Example:
        >>> cfg = ForecastConfig(lookback=32, horizon=8, n_variables=3, architecture="patch",
        ...                      d_model=16, d_state=4, patch_len=8)
        >>> PatchMamba(cfg)(torch.randn(2, 32, 3)).shape  # (batch, H, C)
        torch.Size([2, 8, 3])
    """

    def __init__(self, config: ForecastConfig) -> None:
        super().__init__()
        self.config = config
        self.revin = RevIN(config.n_variables, affine=False) if config.revin else None
        # Non-overlapping patches, each variable its own token sequence: the tokenizer owns how rows become tokens.
        self.patcher = TimeSeriesTokenizer(patch_len=config.patch_len, stride=config.patch_len)
        self.embed = nn.Linear(config.patch_len, config.d_model)
        self.dropout = nn.Dropout(config.dropout)
        self.encoder = MambaEncoder(MambaConfig(d_model=config.d_model, n_layers=config.n_layers,
                                                d_state=config.d_state, bidirectional=False))
        self.head = nn.Linear(config.d_model, config.horizon)

    def normalize(self, x: torch.Tensor) -> tuple[torch.Tensor, InstanceStats | None]:
        return self.revin(x) if self.revin is not None else (x, None)

    def denormalize(self, y: torch.Tensor, stats: InstanceStats | None) -> torch.Tensor:
        return self.revin.denormalize(y, stats) if stats is not None else y

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised rows (batch, T, C) -> embedded patches (batch * C, T // patch_len, d_model)."""
        x = x[:, x.shape[1] % self.config.patch_len:]  # (batch, n * patch_len, C): patches end at the last row
        return self.embed(self.patcher.patch(x))  # the tokenizer's patches (batch * C, n, patch_len), embedded

    def forecast(self, last: torch.Tensor, batch: int) -> torch.Tensor:
        """Last token outputs (batch * C, d_model) -> normalised forecast (batch, H, C)."""
        return self.head(last).reshape(batch, -1, self.config.horizon).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (batch, L, C) -> forecast (batch, H, C)."""
        x, stats = self.normalize(x)
        hidden = self.encoder(self.dropout(self.tokens(x)))  # (batch * C, n, d_model)
        return self.denormalize(self.forecast(hidden[:, -1], x.shape[0]), stats)


class PatchStream:
    """Recurrent forecasting with a :class:`PatchMamba`: start from a window, then feed new rows.

    The encoder's conv and SSM states carry everything seen since :meth:`start`; each
    ``patch_len`` new rows are one :meth:`MambaEncoder.step`. The instance statistics stay those of
    the starting window, so a forecast after ``k * patch_len`` new rows equals the network run over
    the starting window's tokens followed by the new ones, normalised alike (the tests check it).
    Rows that do not yet fill a patch wait in a buffer.

    Example:
        >>> cfg = ForecastConfig(lookback=16, horizon=4, n_variables=2, architecture="patch",
        ...                      d_model=8, d_state=4, patch_len=4)
        >>> stream = PatchStream(PatchMamba(cfg).eval(), torch.randn(1, 16, 2))
        >>> stream.update(torch.randn(1, 6, 2)); stream.pending.shape[1], stream.forecast().shape
        (2, torch.Size([1, 4, 2]))
    """

    def __init__(self, net: PatchMamba, window: torch.Tensor) -> None:
        self.net = net
        self.start(window)

    @torch.no_grad()
    def start(self, window: torch.Tensor) -> None:
        """Encode ``window`` (batch, L, C) and keep the states."""
        net = self.net
        x, self.stats = net.normalize(window)
        tokens = net.tokens(x)  # (batch * C, n, d_model)
        self.cache: InferenceCache = net.encoder.allocate_inference_cache(tokens.shape[0], dtype=tokens.dtype)
        self.last = net.encoder.forward_chunked(tokens, chunk_len=tokens.shape[1], cache=self.cache)[:, -1]
        self.batch = window.shape[0]
        self.pending = x[:, :0]  # (batch, 0, C)

    @torch.no_grad()
    def update(self, rows: torch.Tensor) -> None:
        """New rows (batch, k, C) in the series' scaled units; steps once per completed patch."""
        net, p = self.net, self.net.config.patch_len
        if self.stats is not None:
            rows = (rows - self.stats.mean) / self.stats.std
        self.pending = torch.cat([self.pending, rows], dim=1)
        while self.pending.shape[1] >= p:
            token = net.tokens(self.pending[:, :p])[:, 0]  # (batch * C, d_model)
            self.last = net.encoder.step(token, self.cache)
            self.pending = self.pending[:, p:]

    @torch.no_grad()
    def forecast(self) -> torch.Tensor:
        """(batch, H, C) after the last completed patch, in the series' scaled units."""
        return self.net.denormalize(self.net.forecast(self.last, self.batch), self.stats)

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """Everything needed to resume the stream, as tensors (safetensors-friendly)."""
        out = {"last": self.last, "pending": self.pending, "offset": torch.tensor(self.cache.seqlen_offset)}
        if self.stats is not None:
            out["stats_mean"], out["stats_std"] = self.stats.mean, self.stats.std
        for i, (conv, ssm) in enumerate(zip(self.cache.conv_states, self.cache.ssm_states)):
            out[f"conv{i}"], out[f"ssm{i}"] = conv, ssm
        return out

    @classmethod
    def from_tensors(cls, net: PatchMamba, tensors: dict[str, torch.Tensor]) -> PatchStream:
        stream = cls.__new__(cls)
        stream.net = net
        stream.last, stream.pending = tensors["last"], tensors["pending"]
        stream.batch = stream.pending.shape[0]
        stream.stats = (InstanceStats(tensors["stats_mean"], tensors["stats_std"])
                        if "stats_mean" in tensors else None)
        n_layers = net.config.n_layers
        stream.cache = InferenceCache([tensors[f"conv{i}"] for i in range(n_layers)],
                                      [tensors[f"ssm{i}"] for i in range(n_layers)], int(tensors["offset"]))
        return stream
