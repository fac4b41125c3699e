"""Training steps replayed from CUDA graphs (TrainerConfig(cuda_graphs=True)) train as eager steps do."""

from __future__ import annotations

import contextlib
import logging

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset
from training_helpers import step_seeing_fusion, weights

from seqmamba import MambaConfig, MambaEncoder
from seqmamba.training import Callback, SupervisedTask, Trainer, TrainerConfig
from seqmamba.training.graphs import GraphedStep, eager_step
from seqmamba.training.optim import build_optimizer, build_scheduler, lr_tensors
from seqmamba.training.state import read_checkpoint, write_checkpoint

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA GPU")


def test_the_eager_step_is_zero_forward_backward_clip_update():
    torch.manual_seed(0)
    a, b = nn.Linear(3, 2), nn.Linear(3, 2)
    b.load_state_dict(a.state_dict())
    opt_a, opt_b = torch.optim.AdamW(a.parameters(), lr=0.1), torch.optim.AdamW(b.parameters(), lr=0.1)
    x = torch.randn(5, 3)
    for _ in range(3):
        _, norm = eager_step(a, lambda m, batch: m(batch).square().mean(), x, opt_a, 0.5, contextlib.nullcontext)
        opt_b.zero_grad(set_to_none=True)
        b(x).square().mean().backward()
        expected = torch.nn.utils.clip_grad_norm_(b.parameters(), 0.5)
        opt_b.step()
        assert torch.equal(norm, expected)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step")  # no optimizer steps here
def test_tensor_learning_rates_follow_the_schedule_and_a_checkpoint(tmp_path):
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    plain = build_optimizer(model, lr=0.1)
    plain_schedule = build_scheduler(plain, warmup_steps=2, total_steps=10)
    tensors = build_optimizer(model, lr=0.1)
    schedule = build_scheduler(tensors, warmup_steps=2, total_steps=10)
    lr_tensors(tensors)
    held = [g["lr"] for g in tensors.param_groups]
    for _ in range(4):
        plain_schedule.step()
        schedule.step()
    for g, p, t in zip(tensors.param_groups, plain.param_groups, held, strict=True):
        assert g["lr"] is t  # filled in place: a graph holding it sees the schedule
        assert float(g["lr"]) == pytest.approx(p["lr"], rel=1e-6)
    write_checkpoint(tmp_path, model, tensors, schedule, {"state": {}}, [({}, {})])
    saved = read_checkpoint(tmp_path / "checkpoint")
    again = build_optimizer(model, lr=0.1)
    again_schedule = build_scheduler(again, warmup_steps=2, total_steps=10)
    again.load_state_dict(saved["optimizer"])
    again_schedule.load_state_dict(saved["scheduler"])
    lr_tensors(again)
    again_schedule.step()
    plain_schedule.step()
    assert float(again.param_groups[0]["lr"]) == pytest.approx(plain.param_groups[0]["lr"], rel=1e-6)


def _regression(n: int = 64) -> TensorDataset:
    x = torch.randn(n, 4)
    return TensorDataset(x, x @ torch.ones(4, 1))


def test_off_cuda_the_switch_trains_eagerly_as_without_it(caplog):
    data = _regression()
    runs = []
    for graphs in (False, True):
        torch.manual_seed(0)
        model = nn.Linear(4, 1)
        config = TrainerConfig(max_epochs=2, batch_size=16, quiet=True, device="cpu", cuda_graphs=graphs)
        with caplog.at_level(logging.DEBUG, logger="seqmamba.training.trainer"):
            Trainer(model, SupervisedTask(nn.functional.mse_loss), data, config=config).fit()
        runs.append(weights(model))
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])
    assert "not on a CUDA device" in caplog.text


def test_graphed_step_on_a_cpu_is_the_eager_step():
    model = nn.Linear(2, 1)
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    step = GraphedStep(model, lambda m, b: m(b).square().mean(), opt, 1.0, contextlib.nullcontext)
    for _ in range(4):
        step(torch.ones(3, 2))
    assert step.captured == {}


def test_graphed_steps_scan_the_two_directions_apart():
    """A replay makes no launches of the host's, so what the fused bidirectional kernels save is moot there, and
    they compile in twice the time: a GraphedStep's steps (eager ones too, so that all run the same kernels) scan
    the directions in two launches. Outside its steps the default is back."""
    from seqmamba.kernels.scan_bidirectional import fuses

    step, seen = step_seeing_fusion()
    step(torch.ones(3, 2))
    assert seen == [False] and fuses(torch.ones(3, 2), "triton")


class _Encoded(nn.Module):
    """A small bidirectional Mamba encoder with a linear read-out: what a DNA classifier trains."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = MambaEncoder(MambaConfig(d_model=16, n_layers=2, d_state=4, bidirectional=True))
        self.head = nn.Linear(16, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (batch, L, 16) -> (batch, 1)
        return self.head(self.encoder(x).mean(1))


class CaptureCounts(Callback):
    """After each step: how many batch shapes the trainer's graphs hold (None: no graphs)."""

    def __init__(self) -> None:
        self.seen: list[int | None] = []

    def on_step_end(self, trainer) -> None:
        step = trainer._graph_step
        self.seen.append(None if step is None else len(step.captured))


@needs_cuda
@pytest.mark.parametrize(("precision", "length"), [("fp32", 64), ("bf16", 64), ("bf16", 8192)])
def test_graphed_training_follows_eager_training_on_a_gpu(precision, length):
    """At L 8,192 a batch holds 2^17 tokens: its layers recompute their scan inputs in the captured backward."""
    torch.manual_seed(0)
    x = torch.randn(96, length, 16)
    data = TensorDataset(x, x.mean((1, 2))[:, None])
    results = []
    for graphs in (False, True):
        torch.manual_seed(0)
        model = _Encoded()
        config = TrainerConfig(max_epochs=3, batch_size=16, lr=1e-3, device="cuda", precision=precision, quiet=True,
                               cuda_graphs=graphs, shuffle=False)
        counts = CaptureCounts()
        Trainer(model, SupervisedTask(nn.functional.mse_loss), data, config=config, callbacks=[counts]).fit()
        results.append((weights(model), counts.seen))
    (eager, no_graphs), (graphed, captures) = results
    assert no_graphs == [None] * 18
    assert captures == [0, 0] + [1] * 16  # 6 batches of one shape an epoch: eager, eager, then replays
    tol = 1e-5 if precision == "fp32" else 2e-2
    for name in eager:
        torch.testing.assert_close(graphed[name], eager[name], atol=tol, rtol=tol, msg=name)


def test_graphed_evaluation_on_a_cpu_is_the_task_metrics_with_the_directions_apart():
    """Off a GPU every call is eager: the task's metrics themselves, under the evaluation's autocast and with a
    bidirectional scan's directions apart, as the graphed steps run them."""
    from seqmamba.kernels.scan_bidirectional import fuses
    from seqmamba.training.graphs import GraphedEvaluation

    seen, entered = [], []

    def metrics(m, b):
        seen.append(fuses(b, "triton"))
        return {"loss": m(b).square().mean()}

    @contextlib.contextmanager
    def autocast():
        entered.append(True)
        yield

    model = nn.Linear(2, 1)
    evaluate = GraphedEvaluation(model, metrics, autocast)
    with torch.no_grad():
        got = evaluate(torch.ones(3, 2))
        assert torch.equal(got["loss"], model(torch.ones(3, 2)).square().mean())
    assert seen == [False] and entered == [True] and evaluate.captured == {}


class EvalCaptures(Callback):
    """At each evaluation: its metrics and how many batch shapes the trainer's evaluation graphs hold."""

    def __init__(self) -> None:
        self.seen: list[tuple[dict, int | None]] = []

    def on_evaluate(self, trainer, metrics) -> None:
        graphs = trainer._graph_eval
        self.seen.append((dict(metrics), None if graphs is None else len(graphs.captured)))


@needs_cuda
def test_graphed_evaluation_follows_eager_evaluation_on_a_gpu():
    """A graphed fit replays its evaluation too: a validation set of 40 (batches of 16, 16 and 8) is captured
    shape by shape (the full batches at the second evaluation, the last at the third), and the metrics follow
    an eager fit's."""
    torch.manual_seed(0)
    x = torch.randn(136, 64, 16)
    y = x.mean((1, 2))[:, None]
    train, val = TensorDataset(x[:96], y[:96]), TensorDataset(x[96:], y[96:])
    results = []
    for graphs in (False, True):
        torch.manual_seed(0)
        model = _Encoded()
        config = TrainerConfig(max_epochs=4, batch_size=16, lr=1e-3, device="cuda", precision="fp32", quiet=True,
                               cuda_graphs=graphs, shuffle=False)
        seen = EvalCaptures()
        Trainer(model, SupervisedTask(nn.functional.mse_loss), train, val_data=val, config=config,
                callbacks=[seen]).fit()
        results.append(seen.seen)
    eager, graphed = results
    assert [n for _, n in eager] == [None] * 4
    assert [n for _, n in graphed] == [0, 1, 2, 2]
    for (e, _), (g, _) in zip(eager, graphed, strict=True):
        assert e.keys() == g.keys()
        for name in e:
            assert g[name] == pytest.approx(e[name], rel=1e-4, abs=1e-6), name
