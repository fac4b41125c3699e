"""Predicting many short DNA windows on a GPU: eager forwards against forwards replayed from CUDA graphs.

A classifier's `predict_proba` runs one forward per batch of windows. At short windows the host (Python, torch
dispatch and the kernel launches, a few hundred per forward) takes longer than the GPU's kernels, so the GPU
waits. `seqmamba.inference.GraphedForward` captures the forward of each repeated batch shape once and then
replays it with one launch. This measures both, for the classifier's default size and a larger one:

    PYTHONPATH=$PWD python3 benchmarks/short_inference.py --out short_inference.md

- "forward ms": one batch's forward (median, triton's do_bench): eager, and a graph replay with its input copy.
- "predict": `predict_proba` over all sequences end to end (tokenizing, windows, batches, read back), with and
  without graphs; the two give the same probabilities bit for bit (checked, and said in the table).

The classifiers are fitted for one epoch on a few CPU sequences first (their weights do not matter for speed).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time

import numpy as np
import torch
from report import MarkdownTable
from triton.testing import do_bench

from seqmamba.estimators import MambaSequenceClassifier
from seqmamba.estimators import _base as estimator_base
from seqmamba.inference import GraphedForward

# (d_model, n_layers, batch, window length, sequences to predict)
SIZES = [(64, 2, 32, 256, 8192), (64, 2, 32, 1024, 2048), (256, 4, 64, 256, 8192), (128, 2, 8, 4096, 512)]


class EagerForward:
    """GraphedForward's stand-in that never captures (graphs off)."""

    def __init__(self, model, fn, **_):
        self.model, self.fn = model, fn

    def __call__(self, batch):
        return self.fn(self.model, batch)


def random_dna(rng: np.random.Generator, n: int, length: int) -> list[str]:
    return ["".join(s) for s in rng.choice(list("ACGT"), size=(n, length))]


def fitted(d_model: int, n_layers: int, batch: int, length: int) -> MambaSequenceClassifier:
    """A classifier fitted for one step on a few short sequences on the CPU, then loaded onto the GPU."""
    rng = np.random.default_rng(0)
    seqs = random_dna(rng, 16, 64)
    clf = MambaSequenceClassifier(d_model=d_model, n_layers=n_layers, max_len=length, batch_size=batch,
                                  max_epochs=1, device="cpu", random_state=0)
    clf.fit(seqs, [s.count("A") > 16 for s in seqs])
    with tempfile.TemporaryDirectory() as folder:
        clf.save(folder)
        return MambaSequenceClassifier.load(folder, device="cuda")


def forward_ms(clf: MambaSequenceClassifier, batch: int, length: int) -> tuple[float, float]:
    """One batch's forward: eager ms, replayed ms (median)."""
    model = clf.model_.cuda().eval()
    ids = torch.randint(0, 4, (batch, length), device="cuda")
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}

    def fn(m, b):
        return m(b["input_ids"], b["attention_mask"])

    graphed = GraphedForward(model, fn)
    with torch.inference_mode():
        eager = do_bench(lambda: fn(model, inputs), warmup=25, rep=200, return_mode="median")
        for _ in range(2):
            graphed(inputs)  # eager, then captured
        replay = do_bench(lambda: graphed(inputs), warmup=25, rep=200, return_mode="median")
    return float(eager), float(replay)


def predict_s(clf: MambaSequenceClassifier, seqs: list[str], graphs: bool) -> tuple[float, np.ndarray]:
    estimator_base.GraphedForward = GraphedForward if graphs else EagerForward
    clf.predict_proba(seqs[: 4 * clf.batch_size])  # kernels compiled (and a graph captured) outside the clock
    torch.cuda.synchronize()
    start = time.perf_counter()
    proba = clf.predict_proba(seqs)
    return time.perf_counter() - start, proba


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", help="write the table here too")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("short_inference.py: needs a CUDA GPU (CUDA graphs)")
    table = MarkdownTable(
        args.out, f"Device: {torch.cuda.get_device_name()}; torch {torch.__version__}. float32 inference (predict's "
        "precision); forward ms per batch (median); predict = `predict_proba` over all sequences, seconds.",
        ["d_model", "layers", "batch", "L", "sequences", "forward ms eager / graph", "predict s eager / graph",
         "windows/s eager / graph", "speed-up", "same output"], "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    rng = np.random.default_rng(1)
    for d_model, n_layers, batch, length, n in SIZES:
        clf = fitted(d_model, n_layers, batch, length)
        eager_ms, replay_ms = forward_ms(clf, batch, length)
        seqs = random_dna(rng, n, length)
        eager_s, eager_p = predict_s(clf, seqs, graphs=False)
        graph_s, graph_p = predict_s(clf, seqs, graphs=True)
        table.add(d_model, n_layers, batch, f"{length:,}", f"{n:,}", f"{eager_ms:.2f} / {replay_ms:.2f}",
                  f"{eager_s:.2f} / {graph_s:.2f}", f"{n / eager_s:,.0f} / {n / graph_s:,.0f}",
                  f"{eager_s / graph_s:.2f}x", "yes" if np.array_equal(eager_p, graph_p) else "NO")
    estimator_base.GraphedForward = GraphedForward


if __name__ == "__main__":
    main()
