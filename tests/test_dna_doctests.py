"""The examples in the DNA classification modules' docstrings run and print what they claim."""

import doctest
import importlib

import pytest

MODULES = [
    "seqmamba.estimators._dna_data",
    "seqmamba.estimators._heads",
    "seqmamba.estimators.classifier",
    "seqmamba.estimators.embedder",
    "seqmamba.baselines.kmer",
    "seqmamba.datasets.synthetic",
    "seqmamba.datasets.labelled",
    "seqmamba.datasets.fai_check",
    "seqmamba.model_dir",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
