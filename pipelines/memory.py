"""Giving freed memory back to the operating system between chunks of a long run."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os

# oneDNN (torch's CPU convolutions) caches a compiled kernel per input shape, 1,024 by default, each with
# its buffers. Inference batches take the width of their longest window, so a long run meets hundreds of
# widths and the cache grows for its whole length (+80 MB over 30,000 records of 200-1,000 bp). Without the
# cache the run time stays within this 2-core machine's run-to-run noise (setting a convolution up is cheap
# next to running it over a batch), and peak RSS stays flat.
KERNEL_CACHE = "0"


@functools.cache
def _malloc_trim():
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to call
        return None


def bound_kernel_caches() -> None:
    """Cap oneDNN's kernel cache (unless ONEDNN_PRIMITIVE_CACHE_CAPACITY is set); call before the first
    convolution runs, since oneDNN reads the setting then."""
    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", KERNEL_CACHE)


def release_freed_memory() -> None:
    """glibc's ``malloc_trim(0)``: return the heap's free pages to the system (no-op elsewhere).

    glibc serves torch's large, short-lived buffers from the heap once its adaptive mmap threshold has
    grown, and keeps the freed pages: without this, a long `classify` or `embed` grows its RSS chunk after
    chunk (by ~100-200 MB over 30,000 records) although it holds no more than one chunk.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
