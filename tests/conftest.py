"""Test set-up: on a machine without CUDA, Triton kernels run in its CPU interpreter."""

import os

import torch

if not torch.cuda.is_available():
    # Must be set before any @triton.jit function is defined, i.e. before the kernels are imported.
    os.environ.setdefault("TRITON_INTERPRET", "1")

torch.set_num_threads(min(2, torch.get_num_threads()))

SHARED_DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
