"""A forecast drawn for a person: per variable, the last rows of history and the forecast after them."""

from __future__ import annotations

import os

import pandas as pd

from ..datasets.atomic import atomic_path


def plot_forecast(history: pd.DataFrame, forecast: pd.DataFrame, path: str | os.PathLike, n_history: int,
                  title: str = "", max_variables: int = 12) -> None:
    """One panel per variable (the first ``max_variables``): ``n_history`` rows of ``history`` and then
    ``forecast``, on a time axis when both have a ``date`` column. Written atomically to ``path``."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    variables = [c for c in forecast.columns if c != "date"][:max_variables]
    past = history.iloc[-n_history:]
    x_past = past["date"] if "date" in past else past.index
    x_future = forecast["date"] if "date" in forecast else forecast.index
    fig, axes = plt.subplots(len(variables), 1, figsize=(10, 1.8 * len(variables) + 0.6), sharex=True, squeeze=False)
    for ax, name in zip(axes[:, 0], variables):
        ax.plot(x_past, past[name], color="0.3", linewidth=0.9, label="history")
        ax.plot(x_future, forecast[name], color="tab:orange", linewidth=1.2, label="forecast")
        ax.axvline(x_past.iloc[-1] if hasattr(x_past, "iloc") else x_past[-1], color="0.6", linestyle=":",
                   linewidth=0.8)
        ax.set_ylabel(name, rotation=0, ha="right", va="center")
        ax.grid(alpha=0.3)
    axes[0, 0].legend(loc="upper left", fontsize="small", ncol=2)
    if title:
        axes[0, 0].set_title(title, fontsize="medium")
    fig.tight_layout()
    suffix = os.path.splitext(str(path))[1].lstrip(".") or "png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=suffix, dpi=110)
    plt.close(fig)
