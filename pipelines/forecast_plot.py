"""A forecast drawn for a person: per variable, the last rows of history and the forecast after them, the
interval between the lowest and highest quantile shaded when the forecast has quantile columns."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import pandas as pd

from ..datasets.atomic import atomic_path


def interval_columns(forecast: pd.DataFrame, name: str) -> tuple[str, str] | None:
    """The lowest and highest quantile columns of target ``name`` (``<name>_q<level>``), or None.

    Example:
        >>> interval_columns(pd.DataFrame(columns=["OT", "OT_q0.5", "OT_q0.9", "OT_q0.1"]), "OT")
        ('OT_q0.1', 'OT_q0.9')
    """
    levels = {}
    for column in forecast.columns:
        text = str(column)
        if text.startswith(f"{name}_q") and _is_level(text[len(name) + 2:]):
            levels[float(text[len(name) + 2:])] = text
    if len(levels) < 2:
        return None
    return levels[min(levels)], levels[max(levels)]


def _is_level(text: str) -> bool:
    try:
        return 0 < float(text) < 1
    except ValueError:
        return False


def _draw(ax: Any, x_past: Any, past: pd.Series, x_future: Any, forecast: pd.DataFrame, name: str,
          label: str) -> None:
    ax.plot(x_past, past, color="0.3", linewidth=0.9, label="history")
    band = interval_columns(forecast, name)
    if band is not None:
        low, high = band
        ax.fill_between(x_future, forecast[low], forecast[high], color="tab:orange", alpha=0.25, linewidth=0,
                        label=f"{low.rsplit('_q', 1)[1]}-{high.rsplit('_q', 1)[1]} quantiles")
    ax.plot(x_future, forecast[name], color="tab:orange", linewidth=1.2, label="forecast")
    ax.axvline(x_past.iloc[-1] if hasattr(x_past, "iloc") else x_past[-1], color="0.6", linestyle=":",
               linewidth=0.8)
    ax.set_ylabel(label, rotation=0, ha="right", va="center")
    ax.grid(alpha=0.3)


def _save(fig: Any, path: str | os.PathLike) -> None:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    suffix = os.path.splitext(str(path))[1].lstrip(".") or "png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=suffix, dpi=110)
    plt.close(fig)


def plot_forecast(history: pd.DataFrame, forecast: pd.DataFrame, path: str | os.PathLike, n_history: int,
                  title: str = "", max_variables: int = 12, variables: Sequence[str] | None = None) -> None:
    """One panel per variable (the first ``max_variables`` of ``variables``, by default every column but the
    ``date`` and quantile columns): ``n_history`` rows of ``history`` and then ``forecast``, on a time axis
    when both have a ``date`` column, the quantile interval shaded. Written atomically to ``path``."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    if variables is None:
        names = [str(c) for c in forecast.columns if c != "date"]
        variables = [c for c in names if not any(c.startswith(f"{n}_q") and _is_level(c[len(n) + 2:]) for n in names)]
    variables = list(variables)[:max_variables]
    past = history.iloc[-n_history:]
    x_past = past["date"] if "date" in past else past.index
    x_future = forecast["date"] if "date" in forecast else forecast.index
    fig, axes = plt.subplots(len(variables), 1, figsize=(10, 1.8 * len(variables) + 0.6), sharex=True, squeeze=False)
    for ax, name in zip(axes[:, 0], variables):
        _draw(ax, x_past, past[name], x_future, forecast, name, name)
    axes[0, 0].legend(loc="upper left", fontsize="small", ncol=3)
    if title:
        axes[0, 0].set_title(title, fontsize="medium")
    _save(fig, path)


def plot_panel_forecast(history: pd.DataFrame, forecast: pd.DataFrame, path: str | os.PathLike, n_history: int,
                        id_col: str, time_col: str | None, targets: Sequence[str], title: str = "",
                        max_panels: int = 12) -> None:
    """Many series (long frames): one panel per series and target (the first ``max_panels``), each series'
    last ``n_history`` rows and its forecast, the quantile interval shaded. Written atomically to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    time_col = time_col if time_col in history and time_col in forecast else None
    pairs = [(sid, t) for sid in pd.unique(forecast[id_col]) for t in targets][:max_panels]
    fig, axes = plt.subplots(len(pairs), 1, figsize=(10, 1.8 * len(pairs) + 0.6), squeeze=False)
    for ax, (series_id, name) in zip(axes[:, 0], pairs):
        past = history[history[id_col] == series_id].iloc[-n_history:]
        ahead = forecast[forecast[id_col] == series_id]
        x_past = past[time_col] if time_col else pd.Series(range(len(past)))
        x_future = ahead[time_col] if time_col else range(len(past), len(past) + len(ahead))
        _draw(ax, x_past, past[name], x_future, ahead, name, f"{series_id}\n{name}")
    axes[0, 0].legend(loc="upper left", fontsize="small", ncol=3)
    if title:
        axes[0, 0].set_title(title, fontsize="medium")
    _save(fig, path)
