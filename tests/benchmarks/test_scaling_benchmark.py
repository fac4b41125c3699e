"""benchmarks/scaling.py runs end to end on a CPU (--smoke, 1 and 2 gloo processes, a small genome); its GPU
figures come from a machine with several GPUs."""

import gzip
import subprocess
import sys

import numpy as np
from paths import REPO
from process_helpers import env


def test_smoke_run_writes_a_row_per_process_count(tmp_path):
    genomes = tmp_path / "genomes"
    genomes.mkdir()
    rng = np.random.default_rng(0)
    with gzip.open(genomes / "tiny.fa.gz", "wt") as handle:
        for i in range(3):
            handle.write(f">chr{i}\n{''.join(rng.choice(list('ACGT'), 4000))}\n")
    out = tmp_path / "scaling.md"
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "scaling.py"), "--genomes", str(genomes),
                           "--smoke", "--procs", "1", "2", "--work", str(tmp_path / "runs"), "--out", str(out)],
                          capture_output=True, text=True, timeout=600, env=env(), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = [line for line in out.read_text().splitlines() if line.startswith("| 1 |") or line.startswith("| 2 |")]
    assert len(rows) == 2 and all("| yes |" in row for row in rows)  # the merged embeddings have one's rows
