"""Experiment: the one-pass forward with tiles across a warp's lanes (kernels/scan_triton_lanes.py) against the
Triton forward in use, on the benchmark shapes (GPU only). Prints one line per variant.

    PYTHONPATH=$PWD python3 benchmarks/scan_lanes.py

Variants: channels per program (BLOCK_D), lanes per channel (LANES), warps, bf16 B and C read as words, and at
S2 the number of chunks (the lane kernel then starts each chunk from zeros: its own time only, without the
summary pass a chunked run needs). err: max |lanes - current| / max |current| of the single-chunk output.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import triton
import triton.language as tl
from triton.testing import do_bench

sys.path.insert(0, str(Path(__file__).parent))
from scan import GPU_SHAPES, make_inputs

from seqmamba.kernels import selective_scan
from seqmamba.kernels.scan_triton_lanes import scan_lanes_kernel

VARIANTS = [(1, 32, 1), (2, 32, 2), (4, 32, 4), (8, 32, 8), (2, 16, 1), (4, 8, 1)]  # (BLOCK_D, LANES, warps)


def lanes_call(x: dict, block_d: int, lanes: int, warps: int, words: bool, n_chunks: int = 1, reverse: bool = False):
    """A launcher of the lane kernel on inputs x, and its output tensor."""
    u, delta, A, B, C, D, z, bias = (x[k] for k in ("u", "delta", "A", "B", "C", "D", "z", "delta_bias"))
    batch, dim, length = u.shape
    d_state = A.shape[1]
    vec = 16 // u.element_size()
    n_tiles = triton.cdiv(length, lanes * vec)
    tiles_per_chunk = triton.cdiv(n_tiles, n_chunks)
    n_chunks = triton.cdiv(n_tiles, tiles_per_chunk)
    enter = torch.zeros(batch, dim, n_chunks, d_state, device=u.device)
    out = torch.empty_like(u)
    last = torch.empty(batch, dim, d_state, device=u.device)
    A2 = (A.float() * 1.4426950408889634).contiguous()
    blocks = triton.cdiv(dim, block_d)

    def run():
        enter.zero_()  # the kernel carries its states in ENTER
        scan_lanes_kernel[(batch, blocks, n_chunks)](
            u, delta, A2, B[:, None], C[:, None], D, z, bias, enter, out, last,
            dim, length, d_state, 1, dim, blocks, n_tiles, tiles_per_chunk, n_chunks,
            HAS_D=True, HAS_Z=True, HAS_BIAS=True, SOFTPLUS=1, STORE_LAST=n_chunks == 1, REVERSE=reverse,
            BC_WORDS=words, ACC=tl.float32, BLOCK_D=block_d, LANES=lanes, VEC=vec, BLOCK_N=16,
            num_warps=warps, enable_fp_fusion=True)

    return run, out


def ms(fn) -> float:
    return float(do_bench(fn, warmup=25, rep=200, return_mode="median"))


def main() -> None:
    device = torch.device("cuda")
    print(torch.cuda.get_device_name(), torch.__version__, triton.__version__, flush=True)
    for name, (batch, dim, length) in GPU_SHAPES.items():
        for dtype in (torch.bfloat16, torch.float32):
            x = make_inputs(batch, dim, length, 16, dtype, device)
            with torch.no_grad():
                ref = selective_scan(**x, delta_softplus=True, backend="triton")
                ref_rev = selective_scan(**x, delta_softplus=True, backend="triton", reverse=True)
                t_ref = ms(lambda x=x: selective_scan(**x, delta_softplus=True, backend="triton"))
                t_rev = ms(lambda x=x: selective_scan(**x, delta_softplus=True, backend="triton", reverse=True))
            print(f"{name} {str(dtype)[6:]} current fwd {t_ref:.3f} rev {t_rev:.3f}", flush=True)
            for block_d, lanes, warps in VARIANTS:
                for words in (False, True) if dtype == torch.bfloat16 else (False,):
                    for chunks in [1, 4, 8, 16] if name == "S2" else [1]:
                        run, out = lanes_call(x, block_d, lanes, warps, words, chunks)
                        run()
                        err = float("nan")
                        if chunks == 1:
                            err = ((out.float() - ref.float()).abs().max() / ref.float().abs().max()).item()
                        t = ms(run)
                        print(f"  lanes BLOCK_D {block_d} LANES {lanes} warps {warps} words {int(words)} "
                              f"chunks {chunks}: {t:.3f} ms (x{t_ref / t:.2f}) err {err:.1e}", flush=True)
            run, out = lanes_call(x, 1, 32, 1, dtype == torch.bfloat16, 1, reverse=True)
            run()
            err = ((out.float() - ref_rev.float()).abs().max() / ref_rev.float().abs().max()).item()
            print(f"  reverse lanes 1/32/1: {ms(run):.3f} ms err {err:.1e}", flush=True)
            del x


if __name__ == "__main__":
    main()
