"""Tokenizers: DNA (single nucleotides) and time series (scaling, instance normalisation, patches)."""

from .dna import DNATokenizer

__all__ = ["DNATokenizer", "TimeSeriesTokenizer"]


def __getattr__(name: str):
    # Lazy: the time-series tokenizer imports torch and scikit-learn, DNA users need neither.
    if name == "TimeSeriesTokenizer":
        from .timeseries import TimeSeriesTokenizer

        return TimeSeriesTokenizer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
