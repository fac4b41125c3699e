"""Reference forecasters to measure the Mamba models against, and the protocol's metrics."""

from .evaluate import evaluate_windows, window_errors
from .linear import DLinear, moving_average_matrix

__all__ = ["DLinear", "evaluate_windows", "moving_average_matrix", "window_errors"]
