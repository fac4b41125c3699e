"""seqmamba: Mamba (selective state-space) encoders for long DNA and multivariate time series.

Layers, each importable on its own:

- ``seqmamba.kernels``: the selective-scan core (reference, chunked torch and Triton backends);
- ``seqmamba.datasets``: readers for FASTA, labelled sequences and time-series frames;
- ``seqmamba`` itself: tokenizers, encoders and scikit-learn estimators;
- ``seqmamba.pipelines``: the ``seqmamba`` command line.
"""

from pathlib import Path as _Path

from ._version import __version__

# kernels/, datasets/ and pipelines/ install as subpackages of seqmamba (pyproject's package-dir).
# Imported straight from a source checkout (e.g. `python -c` at the repository root shadows the
# installed package), they sit beside this folder instead: let the import system find them there too.
_checkout = _Path(__file__).resolve().parent.parent
if (_checkout / "pyproject.toml").is_file() and (_checkout / "kernels" / "__init__.py").is_file():
    __path__.append(str(_checkout))  # type: ignore[name-defined]

__all__ = [
    "DNAEncoder", "DNATokenizer", "MambaBlock", "MambaConfig", "MambaEmbedder", "MambaEncoder",
    "MambaForecaster", "MambaSequenceClassifier", "TimeSeriesTokenizer", "__version__", "load_caduceus",
    "save_caduceus",
]

# Imported on first use, so `import seqmamba` (the CLI's start-up) does not import torch.
_LAZY = {
    "MambaConfig": ".config",
    "MambaEncoder": ".encoder",
    "MambaBlock": ".modules.block",
    "DNAEncoder": ".dna",
    "DNATokenizer": ".tokenizers.dna",
    "TimeSeriesTokenizer": ".tokenizers.timeseries",
    "MambaForecaster": ".forecasting.estimator",
    "MambaSequenceClassifier": ".estimators", "MambaEmbedder": ".estimators",
    "load_caduceus": ".estimators.caduceus_mlm", "save_caduceus": ".estimators.caduceus_mlm",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
