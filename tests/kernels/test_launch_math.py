"""The launch plans' integer helpers agree with Triton's own (which recent Triton makes slow to call)."""

from __future__ import annotations

import pytest

from seqmamba.kernels._launch_math import cdiv, next_power_of_2

triton = pytest.importorskip("triton")


def test_cdiv_and_next_power_of_2_match_triton():
    for n in range(1, 300):
        assert next_power_of_2(n) == triton.next_power_of_2(n), n
        for d in (1, 2, 3, 7, 8, 64, 1024):
            assert cdiv(n, d) == triton.cdiv(n, d), (n, d)
    assert cdiv(0, 8) == 0 and next_power_of_2(0) == 1
