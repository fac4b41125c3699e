"""training/ahead.py and the Trainer's use of it: the dry runs that let the GPU kernels compile ahead (in
parallel) change nothing a real run sees, and cover the shapes the first epoch meets."""

from __future__ import annotations

import contextlib
import random

import numpy as np
import pytest
import torch
from torch import nn
from training_helpers import assert_same_weights, weights

from seqmamba.training import Trainer
from seqmamba.training import ahead as ahead_module
from seqmamba.training.selftest import run_selftest


@pytest.fixture
def dry_runs(monkeypatch):
    """compile_ahead as on a GPU: the dry run runs (its launches, here none, would be recorded)."""
    calls: list = []

    def fake(run):
        calls.append(run)
        run()
        return 0

    monkeypatch.setattr(ahead_module, "compile_ahead", fake)
    monkeypatch.setattr(ahead_module, "_dry_runs_made", set())
    return calls


def test_what_runs_inside_unchanged_leaves_grads_modes_and_random_generators_as_they_were():
    model = nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.5), nn.BatchNorm1d(3))
    model(torch.ones(2, 3)).sum().backward()
    grad = model[0].weight.grad.clone()
    model.eval()
    before = (torch.get_rng_state(), random.getstate(), np.random.get_state()[1].copy())  # noqa: NPY002
    stats = model[2].running_mean.clone(), model[2].num_batches_tracked.clone()
    with ahead_module.unchanged(model):
        model.train()
        model(torch.randn(2, 3) * 100).sum().backward()  # garbage, as a dry run's outputs are
        random.random(), np.random.rand()  # noqa: NPY002
    assert torch.equal(model[0].weight.grad, grad) and not model.training and not model[1].training
    assert torch.equal(model[2].running_mean, stats[0]) and torch.equal(model[2].num_batches_tracked, stats[1])
    assert torch.equal(torch.get_rng_state(), before[0]) and random.getstate() == before[1]
    assert np.array_equal(np.random.get_state()[1], before[2])  # noqa: NPY002


def test_step_kernels_run_a_backward_on_train_batches_and_a_forward_without_grad_on_eval_batches(dry_runs):
    seen = []

    def loss(model, batch):
        seen.append((batch.shape[0], torch.is_grad_enabled(), model.training))
        return model(batch).sum()

    model = nn.Linear(2, 1)
    ahead_module.compile_step_kernels(model, loss, [torch.ones(4, 2), torch.ones(1, 2)], [torch.ones(3, 2)],
                                      contextlib.nullcontext)
    assert seen == [(4, True, True), (1, True, True), (3, False, False)] and model.weight.grad is None


@pytest.mark.parametrize("graphed", [False, True])
def test_a_graphed_runs_dry_steps_scan_the_two_directions_apart_as_its_steps_do(dry_runs, graphed):
    """GraphedStep's steps and GraphedEvaluation scan a bidirectional block's directions in two launches
    (kernels.separate_directions); the dry run of a graphed run must too, or it would compile the fused kernels
    they never launch. A dry run of the other kind is not taken for one made before."""
    from seqmamba.kernels.scan_bidirectional import fuses

    seen = []

    def loss(model, batch):
        seen.append((torch.is_grad_enabled(), fuses(batch, "triton")))
        return model(batch).sum()

    model = nn.Linear(2, 1)
    ahead_module.compile_step_kernels(model, loss, [torch.ones(4, 2)], [torch.ones(3, 2)], contextlib.nullcontext,
                                      graphed=graphed)
    assert seen == [(True, not graphed), (False, not graphed)]
    ahead_module.compile_step_kernels(model, loss, [torch.ones(4, 2)], [torch.ones(3, 2)], contextlib.nullcontext,
                                      graphed=not graphed)
    assert seen[2:] == [(True, graphed), (False, graphed)]


def test_a_fit_that_compiles_ahead_trains_the_same_weights(tmp_path, dry_runs, monkeypatch):
    shapes = []
    real = ahead_module.compile_step_kernels

    def spy(model, loss, train, evals, autocast, graphed):
        shapes.append(([b[0].shape[0] for b in train], [b[0].shape[0] for b in evals], graphed))
        return real(model, loss, train, evals, autocast, graphed)

    monkeypatch.setattr("seqmamba.training.trainer.compile_step_kernels", spy)
    monkeypatch.setattr(Trainer, "_compiles_kernels", lambda self: True)
    ahead, _ = run_selftest(None, max_steps=6, quiet=True, batch_size=24, drop_last=False)  # 64 = 2 x 24 + 16
    assert shapes == [([24, 16], [16], False)] and len(dry_runs) == 1  # validation: 16, one partial batch
    again, _ = run_selftest(None, max_steps=6, quiet=True, batch_size=24, drop_last=False)
    assert_same_weights(weights(ahead.model), weights(again.model))
    monkeypatch.setattr(Trainer, "_compiles_kernels", lambda self: False)
    without, _ = run_selftest(None, max_steps=6, quiet=True, batch_size=24, drop_last=False)
    assert_same_weights(weights(ahead.model), weights(without.model))


def test_every_distinct_batch_shape_of_a_validation_factory_is_dry_run(monkeypatch):
    """A validation set given as a batch factory (what the estimators pass) has no length to compute its last
    batch from: its batches are scanned for their distinct shapes (here 4 rows, then 1)."""
    from seqmamba.training import LossTask, TrainerConfig, TrainerState

    def batches(sizes):
        return lambda epoch, ctx: iter([torch.ones(n, 2) for n in sizes])

    seen = []
    monkeypatch.setattr("seqmamba.training.trainer.compile_step_kernels",
                        lambda model, loss, train, evals, autocast, graphed: seen.append(
                            ([b.shape[0] for b in train], [b.shape[0] for b in evals], graphed)))
    model = nn.Linear(2, 1)
    trainer = Trainer(model, LossTask(lambda m, b: m(b).sum()), batches([4, 4, 4]), val_data=batches([4, 4, 1]),
                      config=TrainerConfig(max_steps=1, batch_size=4, device="cpu", quiet=True))
    trainer.state = TrainerState()
    trainer._compile_ahead(model)
    assert seen == [([4], [4, 1], False)]  # no graphs on a CPU


def test_a_dry_run_alike_to_one_made_in_this_process_is_not_made_again(dry_runs):
    model, loss = nn.Linear(2, 1), lambda m, b: m(b).sum()
    for _ in range(2):
        ahead_module.compile_step_kernels(model, loss, [torch.ones(4, 2)], [], contextlib.nullcontext)
        ahead_module.compile_forward_kernels(model, lambda m, b: m(b), [torch.ones(4, 2)])
    assert len(dry_runs) == 2  # one step, one forward
    ahead_module.compile_forward_kernels(nn.Linear(2, 3), lambda m, b: m(b), [torch.ones(4, 2)])  # another model
    ahead_module.compile_forward_kernels(model, lambda m, b: m(b), [torch.ones(5, 2)])  # another batch
    assert len(dry_runs) == 4

