"""A labelled long-DNA task that k-mer counts cannot solve: which of two motifs comes first.

Every sequence is random background (A and C by default) with motif A (32 G) planted once and motif B
(32 T) planted once, one near the
start and the other near the end, so they lie about half a sequence (a thousand bases and more) apart.
The label says which one comes first. Both classes hold the same motifs once each, so k-mer counts
carry no signal (only the junctions with random background differ, and those are random too); a model
must relate positions far apart. The background leaves out the motifs' bases so that spotting a motif is
easy and the task measures the long-range part alone; pass ``background="ACGT"`` for a harder one.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

import numpy as np

from .atomic import atomic_output

MOTIF_A = "G" * 32
MOTIF_B = "T" * 32
BACKGROUND = "AC"
LABELS = ("A_first", "B_first")


def motif_order_task(
    n: int, length: tuple[int, int] = (2000, 3000), seed: int = 0,
    motifs: tuple[str, str] = (MOTIF_A, MOTIF_B), background: str = BACKGROUND,
) -> tuple[list[str], list[str]]:
    """``n`` sequences of uniform random length in ``length`` and their labels (balanced).

    The first motif starts within the first quarter's middle (5-20 % of the length), the second within
    80-95 %.

    Example:
        >>> X, y = motif_order_task(4, length=(300, 300), seed=1)
        >>> len(X[0]), sorted(set(y)) == sorted(LABELS)
        (300, True)
        >>> all(MOTIF_A in s and MOTIF_B in s for s in X)
        True
    """
    if n < 2:
        raise ValueError(f"need n >= 2 sequences, got {n}")
    lo, hi = length
    shortest = 4 * sum(len(m) for m in motifs)
    if lo < shortest or hi < lo:
        raise ValueError(f"length must be (lo, hi) with {shortest} <= lo <= hi, got {length}")
    rng = np.random.default_rng(seed)
    labels = np.array([i % 2 for i in range(n)])
    rng.shuffle(labels)
    bases = np.frombuffer(background.encode("ascii"), dtype=np.uint8)
    sequences = []
    for label in labels:
        size = int(rng.integers(lo, hi + 1))
        seq = bases[rng.integers(0, len(bases), size)].copy()
        first, second = (motifs[0], motifs[1]) if label == 0 else (motifs[1], motifs[0])
        p1 = int(rng.integers(int(0.05 * size), int(0.20 * size) - len(first) + 1))
        p2 = int(rng.integers(int(0.80 * size), int(0.95 * size) - len(second) + 1))
        seq[p1:p1 + len(first)] = np.frombuffer(first.encode(), dtype=np.uint8)
        seq[p2:p2 + len(second)] = np.frombuffer(second.encode(), dtype=np.uint8)
        sequences.append(seq.tobytes().decode("ascii"))
    return sequences, [LABELS[i] for i in labels]


def write_fasta(path: str | os.PathLike, names: Iterable[str], sequences: Sequence[str], width: int = 80) -> None:
    """Write records as FASTA (atomically), ``width`` bases per line."""
    with atomic_output(path) as out:
        for name, seq in zip(names, sequences, strict=True):
            out.write(f">{name}\n")
            out.write("\n".join(seq[i:i + width] for i in range(0, len(seq), width)) + "\n")
