"""benchmarks/fit_graphs.py needs a CUDA GPU; its table (benchmarks/report.py) is rewritten to --out row by row."""

import subprocess
import sys

import pytest
import torch
from paths import REPO


@pytest.mark.skipif(torch.cuda.is_available(), reason="with a CUDA GPU the script measures instead of stopping")
def test_without_a_gpu_it_stops_with_one_line(tmp_path):
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "fit_graphs.py")], capture_output=True,
                          text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == "fit_graphs.py: needs a CUDA GPU"


def test_a_table_cut_short_keeps_the_rows_it_has(tmp_path):
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        from report import MarkdownTable
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    out = tmp_path / "table.md"
    table = MarkdownTable(out, "Device: test.", ["a", "b"], "|---:|---:|")
    assert out.read_text() == "Device: test.\n\n| a | b |\n|---:|---:|\n"
    table.add(1, "2.50")
    assert out.read_text().endswith("| 1 | 2.50 |\n")
