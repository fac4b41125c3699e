"""benchmarks/cold_start.py and benchmarks/specializations.py run on a CPU; the dry run counts what Triton would
compile for the GPU, so a change that multiplies the scan's or the conv's specializations shows here."""

import subprocess
import sys

import pytest
from paths import REPO

sys.path.insert(0, str(REPO / "benchmarks"))

specializations = pytest.importorskip("specializations", reason="needs triton")


def test_cold_start_smoke_run_writes_every_phase(tmp_path):
    out = tmp_path / "cold.md"
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "cold_start.py"), "--smoke", "--out", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    text = out.read_text()
    for phase in ("first fit", "new length", "RC-equivariant", "predict_proba", "init="):
        assert phase in text
    assert "| seqmamba's warnings |" in text


def test_a_phase_row_carries_the_warnings_seqmamba_logged_in_it():
    """A failed CUDA graph capture (the Trainer then runs eagerly) shows in its phase's row, first line only."""
    import logging

    import cold_start

    from seqmamba.inference import CaptureSchedule

    handler = cold_start.Warnings()
    logging.getLogger("seqmamba").addHandler(handler)
    try:
        CaptureSchedule(most=1, capture_after=1).failed(RuntimeError("operation failed\nmore"), "the training step")
        logging.getLogger("seqmamba.training").info("not a warning")
    finally:
        logging.getLogger("seqmamba").removeHandler(handler)
    assert handler.messages == ["CUDA graph capture of the training step failed (operation failed"]


def test_specialization_follows_tritons_rules():
    kernel = specializations.scan_triton._scan_fwd_kernel
    base = specializations.specialization(kernel, (3, 32, 1), {"BLOCK": 8})
    assert specializations.specialization(kernel, (5, 48, 1), {"BLOCK": 8}) == base  # same classes
    assert specializations.specialization(kernel, (5, 48, 2), {"BLOCK": 8}) != base  # == 1 is its own class
    assert specializations.specialization(kernel, (5, 40, 1), {"BLOCK": 8}) != base  # 40 % 16 != 0
    assert specializations.specialization(kernel, (3, 32, 1), {"BLOCK": 16}) != base  # a constexpr


def test_gue_like_workload_compiles_few_variants():
    """Training and prediction at four lengths and five batch sizes: a bounded set of compiled kernels (what a
    fresh GPU compiles before those steps run), not one per shape."""
    seen = specializations.workload([70, 100, 200, 300], [64, 40, 37, 12, 5], d_inner=64, d_state=16)
    assert {"scan_fwd_kernel", "scan_bwd_kernel", "_conv1d_fwd_kernel", "_conv1d_grad_kernel"} <= seen.keys()
    total = sum(map(len, seen.values()))
    assert total <= 24, {name: len(keys) for name, keys in seen.items()}
