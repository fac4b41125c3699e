"""Tokenizers: DNA (single nucleotides) and, later, time series."""

from .dna import DNATokenizer

__all__ = ["DNATokenizer"]
