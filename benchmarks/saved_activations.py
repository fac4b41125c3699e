"""What autograd keeps for the backward of one encoder layer, in bytes per token: the activations that bound a
long sequence's training memory. Runs on a CPU: the Triton kernels (the GPU path) under TRITON_INTERPRET=1.

    PYTHONPATH=$PWD python3 benchmarks/saved_activations.py --d-model 64 --length 512

Every tensor saved for the backward is listed once (by storage: views of one buffer count once), parameters and
the input left out, with its shape, dtype and bytes per token, in bf16 autocast as training runs. Tensors whose
size does not change with L (casts of weights, A) are found by a second run at L + 64 and counted apart. The sizes
are the GPU's, which runs the same kernels on the same shapes, except the scan's saved tile states (float32,
(directions, tiles, d_inner, d_state)): the interpreter's tuning saves one every 16 steps, the H100's every 32,
so they are twice the GPU's here.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton is imported: the GPU kernels on the CPU

import torch

from seqmamba import MambaConfig, MambaEncoder
from seqmamba import encoder as encoder_module
from seqmamba.kernels import backend, conv1d, scan, scan_bidirectional
from seqmamba.modules.recompute import ScanInputRecompute


def use_triton() -> None:
    """Send the "auto" backend to Triton on CPU tensors too (the interpreter), as on a GPU."""
    choose = backend.choose_backend

    def triton_first(op, name, device, length, backends=backend.BACKENDS):
        return "triton" if name == "auto" and "triton" in backends else choose(op, name, device, length, backends)

    for module in (scan, conv1d, scan_bidirectional):
        module.choose_backend = triton_first


def saved(d_model: int, length: int, bidirectional: bool, recompute: bool) -> list[tuple[tuple, torch.dtype, int]]:
    """(shape, dtype, bytes) of each distinct storage autograd saves in one layer's bf16 forward. recompute: the
    layer runs as it does on long inputs, its scan inputs recomputed in the backward (else as on short ones)."""
    torch.manual_seed(0)
    encoder = MambaEncoder(MambaConfig(d_model=d_model, n_layers=1, d_state=16, bidirectional=bidirectional))
    x = torch.randn(1, length, d_model, requires_grad=True)  # (batch, L, d_model)
    found: dict[int, tuple[tuple, torch.dtype, int]] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        found.setdefault(storage.data_ptr(), (tuple(t.shape), t.dtype, storage.nbytes()))
        return t

    def pack_in_layer(self: ScanInputRecompute, t: torch.Tensor):  # inside the layer its hooks see every save
        packed = recompute_pack(self, t)
        return pack(t) if packed is t else packed

    recompute_pack = ScanInputRecompute.pack
    encoder_module.RECOMPUTE_MIN_TOKENS = 0 if recompute else 1 << 62
    ScanInputRecompute.pack = pack_in_layer
    try:
        with (torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t),
              torch.autocast("cpu", dtype=torch.bfloat16)):
            encoder(x)
    finally:
        ScanInputRecompute.pack = recompute_pack
    skip = {p.untyped_storage().data_ptr() for p in encoder.parameters()} | {x.untyped_storage().data_ptr()}
    return sorted((v for k, v in found.items() if k not in skip), key=lambda v: -v[2])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--d-model", type=int, default=64)
    parser.add_argument("--length", type=int, default=512)
    parser.add_argument("--causal", action="store_true", help="a causal layer (default: bidirectional)")
    args = parser.parse_args()
    use_triton()
    d_inner = 2 * args.d_model
    print(f"one {'causal' if args.causal else 'bidirectional'} layer, d_model {args.d_model} (d_inner {d_inner}), "
          f"L {args.length}, bf16 autocast; bytes per token (a d_inner-wide bf16 tensor: {2 * d_inner})")
    for recompute in (False, True):
        rows = saved(args.d_model, args.length, not args.causal, recompute)
        longer = saved(args.d_model, args.length + 64, not args.causal, recompute)
        fixed = [r for r in rows if r in longer]  # the same shape at both lengths
        for r in fixed:
            longer.remove(r)
        rows = [r for r in rows if r not in fixed]
        print(f"\n{'scan inputs recomputed (at 2^16 tokens or more)' if recompute else 'all kept (short inputs)'}:\n")
        print("| shape | dtype | bytes per token |\n|---|---|---:|")
        for shape, dtype, nbytes in rows:
            print(f"| {shape} | {str(dtype).removeprefix('torch.')} | {nbytes / args.length:,.0f} |")
        print(f"| all | | {sum(r[2] for r in rows) / args.length:,.0f} |")
        print(f"\nand {len(fixed)} tensors whose size does not change with L: {sum(r[2] for r in fixed):,} bytes")

if __name__ == "__main__":
    main()
