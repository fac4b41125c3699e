"""Checkpoint files: no pickle, atomic swaps, the fallback after a kill mid-swap, exact state round trips."""

import json

import pytest
import torch
from training_helpers import assert_same_weights, weights

from seqmamba.dna import DNAEncoder
from seqmamba.training import state as ckpt_state
from seqmamba.training.selftest import SelftestModel, run_selftest


def test_checkpoint_layout_needs_no_pickle(tmp_path):
    trainer, _ = run_selftest(tmp_path, max_steps=4, quiet=True)
    files = sorted(p.name for p in (tmp_path / "checkpoint").iterdir())
    assert files == ["config.json", "model.safetensors", "trainer_state.json", "trainer_state.safetensors"]
    envelope = json.loads((tmp_path / "checkpoint" / "config.json").read_text())
    assert envelope["model_type"] == "SelftestModel" and envelope["config"]["d_model"] == 8
    restored = SelftestModel()
    ckpt_state.load_model_weights(restored, tmp_path / "checkpoint")
    assert_same_weights(weights(trainer.model), weights(restored))
    assert not list(tmp_path.glob(".*"))  # no staging or old directories left


def test_model_with_save_pretrained_writes_its_own_checkpoint(tmp_path):
    from seqmamba import MambaConfig

    model = DNAEncoder(MambaConfig(d_model=8, n_layers=1, d_state=4, vocab_size=5))
    ckpt_state.save_model(model, tmp_path)
    assert_same_weights(weights(model), weights(DNAEncoder.from_pretrained(tmp_path)))


def test_optimizer_state_round_trips_exactly(tmp_path):
    trainer, _ = run_selftest(tmp_path, max_steps=3, quiet=True)
    saved = ckpt_state.read_checkpoint(tmp_path / "checkpoint")
    original = trainer.optimizer.state_dict()
    assert saved["optimizer"]["param_groups"] == original["param_groups"]
    for index, slots in original["state"].items():
        for name, value in slots.items():
            assert torch.equal(saved["optimizer"]["state"][index][name], value), (index, name)
    assert saved["scheduler"]["last_epoch"] == 3
    assert saved["trainer"]["state"]["global_step"] == 3


def test_a_failed_write_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    run_selftest(tmp_path, max_steps=4, quiet=True)
    before = (tmp_path / "checkpoint" / "model.safetensors").read_bytes()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(ckpt_state, "save_file", broken)
    with pytest.raises(OSError, match="disk full"):
        run_selftest(tmp_path, max_steps=8, quiet=True, resume=True)
    assert (tmp_path / "checkpoint" / "model.safetensors").read_bytes() == before
    assert ckpt_state.read_checkpoint(tmp_path / "checkpoint")["trainer"]["state"]["global_step"] == 4
    assert not list(tmp_path.glob(".*"))


def test_kill_between_the_two_renames_falls_back_to_the_old_copy(tmp_path):
    options = dict(save_every=2, quiet=True, schedule="constant")  # the same lr curve for 6 and 10 steps
    whole, _ = run_selftest(tmp_path / "whole", max_steps=10, **options)
    run_selftest(tmp_path / "killed", max_steps=6, **options)
    run = tmp_path / "killed"
    # As left by a kill after `checkpoint -> .checkpoint.old` and before `staged -> checkpoint`,
    # with a half-written staging directory beside it.
    (run / "checkpoint").rename(run / ".checkpoint.old")
    (run / ".checkpoint.tmp.abc").mkdir()
    (run / ".checkpoint.tmp.abc" / "model.safetensors").write_bytes(b"half")
    assert ckpt_state.find_checkpoint(run) == run / ".checkpoint.old"
    resumed, state = run_selftest(run, max_steps=10, resume=True, **options)
    assert state.global_step == 10
    assert_same_weights(weights(whole.model), weights(resumed.model), atol=1e-7)
    assert ckpt_state.find_checkpoint(run) == run / "checkpoint"
    assert not list(run.glob(".*"))


def test_unsupported_state_format_is_named(tmp_path):
    run_selftest(tmp_path, max_steps=2, quiet=True)
    path = tmp_path / "checkpoint" / "trainer_state.json"
    data = json.loads(path.read_text())
    data["format_version"] = 99
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="format 99"):
        ckpt_state.read_checkpoint(tmp_path / "checkpoint")
