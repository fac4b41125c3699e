"""Real processes: torchrun with 2 CPU ranks (gloo) against one process, and a run killed with SIGKILL."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from paths import REPO
from safetensors.torch import load_file
from training_helpers import assert_same_weights, weights

from seqmamba.training import read_metrics
from seqmamba.training.selftest import run_selftest

ROOT = REPO
CLI = ["-m", "seqmamba.pipelines.cli", "train", "selftest"]


def _env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["OMP_NUM_THREADS"] = str(threads)
    return env


def test_torchrun_two_ranks_match_one_process_with_the_same_global_batch(tmp_path):
    steps = 6
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               *CLI, "-o", str(tmp_path / "ddp"), "--device", "cpu", "--max-steps", str(steps),
               "--batch-size", "4", "--quiet"]
    done = subprocess.run(command, env=_env(1), capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("selftest:") == 1 and "x 2 process(es)" in done.stdout  # rank 0 speaks

    single, _ = run_selftest(tmp_path / "one", device="cpu", max_steps=steps, batch_size=8, quiet=True)
    ddp = load_file(tmp_path / "ddp" / "checkpoint" / "model.safetensors")
    assert_same_weights(weights(single.model), ddp, atol=1e-5)
    # All-reduced metrics equal those of one process; rank 0 alone wrote them.
    (ddp_record,), (one_record,) = read_metrics(tmp_path / "ddp" / "metrics.jsonl"), \
        read_metrics(tmp_path / "one" / "metrics.jsonl")
    assert ddp_record["samples"] == one_record["samples"] == 48
    assert ddp_record["train_loss"] == pytest.approx(one_record["train_loss"], abs=1e-5)
    assert ddp_record["val_loss"] == pytest.approx(one_record["val_loss"], abs=1e-5)
    state = json.loads((tmp_path / "ddp" / "checkpoint" / "trainer_state.json").read_text())
    assert state["trainer"]["world_size"] == 2 and len(state["rng"]) == 2


def _checkpoint_step(run_dir: Path) -> int:
    try:
        data = json.loads((run_dir / "checkpoint" / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return 0
    return data["trainer"]["state"]["global_step"]


def test_sigkill_mid_run_then_resume_equals_an_uninterrupted_run(tmp_path):
    run_dir, steps = tmp_path / "killed", 24
    options = ["--max-steps", str(steps), "--save-every", "1", "--device", "cpu", "--quiet"]
    proc = subprocess.Popen([sys.executable, *CLI, "-o", str(run_dir), *options, "--step-delay", "0.1"],
                            env=_env(torch.get_num_threads()), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while _checkpoint_step(run_dir) < 5 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGKILL)  # mid-run, possibly mid-checkpoint
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
        proc.stderr.close()
    killed_at = _checkpoint_step(run_dir)
    assert 5 <= killed_at < steps
    resumed, state = run_selftest(run_dir, max_steps=steps, save_every=1, quiet=True, resume=True)
    whole, _ = run_selftest(tmp_path / "whole", max_steps=steps, save_every=1, quiet=True)
    assert state.global_step == steps
    assert_same_weights(weights(whole.model), weights(resumed.model), atol=1e-7)
