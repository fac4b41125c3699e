"""benchmarks/step_host_bound.py needs a CUDA GPU; without one it stops with one line (the timings need the GPU)."""

import importlib.util
import sys

import pytest
import torch
from paths import REPO

SCRIPT = REPO / "benchmarks" / "step_host_bound.py"


@pytest.mark.skipif(torch.cuda.is_available(),
                    reason="with a CUDA GPU the script measures instead of stopping; this checks its no-GPU message")
def test_without_a_gpu_it_stops_with_one_line():
    sys.path.insert(0, str(SCRIPT.parent))  # it imports its neighbour benchmarks/scan_short.py
    try:
        spec = importlib.util.spec_from_file_location("step_host_bound", SCRIPT)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(SCRIPT.parent))
    with pytest.raises(SystemExit) as stop:
        module.main()
    assert "needs a CUDA GPU" in str(stop.value) and "\n" not in str(stop.value)
