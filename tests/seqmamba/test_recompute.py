"""ScanInputRecompute: a layer whose scan inputs the backward recomputes trains exactly as one that keeps them."""

from __future__ import annotations

import pytest
import torch

from seqmamba import MambaConfig, MambaEncoder
from seqmamba import encoder as encoder_module
from seqmamba.dna import DNAEncoder
from seqmamba.kernels import backend, conv1d, scan, scan_bidirectional
from seqmamba.modules.recompute import ScanInputRecompute, active

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture
def triton_device(monkeypatch) -> str:
    """Where the GPU's kernels (the Triton scan and conv) run: on a GPU, or on a CPU under the interpreter."""
    if torch.cuda.is_available():
        return "cuda"
    choose = backend.choose_backend

    def triton_first(op, name, device, length, backends=backend.BACKENDS):
        return "triton" if name == "auto" else choose(op, name, device, length, backends)

    for module in (scan, conv1d, scan_bidirectional):
        monkeypatch.setattr(module, "choose_backend", triton_first)
    return "cpu"


def gradients(model, run, recompute: bool, monkeypatch) -> list[torch.Tensor]:
    monkeypatch.setattr(encoder_module, "RECOMPUTE_MIN_TOKENS", 0 if recompute else 1 << 62)
    model.zero_grad(set_to_none=True)
    run().float().square().sum().backward()
    return [p.grad.clone() for p in model.parameters() if p.grad is not None]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize("bf16", [False, True])
def test_recomputed_scan_inputs_give_the_kept_ones_gradients_bit_for_bit(device, bidirectional, bf16, monkeypatch):
    assert_same_gradients(device, bidirectional, bf16, 2, 80, 32, monkeypatch)


def test_under_the_gpu_kernels_too(triton_device, monkeypatch):
    """The Triton scan and conv (the interpreter's on a CPU): bidirectional in bf16, the training setting."""
    assert_same_gradients(triton_device, True, True, 1, 24, 16, monkeypatch)


def assert_same_gradients(device: str, bidirectional: bool, bf16: bool, n_layers: int, length: int, d_model: int,
                          monkeypatch) -> None:
    torch.manual_seed(0)
    config = MambaConfig(d_model=d_model, n_layers=n_layers, d_state=8, bidirectional=bidirectional)
    model = MambaEncoder(config).to(device)
    x = torch.randn(2, length, d_model, device=device)  # (batch, L, d_model)
    mask = torch.ones(2, length, device=device)
    mask[1, :7] = 0  # a padded row: the recomputed conv output is masked as the kept one was

    def run():
        with torch.autocast(device, dtype=torch.bfloat16, enabled=bf16):
            return model(x, mask)

    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)  # the GPU scan's backward without atomics
    try:
        kept, again = (gradients(model, run, r, monkeypatch) for r in (False, True))
    finally:
        torch.use_deterministic_algorithms(deterministic)
    assert len(kept) == len(again) == len(list(model.parameters()))
    for a, b in zip(kept, again, strict=True):
        assert torch.equal(a, b)


def test_the_rc_equivariant_stack_recomputes_too(monkeypatch):
    torch.manual_seed(0)
    config = MambaConfig(d_model=16, n_layers=2, d_state=4, bidirectional=True, rc_equivariant=True,
                         rc_strand_swap=True, vocab_size=12, complement_map=[0, 1, 2, 3, 4, 5, 6, 10, 9, 8, 7, 11])
    model = DNAEncoder(config)
    ids = torch.randint(7, 11, (2, 40))
    made = []
    take = ScanInputRecompute.unpack

    def counting(packed):
        if not isinstance(packed, torch.Tensor):
            made.append(packed)
        return take(packed)

    kept = gradients(model, lambda: model(ids), False, monkeypatch)
    monkeypatch.setattr(ScanInputRecompute, "unpack", staticmethod(counting))
    again = gradients(model, lambda: model(ids), True, monkeypatch)
    assert made  # the backward did take recomputed tensors
    for a, b in zip(kept, again, strict=True):
        assert torch.equal(a, b)


def test_a_bidirectional_layer_keeps_neither_branch_conv_output_nor_delta(triton_device, monkeypatch):
    """What the layer saves under the GPU's kernels, by shape: of its 7 (d_inner, L) tensors, the conv input, z and
    the gated y (kept transposed, by out_proj) stay (benchmarks/saved_activations.py lists them)."""
    torch.manual_seed(0)
    d_inner, length = 64, 40
    model = MambaEncoder(MambaConfig(d_model=32, n_layers=1, d_state=8, bidirectional=True)).to(triton_device)
    x = torch.randn(1, length, 32, device=triton_device, requires_grad=True)

    def wide(t: torch.Tensor) -> bool:
        return sorted(t.shape[-2:]) == sorted((d_inner, length))

    def wide_storages(recompute: bool) -> int:
        monkeypatch.setattr(encoder_module, "RECOMPUTE_MIN_TOKENS", 0 if recompute else 1 << 62)
        seen = set()
        original = ScanInputRecompute.pack

        def pack(self, t):
            packed = original(self, t)
            if packed is t and wide(t):
                seen.add(t.untyped_storage().data_ptr())
            return packed

        def outer(t):
            if wide(t):
                seen.add(t.untyped_storage().data_ptr())
            return t

        monkeypatch.setattr(ScanInputRecompute, "pack", pack)
        with torch.autograd.graph.saved_tensors_hooks(outer, lambda t: t):
            model(x)
        monkeypatch.setattr(ScanInputRecompute, "pack", original)
        return len(seen)

    assert (wide_storages(False), wide_storages(True)) == (7, 3)


def test_no_context_outside_a_long_training_forward(monkeypatch):
    seen = []
    model = MambaEncoder(MambaConfig(d_model=16, n_layers=1, d_state=4))
    model.layers[0].mixer.ssm.register_forward_pre_hook(lambda *_: seen.append(active()))
    x = torch.randn(1, 20, 16)
    model(x)  # short: below RECOMPUTE_MIN_TOKENS
    with torch.no_grad():
        monkeypatch.setattr(encoder_module, "RECOMPUTE_MIN_TOKENS", 0)
        model(x)  # inference keeps nothing anyway
    model.gradient_checkpointing = True
    model(x)  # the whole layer is recomputed: its own hooks, none of ours inside them
    model.gradient_checkpointing = False
    model(x)
    assert seen[:3] == [None, None, None]
    assert isinstance(seen[3], ScanInputRecompute)
    assert active() is None


def test_a_recomputed_set_is_made_once_per_backward_and_freed():
    x = torch.randn(3, 4, requires_grad=True)
    calls = []

    def again():
        calls.append(1)
        return (torch.tanh(x.detach()),)

    with ScanInputRecompute() as recompute:
        h = torch.tanh(x)
        recompute.register(again, h)
        loss = (h * h).sum() + h.exp().sum()  # three nodes keep h
    loss.backward(retain_graph=True)
    assert len(calls) == 1
    expected = x.grad.clone()
    x.grad = None
    loss.backward()  # a second backward makes it again
    assert len(calls) == 2
    assert torch.equal(x.grad, expected)
