"""benchmarks/saved_activations.py lists what one layer saves for its backward, on a CPU (Triton interpreter)."""

import subprocess
import sys

from paths import REPO


def test_it_lists_the_saved_tensors_of_a_small_layer():
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "saved_activations.py"), "--d-model", "16",
                           "--length", "64"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("| (")]
    assert any("| (1, 32, 64) | bfloat16 | 64 |" == row for row in rows)  # a d_inner-wide bf16 activation
    total = float(done.stdout.split("| all | | ")[1].split(" |")[0].replace(",", ""))
    assert total == sum(float(row.rsplit("|", 2)[1].replace(",", "")) for row in rows)
