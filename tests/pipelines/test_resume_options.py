"""`train dna --resume` refuses options unlike the interrupted run's, before any training."""

from __future__ import annotations

import json

from dna_estimator_helpers import at_gc_task

from seqmamba.pipelines.cli import main
from seqmamba.training.state import STATE_JSON

TINY_ARGS = ["--d-model", "8", "--n-layers", "1", "--d-state", "4", "--max-len", "64", "--batch-size", "8",
             "--epochs", "1", "--device", "cpu", "-q"]


def finished_run(tmp_path):
    """A tiny `train dna` run to its end: its command line and model directory."""
    X, y = at_gc_task(n=16)
    table = tmp_path / "train.csv"
    table.write_text("sequence,label\n" + "".join(f"{s},{label}\n" for s, label in zip(X, y)))
    model = tmp_path / "model"
    argv = ["train", "dna", "--train", str(table), "-o", str(model), *TINY_ARGS]
    assert main(argv) == 0
    return argv, model


def interrupted_run(tmp_path):
    """A finished tiny run whose checkpoint is put back, as if it had been stopped after an epoch."""
    argv, model = finished_run(tmp_path)
    checkpoint = model / "training" / "checkpoint"
    checkpoint.mkdir()
    (checkpoint / STATE_JSON).write_text("{}")
    return argv, model


def test_resume_with_other_options_is_refused_naming_them(tmp_path, capsys):
    argv, model = interrupted_run(tmp_path)
    recorded = json.loads((model / "training" / "options.json").read_text())
    assert recorded["lr"] == 1e-3 and recorded["epochs"] == 1 and "device" not in recorded
    capsys.readouterr()
    code = main([*argv, "--lr", "0.01", "--resume"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0
    assert len(err) == 1, err
    assert str(model) in err[0] and "--lr 0.01 (was 0.001)" in err[0] and "--overwrite" in err[0]
    # Nothing of the run was touched: its checkpoint and options are still there.
    assert (model / "training" / "checkpoint" / STATE_JSON).read_text() == "{}"
    assert json.loads((model / "training" / "options.json").read_text()) == recorded


def test_resume_with_the_same_options_passes_the_check(tmp_path, monkeypatch):
    argv, _model = interrupted_run(tmp_path)
    seen = {}

    def fake_fit(self, X, y, eval_set=None, run_dir=None, resume=False):
        seen["resume"] = resume  # the check passed; the (fake) checkpoint itself is not loadable
        raise KeyboardInterrupt

    monkeypatch.setattr("seqmamba.estimators.MambaSequenceClassifier.fit", fake_fit)
    assert main([*argv, "--device", "cpu", "--resume"]) == 130
    assert seen == {"resume": True}


def test_a_finished_run_does_not_bind_the_next_one(tmp_path, capsys):
    """Only an interrupted run's options bind --resume; a finished run's options.json is a record.

    A finished model is replaced only with --overwrite (issue 25, case 3): --resume, with nothing to
    resume, is refused for that, not for its options; --overwrite then trains with the new ones.
    """
    argv, model = finished_run(tmp_path)
    weights = (model / "model.safetensors").read_bytes()
    capsys.readouterr()
    assert main([*argv, "--lr", "0.01", "--resume"]) == 1
    assert capsys.readouterr().err == f"Error: {model}: already holds a DNA model; pass --overwrite to replace it\n"
    assert (model / "model.safetensors").read_bytes() == weights
    assert main([*argv, "--lr", "0.01", "--overwrite"]) == 0
    assert json.loads((model / "training" / "options.json").read_text())["lr"] == 0.01
