"""The variate network's linear path fitted in closed form, before any gradient step.

The skip of :class:`~seqmamba.forecasting.model.VariateMamba` is one ``(L -> H)`` map shared by all
variables, applied to the windows *after* RevIN. Its best value on the training windows is a ridge
regression, solved exactly here from sums of products accumulated over chunks of windows:

    minimise  sum_i w_i ||W x_i + b - y_i||^2  +  alpha * (sum_i w_i) * ||W||^2

over every (window, variable) sample i, x_i the normalised lookback ``(L,)``, y_i the future
normalised with the *same* window statistics ``(H,)``. With ``weighted=True`` each sample weighs
``w_i = std_i^2``, its RevIN scale: the training loss is the MSE after de-normalising, which is
exactly this weighted sum, so the closed form minimises the network's own loss over the linear path
(unweighted, every window counts alike whatever its spread). ``alpha`` is per unit of weight, so it
does not change with the number of windows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from ..modules.revin import RevIN

if TYPE_CHECKING:
    from ..datasets.ts_panel import PanelWindows
    from ..datasets.ts_windows import SlidingWindows


@dataclass
class RidgeFit:
    """A fitted linear path: ``weight`` ``(H, L)``, ``bias`` ``(H,)``, and how many samples
    ((window, variable) pairs) it was fitted on."""

    weight: np.ndarray
    bias: np.ndarray
    n_samples: int


def normalised_pairs(x: torch.Tensor, y: torch.Tensor, revin: RevIN | None
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Windows x ``(b, L, C)``, y ``(b, H, C)`` -> samples as the skip sees them.

    Returns x ``(b * C, L)``, y ``(b * C, H)`` normalised with x's statistics, and the weights
    ``(b * C,)`` (the squared RevIN scale; ones without RevIN).
    """
    if revin is not None:
        x, stats = revin(x)
        y = (y - stats.mean) / stats.std  # the target in the units the skip predicts
        weight = stats.std.square().reshape(-1)  # (b * C,): (b, 1, C) flattened in (b, C) order
    else:
        weight = torch.ones(x.shape[0] * x.shape[2], dtype=x.dtype, device=x.device)
    xs = x.transpose(1, 2).reshape(-1, x.shape[1])  # (b * C, L)
    ys = y.transpose(1, 2).reshape(-1, y.shape[1])  # (b * C, H)
    return xs, ys, weight


@torch.no_grad()
def fit_linear_path(x: np.ndarray, y: np.ndarray, revin: RevIN | None, alpha: float = 1e-3,
                    weighted: bool = True, chunk: int = 1024) -> RidgeFit:
    """Ridge fit of the shared ``(L -> H)`` map over windows x ``(n, L, C)``, y ``(n, H, C)``.

    ``revin`` is the network's own module (its eps), so the inputs are normalised exactly as the
    network normalises them; None fits on the windows as they are. Sums run in float64 over chunks of
    ``chunk`` windows: memory stays ``O(chunk * C * (L + H))`` whatever the span.

    Example:
        >>> from seqmamba.datasets.timeseries import SlidingWindows
        >>> t = np.arange(400, dtype=np.float32)
        >>> x, y = SlidingWindows(np.stack([np.sin(t / 6), np.cos(t / 9)], axis=1), 24, 6).arrays()
        >>> revin = RevIN(2, affine=False)
        >>> fit = fit_linear_path(x, y, revin)  # sinusoids: a linear recurrence forecasts them
        >>> fit.weight.shape, fit.bias.shape
        ((6, 24), (6,))
        >>> bool(np.mean((linear_forecast(x, fit, revin) - y) ** 2) < 1e-3)
        True
    """
    if alpha < 0:
        raise ValueError(f"alpha must be >= 0, got {alpha}")
    n, lookback, _ = x.shape
    horizon = y.shape[1]
    if n == 0:
        raise ValueError("no training window to fit the linear path on")
    sxx = torch.zeros(lookback, lookback, dtype=torch.float64)
    sxy = torch.zeros(lookback, horizon, dtype=torch.float64)
    sx = torch.zeros(lookback, dtype=torch.float64)
    sy = torch.zeros(horizon, dtype=torch.float64)
    total = 0.0
    for start in range(0, n, chunk):
        xb = torch.from_numpy(np.array(x[start:start + chunk], dtype=np.float32, order="C"))  # (b, L, C): a copy
        yb = torch.from_numpy(np.array(y[start:start + chunk], dtype=np.float32, order="C"))  # (b, H, C)
        xs, ys, w = normalised_pairs(xb, yb, revin)
        xs, ys = xs.double(), ys.double()  # (m, L), (m, H)
        w = w.double() if weighted else torch.ones_like(w, dtype=torch.float64)  # (m,)
        wx = xs * w[:, None]
        sxx += wx.T @ xs
        sxy += wx.T @ ys
        sx += wx.sum(0)
        sy += (ys * w[:, None]).sum(0)
        total += float(w.sum())
    # Scale the weights to mean 1 so alpha means the same with or without weighting.
    count = n * x.shape[2]
    scale = count / total
    sxx, sxy, sx, sy = sxx * scale, sxy * scale, sx * scale, sy * scale
    x_mean, y_mean = sx / count, sy / count
    cxx = sxx - count * torch.outer(x_mean, x_mean)  # (L, L), centred: the bias absorbs the means
    cxy = sxy - count * torch.outer(x_mean, y_mean)  # (L, H)
    gram = cxx + alpha * count * torch.eye(lookback, dtype=torch.float64)
    # lstsq, not solve: RevIN'd windows all sum to 0, so with alpha=0 the gram is singular.
    weight = torch.linalg.lstsq(gram, cxy, driver="gelsd").solution.T  # (H, L)
    bias = y_mean - weight @ x_mean  # (H,)
    return RidgeFit(weight.numpy(), bias.numpy(), count)


def load_into(linear: nn.Linear, fit: RidgeFit) -> None:
    """Copy a fit into the network's skip layer (``Linear(L, H)``)."""
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(fit.weight))
        linear.bias.copy_(torch.from_numpy(fit.bias))


def linear_forecast(x: np.ndarray, fit: RidgeFit, revin: RevIN | None, chunk: int = 2048) -> np.ndarray:
    """The fitted linear path's forecasts ``(n, H, C)`` of windows x ``(n, L, C)``: what the
    network forecasts while its Mamba head is zero."""
    weight = torch.from_numpy(fit.weight).float()  # (H, L)
    bias = torch.from_numpy(fit.bias).float()  # (H,)
    out = []
    with torch.no_grad():
        for start in range(0, len(x), chunk):
            xb = torch.from_numpy(np.array(x[start:start + chunk], dtype=np.float32, order="C"))  # (b, L, C): a copy
            stats = None
            if revin is not None:
                xb, stats = revin(xb)
            y = torch.einsum("hl,blc->bhc", weight, xb) + bias[None, :, None]  # (b, H, C)
            out.append((y * stats.std + stats.mean if stats is not None else y).numpy())
    return np.concatenate(out) if out else np.zeros((0, fit.weight.shape[0], x.shape[2]), np.float32)


def target_windows(windows: SlidingWindows | PanelWindows) -> tuple[np.ndarray, np.ndarray]:
    """The targets' lookback ``(n, L, C)`` and horizon ``(n, H, C)`` of every window: what the skip reads and
    predicts (windows with covariates carry more columns, and more rows, that the skip never sees)."""
    if hasattr(windows, "target_arrays"):
        return windows.target_arrays()
    return windows.arrays()  # views


def fit_skip(train: SlidingWindows | PanelWindows, revin: RevIN | None, skip_input: str, alpha: float) -> RidgeFit:
    """The closed-form skip for one input mode.

    ``"normalized"``: on RevIN'd windows, weighted by the RevIN scale (the network's loss exactly);
    ``"raw"``: on the windows as given, unweighted (plain least squares: the same loss, since the
    skip's output is not rescaled). Without RevIN the two coincide.
    """
    x, y = target_windows(train)  # (n, L, C), (n, H, C)
    if skip_input == "normalized" and revin is not None:
        return fit_linear_path(x, y, revin, alpha=alpha, weighted=True)
    return fit_linear_path(x, y, None, alpha=alpha, weighted=False)


def validation_mse(fit: RidgeFit, val: SlidingWindows | PanelWindows, revin: RevIN | None, skip_input: str) -> float:
    """MSE of the linear path alone over every validation window (the metric early stopping watches)."""
    x, y = target_windows(val)
    forecast = linear_forecast(x, fit, revin if skip_input == "normalized" else None)
    return float(np.mean(np.square(forecast.astype(np.float64) - y)))
