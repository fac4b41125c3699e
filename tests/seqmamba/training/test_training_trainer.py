"""The training engine on a CPU: determinism, accumulation, exact resume, early stopping, metrics, quiet."""

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset
from training_helpers import Crash, CrashAt, assert_same_weights, weights, without_clock

from seqmamba.training import Callback, LossTask, Trainer, TrainerConfig, read_metrics, seed_everything
from seqmamba.training.selftest import SelftestModel, run_selftest, synthetic_data


def test_same_seed_gives_bitwise_same_weights(tmp_path):
    a, _ = run_selftest(tmp_path / "a", max_steps=10, quiet=True)
    b, _ = run_selftest(tmp_path / "b", max_steps=10, quiet=True)
    c, _ = run_selftest(tmp_path / "c", max_steps=10, quiet=True, seed=1)
    assert_same_weights(weights(a.model), weights(b.model))
    assert not torch.equal(a.model.head.weight, c.model.head.weight)


def test_training_reduces_the_loss(tmp_path):
    _, state = run_selftest(tmp_path, max_steps=40, quiet=True)
    records = read_metrics(tmp_path / "metrics.jsonl")
    assert records[-1]["val_loss"] < records[0]["val_loss"] < 1.0
    assert state.global_step == 40 and state.best_step == 40


def test_gradient_accumulation_equals_the_large_batch(tmp_path):
    big, _ = run_selftest(None, max_steps=6, batch_size=8, quiet=True)
    accumulated, _ = run_selftest(None, max_steps=6, batch_size=4, grad_accum_steps=2, quiet=True)
    assert_same_weights(weights(big.model), weights(accumulated.model), atol=1e-6)


@pytest.mark.parametrize("crash_at", [7, 8, 9])  # mid-epoch, at an epoch's end, just after one
def test_resume_after_a_crash_equals_an_uninterrupted_run(tmp_path, crash_at):
    # 64 samples, batch 8, 2 micro-batches per step: 4 steps an epoch, 20 steps = 5 epochs.
    options = dict(max_steps=20, grad_accum_steps=2, save_every=3, log_every=1, quiet=True)
    whole, _ = run_selftest(tmp_path / "whole", **options)
    with pytest.raises(Crash):
        run_selftest(tmp_path / "crashed", callbacks=[CrashAt(crash_at)], **options)
    resumed, state = run_selftest(tmp_path / "crashed", resume=True, **options)
    assert state.global_step == 20
    assert_same_weights(weights(whole.model), weights(resumed.model))
    # Records written after the last checkpoint were dropped and written again, once.
    assert without_clock(read_metrics(tmp_path / "crashed" / "metrics.jsonl")) == \
        without_clock(read_metrics(tmp_path / "whole" / "metrics.jsonl"))


def test_resume_extends_a_finished_run_like_a_longer_one(tmp_path):
    # The schedule is fixed by the first run's length; constant keeps both runs on the same curve.
    long, _ = run_selftest(tmp_path / "long", max_steps=12, quiet=True, schedule="constant")
    run_selftest(tmp_path / "short", max_steps=6, quiet=True, schedule="constant")
    longer, state = run_selftest(tmp_path / "short", max_steps=12, quiet=True, schedule="constant", resume=True)
    assert state.global_step == 12
    assert_same_weights(weights(long.model), weights(longer.model), atol=1e-7)


def test_resume_without_checkpoint_starts_afresh_and_existing_runs_are_protected(tmp_path):
    first, _ = run_selftest(tmp_path, max_steps=3, quiet=True, resume=True)
    with pytest.raises(FileExistsError, match="resume=True"):
        run_selftest(tmp_path, max_steps=3, quiet=True)
    again, _ = run_selftest(tmp_path, max_steps=3, quiet=True, overwrite=True)
    assert_same_weights(weights(first.model), weights(again.model))
    assert len(read_metrics(tmp_path / "metrics.jsonl")) == 1  # the first run's records are gone


def test_resuming_a_finished_run_changes_nothing(tmp_path):
    first, _ = run_selftest(tmp_path, max_steps=5, quiet=True)
    records = read_metrics(tmp_path / "metrics.jsonl")
    again, state = run_selftest(tmp_path, max_steps=5, quiet=True, resume=True)
    assert state.global_step == 5
    assert_same_weights(weights(first.model), weights(again.model))
    assert read_metrics(tmp_path / "metrics.jsonl") == records


def test_metrics_jsonl_has_epoch_eval_and_end_records(tmp_path):
    run_selftest(tmp_path, max_steps=10, eval_every=3, quiet=True)
    records = read_metrics(tmp_path / "metrics.jsonl")
    assert [(r["event"], r["step"]) for r in records] == [
        ("eval", 3), ("eval", 6), ("epoch", 8), ("eval", 9), ("end", 10)]
    assert {"train_loss", "lr", "samples", "tokens_per_s"} <= records[2].keys()
    assert "val_loss" not in records[2]  # step 8 is not an eval step
    assert records[-1]["val_loss"] is not None and records[-1]["samples"] == 16
    best = (tmp_path / "best" / "eval.json").read_text()
    assert '"monitor": "val_loss"' in best


def test_quiet_silences_the_progress_bar(tmp_path, capsys):
    run_selftest(tmp_path / "loud", max_steps=3)
    loud = capsys.readouterr().err
    assert "loss=" in loud and "step" in loud
    run_selftest(tmp_path / "quiet", max_steps=3, quiet=True)
    assert capsys.readouterr().err == ""


class _Constant(LossTask):
    """Validation metrics that never improve after the first evaluation."""

    def __init__(self) -> None:
        super().__init__(lambda model, batch: nn.functional.mse_loss(model(batch[0]), batch[1]))

    def metrics(self, model, batch):
        return {"loss": 1.0, "score": 0.5}


def _linear_trainer(config, run_dir=None, task=None, callbacks=()):
    seed_everything(0)
    x = torch.randn(32, 4)
    data = TensorDataset(x, x.sum(1, keepdim=True))
    return Trainer(nn.Linear(4, 1), task or _Constant(), data, val_data=data, config=config, run_dir=run_dir,
                   callbacks=callbacks)


@pytest.mark.parametrize("mode", ["min", "max"])
def test_early_stopping_after_patience_evaluations(tmp_path, mode):
    config = TrainerConfig(max_epochs=50, batch_size=8, patience=2, mode=mode, monitor="val_score", quiet=True)
    trainer = _linear_trainer(config, tmp_path)
    state = trainer.fit()
    assert state.stopped_early and state.epoch == 3 and state.best_step == 4
    assert [r["event"] for r in read_metrics(tmp_path / "metrics.jsonl")] == ["epoch"] * 3
    # The stopped run stays stopped when resumed.
    assert _linear_trainer(config, tmp_path).fit(resume=True).global_step == 12


def test_restore_best_without_a_run_directory():
    class Snapshot(Callback):
        first = None

        def on_evaluate(self, trainer, metrics):
            self.first = self.first or weights(trainer.model)

    snap = Snapshot()
    config = TrainerConfig(max_epochs=3, batch_size=8, restore_best=True, quiet=True)
    trainer = _linear_trainer(config, callbacks=[snap])
    trainer.fit()
    assert_same_weights(weights(trainer.model), snap.first)


def test_monitor_must_be_a_validation_metric():
    config = TrainerConfig(max_epochs=1, batch_size=8, monitor="val_accuracy", quiet=True)
    with pytest.raises(KeyError, match="val_accuracy"):
        _linear_trainer(config).fit()


def test_loader_factory_resumes_by_replaying_the_epoch(tmp_path):
    data = synthetic_data(32, seed=0)

    def factory(epoch, ctx):
        order = torch.randperm(len(data), generator=torch.Generator().manual_seed(epoch))
        return [(data.tensors[0][order[i:i + 8]], data.tensors[1][order[i:i + 8]]) for i in range(0, 32, 8)]

    def train(run_dir, callbacks=(), resume=False):
        seed_everything(0)
        trainer = Trainer(SelftestModel(), _Constant().loss_fn, factory, run_dir=run_dir, callbacks=callbacks,
                          config=TrainerConfig(max_epochs=3, max_steps=10, save_every=2, quiet=True))
        trainer.fit(resume=resume)
        return weights(trainer.model)

    whole = train(tmp_path / "whole")
    with pytest.raises(Crash):
        train(tmp_path / "crashed", [CrashAt(7)])
    assert_same_weights(whole, train(tmp_path / "crashed", resume=True))


def test_task_loss_must_be_a_scalar():
    config = TrainerConfig(max_steps=1, batch_size=8, quiet=True)
    trainer = _linear_trainer(config, task=LossTask(lambda model, batch: model(batch[0])))
    with pytest.raises(ValueError, match="scalar"):
        trainer.fit()


def test_config_is_checked():
    with pytest.raises(ValueError, match="max_epochs, max_steps"):
        TrainerConfig(max_epochs=None)
    with pytest.raises(ValueError, match="precision"):
        TrainerConfig(precision="fp16")
    with pytest.raises(ValueError, match="grad_accum_steps"):
        TrainerConfig(grad_accum_steps=0)
    with pytest.raises(TypeError, match="map-style Dataset"):
        Trainer(nn.Linear(1, 1), lambda m, b: m(b).sum(), torch.utils.data.DataLoader(range(3)))
    with pytest.raises(ValueError, match="patience"):
        Trainer(nn.Linear(1, 1), lambda m, b: m(b).sum(), range(3), config=TrainerConfig(patience=1))


def test_bf16_autocast_on_cpu_trains(tmp_path):
    trainer, state = run_selftest(None, max_steps=3, precision="bf16", quiet=True)
    assert state.global_step == 3 and trainer.model.head.weight.dtype == torch.float32


def test_eval_at_start_lets_the_starting_weights_win():
    """A run that only gets worse keeps its starting weights when they were evaluated first."""
    def run(eval_at_start):
        seed_everything(0)
        x = torch.randn(64, 4)
        data = TensorDataset(x, x.sum(1, keepdim=True))
        model = nn.Linear(4, 1)
        with torch.no_grad():  # the exact solution: any step away from it is worse
            model.weight.fill_(1.0)
            model.bias.zero_()
        start = weights(model)
        seen = []

        class Record(Callback):
            def on_evaluate(self, trainer, metrics):
                seen.append((trainer.state.global_step, metrics["val_loss"]))

        config = TrainerConfig(max_epochs=2, batch_size=8, lr=0.5, restore_best=True, eval_at_start=eval_at_start,
                               quiet=True)
        trainer = Trainer(model, LossTask(lambda m, b: nn.functional.mse_loss(m(b[0]), b[1])), data, val_data=data,
                          config=config, callbacks=[Record()])
        state = trainer.fit()
        return model, start, seen, state

    model, start, seen, state = run(True)
    assert seen[0] == (0, pytest.approx(0.0, abs=1e-10)) and len(seen) == 3
    assert state.best_step == 0 and all(loss > 1e-6 for _, loss in seen[1:])
    assert_same_weights(weights(model), start)
    model, start, seen, state = run(False)
    assert seen[0][0] == 8 and state.best_step > 0
    assert not torch.equal(model.weight, start["weight"])
