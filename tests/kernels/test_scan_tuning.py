"""kernels/scan_tuning.py: the knobs as frozen presets, one per architecture, picked by the device."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from seqmamba.kernels import scan_tuning
from seqmamba.kernels.scan_tuning import DEFAULT, HOPPER, INTERPRETER, ScanTuning, preset


def test_a_preset_is_frozen_and_changed_only_by_replace():
    with pytest.raises(dataclasses.FrozenInstanceError):
        HOPPER.block_d = 32
    smaller = dataclasses.replace(HOPPER, block_d=32)
    assert (smaller.block_d, HOPPER.block_d) == (32, 64)
    assert dataclasses.replace(HOPPER) == HOPPER and hash(dataclasses.replace(HOPPER)) == hash(HOPPER)


@pytest.mark.parametrize("bad", [-1, 1.5, "64", None])
def test_a_knob_is_a_non_negative_int(bad):
    with pytest.raises(ValueError, match="block_d must be a non-negative int"):
        dataclasses.replace(HOPPER, block_d=bad)


def test_the_interpreter_preset_differs_only_in_its_test_sized_tiles():
    names = [f.name for f in dataclasses.fields(ScanTuning)]
    changed = {name for name in names if getattr(INTERPRETER, name) != getattr(DEFAULT, name)}
    assert changed == {"block_l", "bwd_block_l", "carry_block_chunks"}


@pytest.fixture
def gpu(monkeypatch):
    """Outside the interpreter, with a setter for the CUDA device's capability (and ROCm's version)."""
    monkeypatch.setattr(scan_tuning, "interpreting", lambda: False)

    def with_capability(capability: tuple[int, int], hip: str | None = None) -> None:
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index=None: capability)
        monkeypatch.setattr(torch.version, "hip", hip)
        scan_tuning._gpu_preset.cache_clear()  # the capability is read once per device

    yield with_capability
    scan_tuning._gpu_preset.cache_clear()


def test_hopper_on_sm90_default_on_other_gpus_and_on_rocm(gpu):
    cuda = torch.device("cuda", 0)
    gpu((9, 0))
    assert preset(cuda) is HOPPER
    for capability in ((8, 0), (8, 9), (10, 0), (12, 0)):
        gpu(capability)
        assert preset(cuda) is DEFAULT, capability
    gpu((9, 4), hip="6.2")  # an MI300 reports its gfx942 as (9, 4)
    assert preset(cuda) is DEFAULT
    gpu((9, 0), hip="6.2")
    assert preset(cuda) is DEFAULT
    assert preset(torch.device("cpu")) is DEFAULT


def test_the_interpreter_takes_its_own_preset(monkeypatch):
    monkeypatch.setattr(scan_tuning, "interpreting", lambda: True)
    assert preset(torch.device("cpu")) is INTERPRETER
