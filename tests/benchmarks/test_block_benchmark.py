"""benchmarks/block.py runs end to end on a CPU with --smoke (its GPU numbers come from the lead's runs)."""

import subprocess
import sys

from paths import REPO


def test_smoke_run_writes_the_table_and_the_profile(tmp_path):
    out = tmp_path / "block.md"
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "block.py"), "--smoke", "--out", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    text = out.read_text()
    assert "| block | 2 | 256 | reference |" in text and "| encoder | 2 | 128 | reference |" in text
    assert "GPU kernels of one block forward" in text and "Name" in text  # the profiler's table
