"""The examples in the time-series modules' docstrings run and print what they claim."""

import doctest
import importlib

import pytest

MODULES = [
    "seqmamba.datasets.timeseries",
    "seqmamba.datasets.ts_read",
    "seqmamba.datasets.ts_panel",
    "seqmamba.datasets.ts_splits",
    "seqmamba.datasets.ts_windows",
    "seqmamba.tokenizers.timeseries",
    "seqmamba.modules.revin",
    "seqmamba.baselines.linear",
    "seqmamba.baselines.evaluate",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0
