"""DLinear (Zeng et al., AAAI 2023): trend + seasonal decomposition, one linear map per component.

The window x ``(L,)`` of one variable splits into a trend (moving average, ends padded by
repeating the edge values) and the seasonal rest; the forecast is ``W_s·seasonal + W_t·trend + b``,
shared across variables. Two ways to fit it on a CPU in seconds:

- ``method="lstsq"`` (default): ridge-regularised least squares in closed form over every
  training window of every variable. Both components are linear in x, so the pair is fitted
  jointly from the (L x L) and (L x H) sums of products of the raw windows; the ridge term makes
  the split between W_s and W_t unique (the minimum-norm one, for small ``alpha``).
- ``method="adam"``: the published recipe: Adam on MSE, batches of windows, learning rate halved
  every epoch, early stopping on the validation span when one is given.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted
from torch import nn


def moving_average_matrix(length: int, kernel_size: int) -> np.ndarray:
    """M ``(L, L)`` with ``trend = M @ x``: DLinear's moving average with replicate padding."""
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be a positive odd integer, got {kernel_size}")
    half = (kernel_size - 1) // 2
    matrix = np.zeros((length, length))
    for t in range(length):
        # Positions beyond the ends read the edge value: that is what replicate padding does.
        np.add.at(matrix[t], np.clip(np.arange(t - half, t + half + 1), 0, length - 1), 1.0 / kernel_size)
    return matrix


class DLinear(BaseEstimator):
    """Decomposition-linear forecaster, channel-independent with weights shared across variables.

    Args:
        lookback, horizon: L input rows, H forecast rows.
        kernel_size: moving-average width of the trend (odd; 25 as published).
        method: ``"lstsq"`` (closed-form ridge) or ``"adam"``.
        alpha: ridge penalty per training sample (lstsq).
        epochs, lr, batch_size, patience: Adam's schedule (batch_size counts windows, each with
            all its variables), as published: 10 epochs, lr 0.005 halved every epoch, batches of 32.
        random_state: seed of the Adam shuffles and initialisation.

    Fitted attributes: ``seasonal_weight_``, ``trend_weight_`` ``(H, L)``, ``bias_`` ``(H,)``,
    ``n_features_in_``.

    Example:
        >>> t = np.arange(2000, dtype=np.float32)
        >>> series = np.stack([np.sin(t / 8), np.cos(t / 13)], axis=1)  # (T, C)
        >>> model = DLinear(lookback=64, horizon=16).fit(series)
        >>> forecast = model.predict(series[None, -64:])  # (1, 16, 2)
        >>> forecast.shape
        (1, 16, 2)
    """

    def __init__(self, lookback: int = 96, horizon: int = 96, kernel_size: int = 25,
                 method: Literal["lstsq", "adam"] = "lstsq", alpha: float = 1e-4, epochs: int = 10,
                 lr: float = 0.005, batch_size: int = 32, patience: int = 3, random_state: int = 0) -> None:
        self.lookback = lookback
        self.horizon = horizon
        self.kernel_size = kernel_size
        self.method = method
        self.alpha = alpha
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.patience = patience
        self.random_state = random_state

    def fit(self, train: Any, val: Any = None) -> DLinear:
        """Fit on every (lookback, horizon) window of ``train``, ``(T, C)`` scaled values (or a
        SlidingWindows, whose values are taken). ``val`` (same kinds) drives Adam's early stopping."""
        values = _values(train)  # (T, C)
        L, H = self.lookback, self.horizon
        if len(values) < L + H:
            raise ValueError(f"{len(values)} training rows, fewer than lookback + horizon = {L + H}")
        self._M = moving_average_matrix(L, self.kernel_size)  # (L, L)
        self.n_features_in_ = values.shape[1]
        if self.alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {self.alpha}")
        if self.method == "lstsq":
            self._fit_lstsq(values)
        elif self.method == "adam":
            self._fit_adam(values, None if val is None else _values(val))
        else:
            raise ValueError(f"method must be 'lstsq' or 'adam', not {self.method!r}")
        return self

    def predict(self, windows: Any) -> np.ndarray:
        """Forecasts ``(n, H, C)`` float32 of input windows ``(n, L, C)`` (array or tensor)."""
        check_is_fitted(self, ("seasonal_weight_", "trend_weight_", "bias_"))
        if isinstance(windows, torch.Tensor):
            windows = windows.detach().cpu().numpy()
        x = np.asarray(windows, dtype=np.float32)
        if x.ndim != 3 or x.shape[1] != self.lookback:
            raise ValueError(f"need windows (n, {self.lookback}, C), got shape {x.shape}")
        weight = self.effective_weight().astype(np.float32)  # (H, L)
        forecast = np.einsum("hl,nlc->nhc", weight, x)  # (n, H, C)
        return forecast + self.bias_.astype(np.float32)[None, :, None]

    def effective_weight(self) -> np.ndarray:
        """The single (H, L) map the two components add up to: ``W_s (I - M) + W_t M``."""
        check_is_fitted(self, ("seasonal_weight_", "trend_weight_"))
        M = moving_average_matrix(self.lookback, self.kernel_size)
        return self.seasonal_weight_ @ (np.eye(self.lookback) - M) + self.trend_weight_ @ M

    # -- closed form -----------------------------------------------------------------------------

    def _fit_lstsq(self, values: np.ndarray) -> None:
        L, H = self.lookback, self.horizon
        n = len(values) - L - H + 1
        xx = np.zeros((L, L))
        xy = np.zeros((L, H))
        x_sum, y_sum = np.zeros(L), np.zeros(H)
        for column in values.T.astype(np.float64):  # one variable at a time: memory stays (n, H)
            x = sliding_window_view(column[:n + L - 1], L)  # (n, L)
            y = sliding_window_view(column[L:], H)  # (n, H)
            xx += x.T @ x
            xy += x.T @ y
            x_sum += x.sum(axis=0)
            y_sum += y.sum(axis=0)
        count = n * values.shape[1]
        x_mean, y_mean = x_sum / count, y_sum / count
        # Centred sums of products, then the features [seasonal, trend] = P^T x with P (L, 2L).
        cxx = xx - count * np.outer(x_mean, x_mean)  # (L, L)
        cxy = xy - count * np.outer(x_mean, y_mean)  # (L, H)
        P = np.concatenate([np.eye(L) - self._M, self._M], axis=0).T  # (L, 2L)
        gram = P.T @ cxx @ P + self.alpha * count * np.eye(2 * L)  # (2L, 2L)
        # lstsq, not solve: with alpha=0 the gram is singular (rank L) and this gives the minimum norm.
        W = np.linalg.lstsq(gram, P.T @ cxy, rcond=None)[0]  # (2L, H)
        self.seasonal_weight_, self.trend_weight_ = W[:L].T.copy(), W[L:].T.copy()  # (H, L) each
        self.bias_ = y_mean - self.effective_weight() @ x_mean  # (H,)

    # -- Adam ------------------------------------------------------------------------------------

    def _fit_adam(self, values: np.ndarray, val: np.ndarray | None) -> None:
        L, H = self.lookback, self.horizon
        generator = torch.Generator().manual_seed(self.random_state)
        net = _DLinearNet(torch.as_tensor(self._M, dtype=torch.float32), H)
        optimizer = torch.optim.Adam(net.parameters(), lr=self.lr)
        series = torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32))  # (T, C)
        windows = series.unfold(0, L + H, 1).transpose(1, 2)  # (n, L + H, C): a view
        val_windows = None
        if val is not None and len(val) >= L + H:
            val_windows = torch.from_numpy(np.ascontiguousarray(val, dtype=np.float32)).unfold(0, L + H, 1)
            val_windows = val_windows.transpose(1, 2)  # (n_val, L + H, C)
        best, best_state, waited = float("inf"), None, 0
        for epoch in range(self.epochs):
            for group in optimizer.param_groups:
                group["lr"] = self.lr * 0.5 ** epoch  # Time-Series-Library's "type1" schedule
            order = torch.randperm(len(windows), generator=generator)
            net.train()
            for start in range(0, len(order), self.batch_size):
                batch = windows[order[start:start + self.batch_size]]  # (b, L + H, C)
                x, y = _channels_first(batch[:, :L]), _channels_first(batch[:, L:])  # (b*C, L), (b*C, H)
                loss = torch.mean((net(x) - y) ** 2)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            if val_windows is None:
                continue
            with torch.no_grad():
                val_loss = float(torch.mean((net(_channels_first(val_windows[:, :L]))
                                             - _channels_first(val_windows[:, L:])) ** 2))
            if val_loss < best:
                best, waited = val_loss, 0
                best_state = {k: v.clone() for k, v in net.state_dict().items()}
            else:
                waited += 1
                if waited >= self.patience:
                    break
        if best_state is not None:
            net.load_state_dict(best_state)
        self.n_epochs_ = epoch + 1
        self.seasonal_weight_ = net.seasonal.weight.detach().double().numpy().copy()  # (H, L)
        self.trend_weight_ = net.trend.weight.detach().double().numpy().copy()  # (H, L)
        self.bias_ = (net.seasonal.bias + net.trend.bias).detach().double().numpy().copy()  # (H,)


class _DLinearNet(nn.Module):
    def __init__(self, M: torch.Tensor, horizon: int) -> None:
        super().__init__()
        L = M.shape[0]
        self.register_buffer("M", M)  # (L, L)
        self.seasonal, self.trend = nn.Linear(L, horizon), nn.Linear(L, horizon)
        for layer in (self.seasonal, self.trend):
            nn.init.constant_(layer.weight, 1.0 / L)  # DLinear's initialisation: the window mean

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x (rows, L) -> (rows, H)
        trend = x @ self.M.T
        return self.seasonal(x - trend) + self.trend(trend)


def _channels_first(windows: torch.Tensor) -> torch.Tensor:
    """(b, T, C) -> (b * C, T): every variable of every window is one sample of the shared map."""
    return windows.transpose(1, 2).reshape(-1, windows.shape[1])


def _values(data: Any) -> np.ndarray:
    if isinstance(data, torch.Tensor):
        data = data.detach().cpu().numpy()
    values = np.asarray(data if isinstance(data, np.ndarray) else getattr(data, "values", data), dtype=np.float64)
    if values.ndim != 2:
        raise ValueError(f"need (T, C) values, got shape {values.shape}")
    return values
