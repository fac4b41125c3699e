"""benchmarks/encoder.py runs end to end on a CPU with --smoke (the GPU numbers come from the lead's runs)."""

import importlib.util

from paths import REPO

SCRIPT = REPO / "benchmarks" / "encoder.py"


def test_smoke_run_writes_the_table(tmp_path):
    spec = importlib.util.spec_from_file_location("encoder_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "encoder.md"
    table = module.main(["--smoke", "--lengths", "48", "--out", str(out)])
    assert out.read_text() == table
    assert "| forward+backward, checkpointing | 48 |" in table
    assert "| step, eager |" in table
