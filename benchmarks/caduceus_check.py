"""Caduceus checkpoints on a device: the golden outputs of Caduceus's code, and the speed of a published size.

1. Loads each directory of tests/data/caduceus/ with `seqmamba.load_caduceus` on ``--device`` and prints the
   largest error of the last hidden states and MLM logits against Caduceus's own (float32).
2. Unless ``--no-speed``: a Caduceus-PS of the published size (d_model 256, 16 layers, d_state 16, random
   weights: the speed does not depend on them) embeds one window of ``--length`` bases, float32 and bf16
   autocast; prints the forward time and the peak memory.

    PYTHONPATH=. python3 benchmarks/caduceus_check.py --device cuda
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

from seqmamba import MambaConfig, load_caduceus
from seqmamba.caduceus import TO_CADUCEUS, from_caduceus_ids, rcps_hidden, seqmamba_complement
from seqmamba.dna import DNAEncoder

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "caduceus"


def goldens(device: str) -> float:
    worst = 0.0
    for directory in sorted(p for p in DATA.iterdir() if p.is_dir()):
        golden = load_file(directory / "golden.safetensors")
        model, _ = load_caduceus(directory, device=device)
        ids = from_caduceus_ids(golden["input_ids"]).to(device)
        with torch.no_grad():
            hidden = rcps_hidden(model.encoder, ids) if model.config.rc_equivariant else model.encoder(ids)
            logits = model(ids, torch.ones_like(ids))
        errors = []
        for got, want in ((hidden, golden["last_hidden_state"]), (logits, golden["logits"][..., TO_CADUCEUS])):
            errors.append(((got.cpu() - want).abs().max() / want.abs().max()).item())
        worst = max(worst, *errors)
        print(f"{directory.name:12s} {device}: max rel. error hidden {errors[0]:.1e}, logits {errors[1]:.1e}")
    return worst


def speed(device: str, length: int, repeats: int) -> None:
    config = MambaConfig(d_model=256, n_layers=16, d_state=16, bidirectional=True, vocab_size=10,
                         rc_equivariant=True, rc_strand_swap=True, complement_map=seqmamba_complement())
    model = DNAEncoder(config).to(device).eval()
    ids = torch.randint(1, 5, (1, length), device=device)
    for label, autocast in (("float32", False), ("bf16 autocast", True)):
        with torch.inference_mode(), torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16,
                                                    enabled=autocast):
            model(ids)  # compiles the Triton kernels once
            if device.startswith("cuda"):
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            start = time.perf_counter()
            for _ in range(repeats):
                model(ids)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            seconds = (time.perf_counter() - start) / repeats
        peak = torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else float("nan")
        print(f"Caduceus-PS d_model 256, 16 layers, L {length:,}, {label}: {seconds * 1e3:.1f} ms per forward"
              f" (both strands), {length / seconds:,.0f} bases/s, peak {peak:.2f} GiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--length", type=int, default=131_072)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-speed", action="store_true")
    args = parser.parse_args()
    worst = goldens(args.device)
    if not args.no_speed:
        speed(args.device, args.length, args.repeats)
    raise SystemExit(0 if worst < 1e-4 else 1)


if __name__ == "__main__":
    main()
