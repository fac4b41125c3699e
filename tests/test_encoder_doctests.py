"""The examples in the encoders' docstrings run and print what they claim."""

import doctest
import importlib

import pytest

MODULES = [
    "seqmamba.config",
    "seqmamba.dna",
    "seqmamba.encoder",
    "seqmamba.inference",
    "seqmamba.modules.bimamba",
    "seqmamba.modules.block",
    "seqmamba.modules.norm",
    "seqmamba.modules.ssm",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
