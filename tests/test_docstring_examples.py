"""Every docstring example in seqmamba runs and prints what it claims (the examples of every module of the four
folders, found on disk: a new module's examples are checked without being listed anywhere)."""

from __future__ import annotations

import doctest
import importlib

import pytest
from test_import_layers import REPO, modules

MODULES = sorted(name for name in modules(REPO) if not name.rpartition(".")[2].startswith("__"))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_the_examples_are_found():
    found = sum(len(t.examples) for name in MODULES
                for t in doctest.DocTestFinder().find(importlib.import_module(name)))
    assert found > 100  # the walk reaches the modules (not an empty parametrization)
