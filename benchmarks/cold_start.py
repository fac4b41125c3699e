"""Cold start: seconds from a fresh process to a DNA classifier's first optimizer steps on the GPU, and what
each later first (a new length, a bigger model, prediction, a start from a saved encoder) adds.

Run it first on a fresh machine (an empty Triton cache) to see the compile cost a new user pays. Each phase
prints its seconds and how many kernels Triton added to its cache, so compiling and everything else part:

    PYTHONPATH=$PWD python3 benchmarks/cold_start.py [--out cold_start.md]
    SEQMAMBA_COMPILE_AHEAD=0 TRITON_CACHE_DIR=$(mktemp -d) PYTHONPATH=$PWD python3 benchmarks/cold_start.py

(the second: one compile at a time, at each kernel's first launch, as before kernels/compile_ahead.py).
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

START = time.perf_counter()

import numpy as np  # noqa: E402
import torch  # noqa: E402

from seqmamba import MambaSequenceClassifier  # noqa: E402
from seqmamba.kernels.compile_ahead import triton_cache_dir  # noqa: E402


def cache_entries() -> int:
    root = triton_cache_dir()
    return sum(1 for p in root.glob("*") if p.name != "seqmamba_ahead") if root.is_dir() else 0  # not the markers


COMPILES: list[tuple[str, float, list]] = []  # (kernel, seconds, [(stage, seconds)]) of every compile in this process


def listen_to_compiles() -> None:
    """Record each Triton compile (not cache hits) with its stages' seconds, where this Triton has the listener."""
    try:
        from triton import knobs
    except ImportError:
        return

    def listener(*, src, metadata, metadata_group, times, cache_hit) -> None:
        if not cache_hit:
            stages = [(name, us / 1e6) for name, us in times.lowering_stages]
            COMPILES.append((getattr(getattr(src, "fn", None), "__name__", "?"), times.total / 1e6, stages))

    if hasattr(getattr(knobs, "compilation", None), "listener"):
        knobs.compilation.listener = listener


class Warnings(logging.Handler):
    """seqmamba's warnings (a failed CUDA graph capture, say), so that each phase's row shows what went wrong in
    it: a phase that ran eagerly after a failed capture is not the phase the table means."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage().split("\n")[0][:120])


def sequences(n: int, length: int, seed: int) -> tuple[list[str], list[int]]:
    rng = np.random.default_rng(seed)
    return ["".join(rng.choice(list("ACGT"), length)) for _ in range(n)], [i % 2 for i in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes on the CPU: checks that it runs")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")  # compile-ahead notices
    n = 8 if args.smoke else 1  # divides every set's size
    device = "cuda" if torch.cuda.is_available() and not args.smoke else "cpu"
    rows = [("import seqmamba", time.perf_counter() - START, "", "", "")]
    listen_to_compiles()
    warned = Warnings()
    logging.getLogger("seqmamba").addHandler(warned)

    def phase(what: str, fn) -> object:
        before, t0, seen = cache_entries(), time.perf_counter(), len(warned.messages)
        result = fn()
        if device == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
        steps = getattr(result, "n_iter_", "")
        rows.append((what, seconds, cache_entries() - before, steps, "; ".join(warned.messages[seen:])))
        print(f"{what}: {seconds:.1f} s, +{rows[-1][2]} Triton cache entries, steps {steps}", flush=True)
        return result

    X, y = sequences(64 // n, 1000, 0)
    default = dict(max_epochs=1, device=device, random_state=0)  # the README's classifier; 2 steps of batch 32
    phase("first fit (default classifier, L 1,000)", lambda: MambaSequenceClassifier(**default).fit(X, y))
    phase("same fit again", lambda: MambaSequenceClassifier(**default).fit(X, y))
    X3, y3 = sequences(256 // n, 300, 1)
    phase("new length (L 300), 8 steps", lambda: MambaSequenceClassifier(**default).fit(X3, y3))
    big = dict(d_model=128 // n, n_layers=4 // min(n, 4), bidirectional=True, rc_equivariant=True, batch_size=64,
               max_epochs=2, device=device, random_state=0)
    X2, y2 = sequences(640 // n, 200, 2)
    Xd, yd = sequences(613 // n, 200, 3)
    clf = phase("RC-equivariant d128 x 4 at L 200, 2 epochs with dev", lambda: MambaSequenceClassifier(**big).fit(
        X2, y2, eval_set=(Xd, yd)))
    phase("same fit again", lambda: MambaSequenceClassifier(**big).fit(X2, y2, eval_set=(Xd, yd)))
    phase("predict_proba, 613 x 200 bp", lambda: clf.predict_proba(Xd))
    with tempfile.TemporaryDirectory() as tmp:
        clf.save(Path(tmp) / "m")
        phase("fit from that saved encoder (init=)", lambda: MambaSequenceClassifier(
            **big, init=str(Path(tmp) / "m"), encoder_lr_scale=0.25).fit(X2, y2, eval_set=(Xd, yd)))
    name = torch.cuda.get_device_name() if device == "cuda" else "CPU"
    lines = [f"Device: {name}; torch {torch.__version__}. Seconds per phase in one fresh process, and the kernels "
             "Triton compiled (added to its cache) in each.", "",
             "| phase | seconds | kernels compiled | steps | seqmamba's warnings |", "|---|---:|---:|---:|---|"]
    lines += [f"| {what} | {s:.1f} | {n} | {steps} | {said} |" for what, s, n, steps, said in rows]
    if COMPILES:
        lines += ["", f"Triton compiles in this process: {len(COMPILES)}, {sum(c[1] for c in COMPILES):.1f} s in all "
                  "(compiler time per kernel, slowest first; stage seconds from Triton's compilation listener).", "",
                  "| kernel | seconds | stages |", "|---|---:|---|"]
        for kernel, seconds, stages in sorted(COMPILES, key=lambda c: -c[1]):
            lines.append(f"| {kernel} | {seconds:.2f} | {', '.join(f'{n} {t:.2f}' for n, t in stages)} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
