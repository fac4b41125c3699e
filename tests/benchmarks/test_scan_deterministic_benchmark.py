"""benchmarks/scan.py --deterministic runs end to end (a tiny shape on the CPU under the Triton interpreter; the
timings themselves need a GPU): the bidirectional call (the scan's shares its code), both dtypes, the repeat check."""

import argparse
import importlib.util
import sys

import pytest
import torch
from paths import REPO

pytest.importorskip("triton")
BENCHMARKS = REPO / "benchmarks"


def load():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        spec = importlib.util.spec_from_file_location("scan_benchmark", BENCHMARKS / "scan.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCHMARKS))
    return module


def test_determinism_table_on_a_tiny_shape(monkeypatch):
    from seqmamba.kernels.scan import triton_usable

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not triton_usable(device):
        pytest.skip("needs triton (CUDA, or TRITON_INTERPRET=1)")
    module = load()
    monkeypatch.setattr(module, "timed", lambda fn, device: (fn(), 1.0)[1])  # one call, not a timing
    table = module.determinism_table(argparse.Namespace(calls=["bidirectional"]), device, {"tiny": (1, 2, 16)})
    rows = [line for line in table.splitlines() if line.startswith("| tiny")]
    assert len(rows) == 2  # bf16 and fp32
    assert all(row.split("|")[11].strip() == "same bits" for row in rows)  # the deterministic repeat
