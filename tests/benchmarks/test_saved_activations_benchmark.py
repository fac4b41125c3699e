"""benchmarks/saved_activations.py lists what one layer saves for its backward, on a CPU (Triton interpreter)."""

import subprocess
import sys

from paths import REPO


def test_it_lists_the_saved_tensors_of_a_small_layer_kept_and_recomputed():
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "saved_activations.py"), "--d-model", "16",
                           "--length", "64"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    kept, recomputed = done.stdout.split("all kept")[1].split("scan inputs recomputed")
    totals = []
    for table in (kept, recomputed):
        rows = [line for line in table.splitlines() if line.startswith("| (")]
        total = float(table.split("| all | | ")[1].split(" |")[0].replace(",", ""))
        assert total == sum(float(row.rsplit("|", 2)[1].replace(",", "")) for row in rows)
        totals.append(total)
    assert "| (1, 32, 64) | bfloat16 | 64 |" in kept  # a d_inner-wide bf16 activation: 64 bytes per token
    assert totals[0] - totals[1] == 4 * 64  # both branches' conv output and delta
