"""SIGINT, SIGTERM and SIGHUP to a real `seqmamba` process mid-run: a prompt stop with one line (`Interrupted`,
exit 130 / `Terminated`, 143 / `Hangup`, 129), no traceback, no half-written output, the user's old output
intact, and for training a checkpoint that `train dna ... --resume` continues to the same model as an
uninterrupted run.

No test depends on timing: each waits (up to minutes, on a busy machine) for a file that shows the run
is under way (the first chunk of rows in the temporary output, the first checkpoint), then signals, and
checks that the process was still running when the signal went out.
"""

import json
import signal
from pathlib import Path

import pytest
import torch
from dna_estimator_helpers import tiny_cli_workdir
from process_helpers import run_until, temporary_with_rows
from safetensors.torch import load_file

from seqmamba.pipelines.cli import main

SIGNALS = [pytest.param(signal.SIGINT, "Interrupted", 130, id="SIGINT"),
           pytest.param(signal.SIGTERM, "Terminated", 143, id="SIGTERM"),
           pytest.param(signal.SIGHUP, "Hangup", 129, id="SIGHUP")]
PRECIOUS = "the user's earlier output, which must survive\n"
TRAIN_OPTIONS = ["--d-model", "8", "--n-layers", "1", "--d-state", "4", "--max-len", "64", "--epochs", "20",
                 "--batch-size", "8", "--device", "cpu", "--seed", "3", "-q"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A tiny classifier (batches of 64 windows) and a FASTA of 20,000 records (5 chunks of 4,096)."""
    root = tmp_path_factory.mktemp("signals")
    tiny_cli_workdir(root, "model", 20000)
    return root




@pytest.mark.parametrize(("sig", "message", "code"), SIGNALS)
@pytest.mark.parametrize("command", ["classify", "embed"])
def test_inference_stops_cleanly(data, tmp_path, command, sig, message, code):
    name = "out.tsv" if command == "classify" else "emb.parquet"
    out = tmp_path / name
    out.write_text(PRECIOUS)
    argv = [command, str(data / "model"), str(data / "in.fa"), "-o", str(out), "--overwrite", "-q"]
    returncode, err = run_until(argv, tmp_path, temporary_with_rows(tmp_path, name), sig)
    assert (returncode, err) == (code, f"{message}\n")
    assert out.read_text() == PRECIOUS  # the old output is untouched, and no new half of one replaced it
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no temporary file left


def checkpoint_written(model: Path):
    def ready() -> bool:
        return (model / "training" / "checkpoint" / "trainer_state.json").is_file()
    return ready


@pytest.fixture(scope="module")
def uninterrupted(data, tmp_path_factory):
    model = tmp_path_factory.mktemp("whole") / "model"
    argv = ["train", "dna", "--train", str(data / "train.csv"), "--valid", str(data / "train.csv"), "-o", str(model)]
    assert main(argv + TRAIN_OPTIONS) == 0
    return load_file(model / "model.safetensors")


@pytest.mark.parametrize(("sig", "message", "code"), SIGNALS)
def test_training_stops_cleanly_and_resumes_to_the_same_model(data, uninterrupted, tmp_path, sig, message, code):
    model = tmp_path / "model"
    argv = ["train", "dna", "--train", str(data / "train.csv"), "--valid", str(data / "train.csv"), "-o", str(model),
            *TRAIN_OPTIONS]
    returncode, err = run_until(argv, tmp_path, checkpoint_written(model), sig)
    assert (returncode, err) == (code, f"{message}\n")
    run_dir = model / "training"
    # No model files yet, no half-written checkpoint: only the last complete one, the best one and the metrics.
    assert sorted(p.name for p in model.iterdir()) == ["training"]
    assert sorted(p.name for p in run_dir.iterdir()) == ["best", "checkpoint", "metrics.jsonl", "options.json"]
    state = json.loads((run_dir / "checkpoint" / "trainer_state.json").read_text())["trainer"]["state"]
    assert 0 < state["global_step"] < 40  # 20 epochs of 2 steps

    # The same command again is refused (it would throw the run away); with --resume it finishes.
    assert main(argv) == 1
    assert main([*argv, "--resume"]) == 0
    assert sorted(p.name for p in model.iterdir()) == ["config.json", "estimator.json", "model.safetensors",
                                                       "tokenizer.json", "training"]
    resumed = load_file(model / "model.safetensors")
    assert resumed.keys() == uninterrupted.keys()
    for key, value in uninterrupted.items():
        torch.testing.assert_close(resumed[key], value, rtol=0, atol=1e-6, msg=key)
    epochs = [r["epoch"] for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())
              if r["event"] == "epoch"]
    assert epochs == list(range(20))  # each epoch logged once: the interrupted one's lines were dropped
