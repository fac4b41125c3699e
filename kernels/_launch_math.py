"""Integer helpers for the host-side launch plans.

Recent Triton makes `triton.cdiv` and `triton.next_power_of_2` constexpr functions, whose calls from
Python go through the JIT's dispatch: about 5 us each on this CPU, 13 of them per scan call. Plain
Python does the same sum in well under a microsecond.
"""

from __future__ import annotations


def cdiv(a: int, b: int) -> int:
    """ceil(a / b) for non-negative a and positive b."""
    return -(-a // b)


def next_power_of_2(n: int) -> int:
    """The smallest power of two >= n (1 for n <= 1)."""
    return 1 if n <= 1 else 1 << (n - 1).bit_length()
