"""Weight-decay groups, the warm-up + cosine schedule, device selection."""

import itertools
import math

import pytest
import torch

from seqmamba import MambaConfig
from seqmamba.dna import DNAEncoder
from seqmamba.training import WarmupCosine, build_optimizer, build_scheduler, param_groups, resolve_device


def test_decay_groups_follow_the_mamba_convention():
    model = DNAEncoder(MambaConfig(d_model=8, n_layers=1, d_state=4, vocab_size=5, bias=True))
    decay, no_decay = param_groups(model, weight_decay=0.1)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    undecayed = set(no_decay["param_names"])
    assert {"embedding.weight", "encoder.norm_f.weight", "encoder.layers.0.norm.weight",
            "encoder.layers.0.mixer.ssm.A_log", "encoder.layers.0.mixer.ssm.D",
            "encoder.layers.0.mixer.ssm.dt_proj.bias", "encoder.layers.0.mixer.in_proj.bias"} <= undecayed
    assert set(decay["param_names"]) == {
        "encoder.layers.0.mixer.in_proj.weight", "encoder.layers.0.mixer.ssm.conv1d.weight",
        "encoder.layers.0.mixer.ssm.x_proj.weight", "encoder.layers.0.mixer.ssm.dt_proj.weight",
        "encoder.layers.0.mixer.out_proj.weight"}
    assert len(undecayed) + len(decay["param_names"]) == len(list(model.parameters()))


def test_modules_can_list_their_own_no_decay_parameters():
    class Custom(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.table = torch.nn.Parameter(torch.zeros(3, 3))
            self.proj = torch.nn.Linear(3, 3, bias=False)

        def no_weight_decay(self):
            return {"table"}

    (decay, no_decay) = param_groups(Custom(), 0.1)
    assert decay["param_names"] == ["proj.weight"] and no_decay["param_names"] == ["table"]


def test_frozen_parameters_are_left_out():
    model = torch.nn.Linear(3, 3)
    model.bias.requires_grad_(False)
    assert [g["param_names"] for g in param_groups(model, 0.1)] == [["weight"]]


def test_schedule_warms_up_then_follows_the_cosine():
    opt = build_optimizer(torch.nn.Linear(2, 2), lr=1.0)
    sched = build_scheduler(opt, warmup_steps=4, total_steps=14, min_lr_ratio=0.1)
    lrs = []
    for _ in range(14):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert lrs[4] == pytest.approx(1.0)
    assert lrs[9] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert all(a >= b for a, b in itertools.pairwise(lrs[4:]))
    assert WarmupCosine(4, 14, 0.1)(14) == pytest.approx(0.1)


def test_cosine_needs_a_length():
    opt = build_optimizer(torch.nn.Linear(2, 2), lr=1.0)
    with pytest.raises(ValueError, match="max_steps"):
        build_scheduler(opt, 0, None)
    assert build_scheduler(opt, 2, None, schedule="constant").lr_lambdas[0](100) == 1.0


def test_device_selection():
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="'auto', 'cpu'"):
        resolve_device("gpu-please")
    if torch.cuda.is_available():
        assert resolve_device("auto").type == "cuda"
        with pytest.raises(ValueError, match="CUDA device"):
            resolve_device(f"cuda:{torch.cuda.device_count()}")
    else:
        assert resolve_device("auto") == torch.device("cpu")
        with pytest.raises(ValueError, match="not available"):
            resolve_device("cuda:0")


def test_lr_scale_gives_a_parameter_its_own_learning_rate():
    model = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Linear(3, 2))
    for param in model[1].parameters():
        param._lr_scale = 0.1
    groups = param_groups(model, 0.01, lr=2e-3)
    assert [(g["param_names"], g["weight_decay"], g.get("lr")) for g in groups] == [
        (["0.weight"], 0.01, None), (["0.bias"], 0.0, None),
        (["1.weight"], 0.01, pytest.approx(2e-4)), (["1.bias"], 0.0, pytest.approx(2e-4))]
    opt = build_optimizer(model, lr=2e-3)
    sched = build_scheduler(opt, warmup_steps=0, total_steps=10)
    for _ in range(5):
        opt.step()
        sched.step()
    ratios = [g["lr"] / opt.param_groups[0]["lr"] for g in opt.param_groups]
    assert ratios == pytest.approx([1, 1, 0.1, 0.1])  # the schedule scales every group alike
    with pytest.raises(ValueError, match="base lr"):
        param_groups(model, 0.01)
