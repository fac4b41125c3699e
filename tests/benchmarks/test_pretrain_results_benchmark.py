"""benchmarks/pretrain_results.py runs every stage on a CPU with --smoke (tiny sizes; its numbers mean nothing):
pretraining, the held-out masked accuracy against the k-mer floors, the E. coli probes and fine-tuning, GUE."""

import json
import subprocess
import sys

import pytest
from paths import REPO, SHARED_DATA
from process_helpers import env

pytestmark = pytest.mark.skipif(not (SHARED_DATA / "genomes").is_dir() or not (SHARED_DATA / "dna" / "gue").is_dir(),
                                reason="needs ../shared/data (genomes and GUE)")


def test_smoke_run_writes_every_stage_and_the_report(tmp_path):
    out = tmp_path / "pretraining.md"
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "pretrain_results.py"), "--smoke", "--stages",
                           "all", "--data", str(SHARED_DATA), "--results", str(tmp_path / "r"), "--out", str(out)],
                          capture_output=True, text=True, timeout=600, env=env())
    assert done.returncode == 0, done.stderr
    ecoli = json.loads((tmp_path / "r" / "ecoli.json").read_text())
    assert {"pretrained", "untrained", "6-mer"} == set(ecoli["probe"])
    assert {"warm_up_s", "pretrained", "scratch"} == set(ecoli["finetune"])  # the pair ran after a warm-up
    text = out.read_text()
    for heading in ("## Pretraining", "## E. coli", "## GUE"):
        assert heading in text

