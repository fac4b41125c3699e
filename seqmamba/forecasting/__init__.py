"""Multivariate time-series forecasting: `MambaForecaster` (scikit-learn style) and its networks."""

from .estimator import MambaForecaster
from .model import ForecastConfig, PatchMamba, PatchStream, VariateMamba, build_model

__all__ = ["ForecastConfig", "MambaForecaster", "PatchMamba", "PatchStream", "VariateMamba", "build_model"]
