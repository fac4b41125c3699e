"""Training-step benchmark through seqmamba.training.Trainer: one step (forward + backward + AdamW) of the
4-layer d_model 256 bidirectional DNA encoder on one 1,048,576-token sequence, with gradient
checkpointing and bf16 autocast, reporting ms per step, tokens/s and peak GPU memory.

    python benchmarks/train_step.py --out docs/benchmarks/train_step.md   # GPU, the real size
    python benchmarks/train_step.py --smoke --out /tmp/train_step.md      # CPU, tiny: checks that it runs
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset

from seqmamba import MambaConfig
from seqmamba.dna import DNAEncoder
from seqmamba.kernels.scan import triton_usable
from seqmamba.training import Callback, LossTask, Trainer, TrainerConfig, seed_everything

FULL = dict(d_model=256, n_layers=4, d_state=16, length=1_048_576, warmup=3, steps=10)
SMOKE = dict(d_model=16, n_layers=2, d_state=4, length=2048, warmup=1, steps=3)
VOCAB = 5  # A, C, G, T, N


class TokenModel(nn.Module):
    """DNAEncoder + a per-position token head: ids (batch, L) -> logits (batch, L, vocab)."""

    def __init__(self, config: MambaConfig) -> None:
        super().__init__()
        self.encoder = DNAEncoder(config)
        self.head = nn.Linear(config.d_model, VOCAB)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(ids))


class OneSequence(Dataset):
    """The same random sequence ``n`` times: data loading stays out of the way of the step."""

    def __init__(self, length: int, n: int) -> None:
        self.ids = torch.randint(0, 4, (length,), generator=torch.Generator().manual_seed(0))  # (L,)
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.ids


def token_loss(model: nn.Module, ids: torch.Tensor) -> torch.Tensor:
    logits = model(ids)  # (batch, L, vocab)
    return nn.functional.cross_entropy(logits.flatten(0, 1).float(), ids.flatten())


class StepClock(Callback):
    """Wall time of each optimizer step (the device synchronised), and peak memory after warm-up."""

    def __init__(self, warmup: int) -> None:
        self.warmup = warmup
        self.times: list[float] = []
        self.peak_gb: float | None = None
        self._last = 0.0

    def _sync(self, trainer: Trainer) -> None:
        if trainer.device.type == "cuda":
            torch.cuda.synchronize(trainer.device)

    def on_train_start(self, trainer: Trainer) -> None:
        self._sync(trainer)
        self._last = time.perf_counter()

    def on_step_end(self, trainer: Trainer) -> None:
        self._sync(trainer)
        now = time.perf_counter()
        if trainer.state.global_step > self.warmup:
            self.times.append(now - self._last)
        elif trainer.state.global_step == self.warmup and trainer.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(trainer.device)  # Triton compiles in the warm-up steps
        self._last = now

    def on_train_end(self, trainer: Trainer) -> None:
        if trainer.device.type == "cuda":
            self.peak_gb = torch.cuda.max_memory_allocated(trainer.device) / 1e9


def run(sizes: dict, device: str) -> dict:
    seed_everything(0)
    config = MambaConfig(d_model=sizes["d_model"], n_layers=sizes["n_layers"], d_state=sizes["d_state"],
                         bidirectional=True, vocab_size=VOCAB)
    clock = StepClock(sizes["warmup"])
    steps = sizes["warmup"] + sizes["steps"]
    trainer = Trainer(
        TokenModel(config), LossTask(token_loss), OneSequence(sizes["length"], steps),
        config=TrainerConfig(max_epochs=1, max_steps=steps, batch_size=1, device=device,
                             gradient_checkpointing=True, quiet=True),
        callbacks=[clock],
    )
    trainer.fit()
    ms = statistics.median(clock.times) * 1e3
    return dict(ms=ms, tokens_s=sizes["length"] / ms * 1e3, peak_gb=clock.peak_gb, device=trainer.device,
                params=sum(p.numel() for p in trainer.model.parameters()))


def render(result: dict, sizes: dict) -> str:
    device = result["device"]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "CPU"
    backend = "triton" if device.type == "cuda" and triton_usable(device) else "torch (chunked)"
    precision = "bf16 autocast" if device.type == "cuda" else "float32"
    peak = "—" if result["peak_gb"] is None else f"{result['peak_gb']:.2f}"
    return "\n".join([
        f"Device: {name}; torch {torch.__version__}; scan backend: {backend}.",
        "",
        f"One training step through `seqmamba.training.Trainer` (forward, backward, clipping, AdamW, "
        f"schedule): bidirectional `DNAEncoder`, {sizes['n_layers']} layers, d_model {sizes['d_model']}, "
        f"d_state {sizes['d_state']} ({result['params']:,} parameters), per-position token head, batch 1, "
        f"{precision}, gradient checkpointing per block. Median of {sizes['steps']} steps after "
        f"{sizes['warmup']} warm-up steps.",
        "",
        "| L | ms / step | tokens/s | peak memory (GB) |",
        "|---:|---:|---:|---:|",
        f"| {sizes['length']:,} | {result['ms']:.1f} | {result['tokens_s']:,.0f} | {peak} |",
    ]) + "\n"


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny size on the CPU (checks that it runs)")
    parser.add_argument("--out", type=Path, help="also write the markdown table here")
    parser.add_argument("--device", help="default: cuda when available (cpu with --smoke)")
    parser.add_argument("--length", type=int, help="override the sequence length")
    parser.add_argument("--steps", type=int, help="override the number of timed steps")
    args = parser.parse_args(argv)
    sizes = dict(SMOKE if args.smoke else FULL)
    if args.length:
        sizes["length"] = args.length
    if args.steps:
        sizes["steps"] = args.steps
    device = args.device or ("cpu" if args.smoke or not torch.cuda.is_available() else "cuda")
    if device == "cpu" and not args.smoke:
        print("note: no CUDA device; the full size on a CPU takes very long (use --smoke)", file=sys.stderr)
    table = render(run(sizes, device), sizes)
    print(table)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(table, encoding="utf-8")
    return table


if __name__ == "__main__":
    main()
