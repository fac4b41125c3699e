"""The examples in the training engine's docstrings run and print what they claim."""

import doctest
import importlib

import pytest

MODULES = [
    "seqmamba.training.callbacks",
    "seqmamba.training.data",
    "seqmamba.training.device",
    "seqmamba.training.distributed",
    "seqmamba.training.metrics",
    "seqmamba.training.optim",
    "seqmamba.training.progress",
    "seqmamba.training.selftest",
    "seqmamba.training.task",
    "seqmamba.training.trainer",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
