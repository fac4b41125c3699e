"""Checkpoint files: no pickle, atomic swaps, the fallback after a kill mid-swap, exact state round trips."""

import errno
import json
import os
import shutil

import pytest
import torch
from training_helpers import assert_same_weights, weights

import seqmamba.checkpoint
from seqmamba.dna import DNAEncoder
from seqmamba.errors import OutputError
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
        raise OSError(errno.ENOSPC, "No space left on device")

    # Every tensor file of a checkpoint goes through seqmamba.checkpoint's save_file.
    monkeypatch.setattr(seqmamba.checkpoint, "save_file", broken)
    with pytest.raises(OutputError, match="no space left on device") as caught:
        run_selftest(tmp_path, max_steps=8, quiet=True, resume=True)
    assert caught.value.path in (str(tmp_path / "checkpoint"), str(tmp_path / "best"))  # whichever came first
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


class _InterruptAt:
    """Wraps the file-system calls of a checkpoint write; raises KeyboardInterrupt before or after the n-th."""

    NAMES = (("os", os, "replace"), ("os", os, "fsync"), ("os", os, "rename"), ("shutil", shutil, "rmtree"),
             ("checkpoint", seqmamba.checkpoint, "save_file"))

    def __init__(self, monkeypatch, at: int | None, after: bool) -> None:
        self.calls, self.at, self.after = 0, at, after
        for _, module, name in self.NAMES:
            monkeypatch.setattr(module, name, self._wrap(getattr(module, name)))

    def _wrap(self, real):
        def call(*args, **kwargs):
            self.calls += 1
            hit = self.calls == self.at
            if hit and not self.after:
                raise KeyboardInterrupt
            result = real(*args, **kwargs)
            if hit:
                raise KeyboardInterrupt
            return result
        return call


def _write_next_checkpoint(run_dir, trainer) -> None:
    trainer.state.global_step += 1
    trainer._save()


def test_an_interrupt_anywhere_in_a_checkpoint_write_keeps_a_complete_checkpoint(tmp_path, monkeypatch):
    trainer, _ = run_selftest(tmp_path / "template", max_steps=2, quiet=True)
    with monkeypatch.context() as counting:
        counter = _InterruptAt(counting, None, False)
        _write_next_checkpoint(tmp_path / "template", trainer)
        n_calls = counter.calls
    assert n_calls >= 6  # save_file x2, fsyncs, renames, rmtree: the interleavings below are real
    for at in range(1, n_calls + 1):
        for after in (False, True):
            run = tmp_path / f"at{at}{'after' if after else 'before'}"
            shutil.copytree(tmp_path / "template", run)
            trainer.run_dir = run
            step_before = ckpt_state.read_checkpoint(run / "checkpoint")["trainer"]["state"]["global_step"]
            trainer.state.global_step = step_before
            with monkeypatch.context() as patched:
                _InterruptAt(patched, at, after)
                with pytest.raises(KeyboardInterrupt):
                    _write_next_checkpoint(run, trainer)
            found = ckpt_state.find_checkpoint(run)
            assert found is not None, (at, after)
            step = ckpt_state.read_checkpoint(found)["trainer"]["state"]["global_step"]
            assert step in (step_before, step_before + 1), (at, after, step)
            seqmamba.checkpoint.load_weights(SelftestModel(), found)  # complete, readable weights
            ckpt_state.clean_stale(run)
            trainer.state.global_step = step_before
            _write_next_checkpoint(run, trainer)  # and the next write goes through
            assert ckpt_state.find_checkpoint(run) == run / "checkpoint"
