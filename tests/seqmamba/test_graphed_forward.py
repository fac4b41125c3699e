"""GraphedForward: a forward replayed from a CUDA graph gives the eager forward's output, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from seqmamba.estimators import MambaSequenceClassifier
from seqmamba.estimators import _base as estimator_base
from seqmamba.inference import CaptureSchedule, GraphedForward

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA GPU")


def test_off_cuda_every_call_is_the_eager_forward():
    model = nn.Linear(3, 2)
    run = GraphedForward(model, lambda m, b: m(b["x"]))
    x = torch.randn(4, 3)
    with torch.inference_mode():
        for _ in range(3):
            assert torch.equal(run({"x": x}), model(x))
    assert run.captured == {}


class EagerForward:
    """GraphedForward's stand-in that never captures: the reference path."""

    def __init__(self, model, fn, **_):
        self.model, self.fn = model, fn

    def __call__(self, batch):
        return self.fn(self.model, batch)


@needs_cuda
def test_replayed_forward_equals_eager_and_reads_each_new_batch():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.SiLU(), nn.Linear(16, 2)).cuda()
    run = GraphedForward(model, lambda m, b: m(b["x"]) * b["w"])
    with torch.inference_mode():
        for i in range(5):  # eager, eager, captured and replayed, replayed, replayed
            x, w = torch.randn(5, 8, device="cuda"), torch.rand(5, 1, device="cuda")
            assert torch.equal(run({"x": x, "w": w}), model(x) * w), i
        assert len(run.captured) == 1


@needs_cuda
def test_classifier_predictions_through_graphs_equal_eager(monkeypatch):
    rng = np.random.default_rng(0)
    seqs = ["".join(rng.choice(list("ACGT"), 96)) for _ in range(40)]  # 5 batches of one shape, then a partial
    labels = [s.count("A") > 24 for s in seqs]
    clf = MambaSequenceClassifier(d_model=32, n_layers=2, max_epochs=1, batch_size=8, device="cuda", random_state=0)
    clf.fit(seqs, labels)
    test = seqs + seqs[:3]
    graphed = clf.predict_proba(test)
    monkeypatch.setattr(estimator_base, "GraphedForward", EagerForward)
    eager = clf.predict_proba(test)
    np.testing.assert_array_equal(graphed, eager)


def test_the_environment_switch_turns_graphs_off(monkeypatch):
    monkeypatch.setenv("SEQMAMBA_CUDA_GRAPHS", "0")
    assert not GraphedForward(nn.Linear(2, 1), lambda m, b: m(b["x"])).schedule.enabled
    assert not CaptureSchedule(most=8, capture_after=0).capture_now("shape", captured=0)
    monkeypatch.delenv("SEQMAMBA_CUDA_GRAPHS")
    assert GraphedForward(nn.Linear(2, 1), lambda m, b: m(b["x"])).schedule.enabled


def test_the_schedule_captures_a_shape_once_it_repeats_and_stops_at_most_or_a_failure(caplog):
    schedule = CaptureSchedule(most=2, capture_after=1)
    assert [schedule.capture_now("a", captured=0) for _ in range(2)] == [False, True]
    assert [schedule.capture_now("b", captured=1) for _ in range(2)] == [False, True]
    assert [schedule.capture_now("c", captured=2) for _ in range(3)] == [False, False, False]  # most reached
    schedule.failed(RuntimeError("no"), "the forward")
    assert not schedule.capture_now("d", captured=0) and not schedule.capture_now("d", captured=0)
    assert "capture of the forward failed (no)" in caplog.text


def test_estimators_train_with_step_graphs_unless_turned_off(monkeypatch):
    """The estimators ask their Trainer for graphed steps (taken on a CUDA GPU only); SEQMAMBA_CUDA_GRAPHS=0: not."""
    clf = MambaSequenceClassifier(max_epochs=1)
    assert clf._trainer_config(10, 0, False).cuda_graphs is True
    monkeypatch.setenv("SEQMAMBA_CUDA_GRAPHS", "0")
    assert clf._trainer_config(10, 0, False).cuda_graphs is False
