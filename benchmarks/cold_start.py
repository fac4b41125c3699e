"""Cold start: seconds from a fresh process to a DNA classifier's first optimizer steps on the GPU.

Run it first on a fresh machine (an empty Triton cache) to see the compile cost a new user pays, and
again to see the warm cost. Prints one line per phase and how many kernels Triton compiled.

    PYTHONPATH=$PWD python3 benchmarks/cold_start.py
"""

from __future__ import annotations

import os
import time
from pathlib import Path

START = time.perf_counter()

import numpy as np  # noqa: E402
import torch  # noqa: E402

from seqmamba import MambaSequenceClassifier  # noqa: E402


def cache_entries() -> int:
    root = Path(os.environ.get("TRITON_CACHE_DIR", Path.home() / ".triton" / "cache"))
    return sum(1 for _ in root.glob("*")) if root.is_dir() else 0


def main() -> None:
    imported = time.perf_counter() - START
    rng = np.random.default_rng(0)
    X = ["".join(rng.choice(list("ACGT"), 1000)) for _ in range(64)]
    y = [i % 2 for i in range(64)]
    before = cache_entries()
    t0 = time.perf_counter()
    # the README's default classifier; one epoch of 2 steps (batch 32)
    MambaSequenceClassifier(max_epochs=1, device="cuda" if torch.cuda.is_available() else "cpu",
                            random_state=0).fit(X, y)
    first = time.perf_counter() - t0
    t1 = time.perf_counter()
    MambaSequenceClassifier(max_epochs=1, device="cuda" if torch.cuda.is_available() else "cpu",
                            random_state=0).fit(X, y)
    second = time.perf_counter() - t1
    print(f"import {imported:.1f} s; first fit (2 steps, compiles) {first:.1f} s; second fit {second:.1f} s; "
          f"Triton cache entries {before} -> {cache_entries()}", flush=True)


if __name__ == "__main__":
    main()
