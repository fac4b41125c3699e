"""benchmarks/short_inference.py needs a CUDA GPU (it times CUDA graphs); without one it stops with one line."""

import subprocess
import sys

import pytest
import torch
from paths import REPO


@pytest.mark.skipif(torch.cuda.is_available(), reason="with a CUDA GPU the script measures instead of stopping")
def test_without_a_gpu_it_stops_with_one_line(tmp_path):
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "short_inference.py")], capture_output=True,
                          text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == "short_inference.py: needs a CUDA GPU (CUDA graphs)"
