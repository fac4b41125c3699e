"""benchmarks/train_step.py runs end to end on a CPU with --smoke (GPU numbers come from the lead's runs)."""

import importlib.util

from paths import REPO

SCRIPT = REPO / "benchmarks" / "train_step.py"


def test_smoke_run_writes_the_table(tmp_path):
    spec = importlib.util.spec_from_file_location("train_step_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "train_step.md"
    table = module.main(["--smoke", "--length", "256", "--steps", "2", "--out", str(out)])
    assert out.read_text() == table
    assert "| 256 |" in table and "gradient checkpointing" in table
