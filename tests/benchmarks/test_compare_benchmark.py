"""benchmarks/compare_mamba_ssm.py needs a CUDA GPU (mamba_ssm has no CPU path); without one it stops with one
line. Its mamba_ssm side is built from the PyPI sdists on the GPU machine, never here."""

import subprocess
import sys

import pytest
import torch
from paths import REPO


@pytest.mark.skipif(torch.cuda.is_available(), reason="with a CUDA GPU the script compiles mamba_ssm and measures")
def test_without_a_gpu_it_stops_with_one_line(tmp_path):
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "compare_mamba_ssm.py"), "--mamba-sdist", "m.tgz",
                           "--conv-sdist", "c.tgz"], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip() == "compare_mamba_ssm.py: needs a CUDA GPU (mamba_ssm has no CPU path)"
