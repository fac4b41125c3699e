"""The examples in the forecasting modules' docstrings run and print what they claim."""

import doctest
import importlib

import pytest

MODULES = ["seqmamba.forecasting.model", "seqmamba.forecasting.estimator", "seqmamba.forecasting.linear_init",
           "seqmamba.forecasting.quantiles", "seqmamba.forecasting.columns", "seqmamba.forecasting.panel"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0
