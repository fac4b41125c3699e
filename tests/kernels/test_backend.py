"""kernels/backend.py: the one function that picks the backend of every scan call."""

from __future__ import annotations

import pytest
import torch
from scan_cases import Case

from seqmamba.kernels import (
    ScanDirection,
    depthwise_conv1d,
    selective_scan,
    selective_scan_bidirectional,
    selective_state_update,
)
from seqmamba.kernels import backend as backend_module
from seqmamba.kernels.backend import CPU_SHORT_LENGTH, choose_backend

CPU = torch.device("cpu")


@pytest.mark.parametrize(("length", "expected"), [(1, "reference"), (CPU_SHORT_LENGTH, "reference"),
                                                  (CPU_SHORT_LENGTH + 1, "torch")])
def test_auto_on_a_cpu_is_the_recurrence_for_short_sequences(length, expected):
    assert choose_backend("selective_scan", "auto", CPU, length) == expected


def test_auto_on_cuda_tensors_is_triton_where_it_runs(monkeypatch):
    cuda = torch.device("cuda", 0)
    monkeypatch.setattr(backend_module, "triton_usable", lambda device: True)
    assert choose_backend("selective_scan", "auto", cuda, 1) == "triton"
    monkeypatch.setattr(backend_module, "triton_usable", lambda device: False)
    assert choose_backend("selective_scan", "auto", cuda, 1) == "torch"


def test_an_operation_without_a_torch_backend_takes_the_reference_on_a_cpu():
    """depthwise_conv1d has only the reference and Triton: "auto" never gives it "torch", and "torch" is refused."""
    conv = ("auto", "reference", "triton")
    assert choose_backend("depthwise_conv1d", "auto", CPU, CPU_SHORT_LENGTH + 100, conv) == "reference"
    with pytest.raises(ValueError, match=r"^depthwise_conv1d: backend must be one of"):
        choose_backend("depthwise_conv1d", "torch", CPU, 5, conv)


def test_a_named_backend_is_taken_as_it_is_or_refused_by_name(monkeypatch):
    assert choose_backend("selective_scan", "torch", CPU, 5) == "torch"
    assert choose_backend("selective_scan", "reference", CPU, 500) == "reference"
    with pytest.raises(ValueError, match=r"^selective_scan_bidirectional: backend must be one of"):
        choose_backend("selective_scan_bidirectional", "cuda", CPU, 5)
    monkeypatch.setattr(backend_module, "triton_usable", lambda device: False)
    with pytest.raises(ValueError, match=r"^selective_scan: backend='triton' needs CUDA tensors .* on cpu"):
        choose_backend("selective_scan", "triton", CPU, 5)


def test_every_entry_point_asks_choose_backend(monkeypatch):
    """selective_scan, selective_scan_bidirectional (and its fuses), selective_state_update and depthwise_conv1d
    all take their backend from choose_backend: none decides on its own."""
    import seqmamba.kernels.conv1d as conv1d_module
    import seqmamba.kernels.scan as scan_module
    import seqmamba.kernels.scan_bidirectional as bidirectional_module
    import seqmamba.kernels.state_update as state_update_module

    asked = []

    def spy(op, backend, device, length, *backends):
        asked.append((op, backend, length))
        return "reference"

    for module in (scan_module, bidirectional_module, state_update_module, conv1d_module):
        monkeypatch.setattr(module, "choose_backend", spy)
    case = Case(length=9, has_h0=False)
    x = {k: v.detach() if v is not None else None for k, v in case.inputs(device=CPU).items()}
    selective_scan(**{k: x[k] for k in ("u", "delta", "A", "B", "C")}, backend="auto")
    direction = ScanDirection(x["u"], x["delta"], x["A"], x["B"], x["C"])
    selective_scan_bidirectional(direction, direction, backend="auto")
    state = torch.zeros(2, case.dim, case.d_state, dtype=torch.float64)
    selective_state_update(state, x["u"][..., 0], x["delta"][..., 0], x["A"], x["B"][..., 0], x["C"][..., 0])
    depthwise_conv1d(x["u"], torch.ones(case.dim, 4, dtype=torch.float64), backend="auto")
    assert [(op, backend) for op, backend, _length in asked] == [
        ("selective_scan", "auto"),
        ("selective_scan_bidirectional", "auto"),
        ("selective_scan", "reference"), ("selective_scan", "reference"),  # the two scans of the unfused path
        ("selective_state_update", "auto"),
        ("depthwise_conv1d", "auto"),
    ]
    assert asked[-2][2] == 1  # a recurrent step is one position

