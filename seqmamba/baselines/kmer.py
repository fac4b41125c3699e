"""k-mer count baselines for DNA classification: `KmerCounter` and a logistic regression on its output."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import MaxAbsScaler

# A, C, G, T (either case, U as T) -> 0..3; every other byte breaks k-mers (N, ambiguity codes).
_CODE = np.full(256, 255, dtype=np.uint8)
for _i, _letters in enumerate(("Aa", "Cc", "Gg", "TtUu")):
    for _ch in _letters:
        _CODE[ord(_ch)] = _i


def kmer_codes(sequence: str, k: int) -> np.ndarray:
    """Index in ``range(4**k)`` of every k-mer made only of A, C, G, T (base 4, first base most significant).

    Example:
        >>> kmer_codes("ACGTN", 2).tolist()   # AC, CG, GT; "TN" is skipped
        [1, 6, 11]
    """
    codes = _CODE[np.frombuffer(sequence.encode("ascii", errors="replace"), dtype=np.uint8)]
    if len(codes) < k:
        return np.zeros(0, dtype=np.int64)
    windows = np.lib.stride_tricks.sliding_window_view(codes, k)  # (n - k + 1, k)
    valid = (windows != 255).all(axis=1)
    weights = 4 ** np.arange(k - 1, -1, -1, dtype=np.int64)
    return (windows[valid].astype(np.int64) @ weights)


class KmerCounter(TransformerMixin, BaseEstimator):
    """DNA strings -> k-mer frequency vectors, a sparse ``(n, 4**k)`` matrix (rows sum to 1).

    Example:
        >>> KmerCounter(k=1).fit_transform(["AACG"]).toarray().tolist()
        [[0.5, 0.25, 0.25, 0.0]]
    """

    def __init__(self, k: int = 6) -> None:
        self.k = k

    def fit(self, X: Sequence[str], y: Any = None) -> KmerCounter:
        if not 1 <= self.k <= 12:
            raise ValueError(f"k must be within 1..12, got {self.k}")
        self.n_features_out_ = 4 ** self.k
        return self

    def transform(self, X: Sequence[str]) -> sparse.csr_matrix:
        rows, cols, vals = [], [], []
        for i, seq in enumerate(X):
            kmers, counts = np.unique(kmer_codes(str(seq), self.k), return_counts=True)
            rows.append(np.full(len(kmers), i))
            cols.append(kmers)
            vals.append(counts / max(1, counts.sum()))
        shape = (len(rows), 4 ** self.k)
        if not rows:
            return sparse.csr_matrix(shape)
        return sparse.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=shape)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        letters = np.array(list("ACGT"))
        idx = np.arange(4 ** self.k)
        digits = [(idx // 4 ** p) % 4 for p in range(self.k - 1, -1, -1)]
        return np.array(["".join(t) for t in zip(*(letters[d] for d in digits))], dtype=object)


def kmer_logistic_regression(k: int = 6, C: float = 1.0, max_iter: int = 2000, random_state: int = 0) -> Pipeline:
    """k-mer frequencies, scaled per feature, into a logistic regression: the baseline to beat.

    Example:
        >>> model = kmer_logistic_regression(k=2).fit(["AAAA", "AAAT", "CCCG", "CGCC"], [0, 0, 1, 1])
        >>> model.predict(["AAAAAA", "CCGCC"]).tolist()
        [0, 1]
    """
    return make_pipeline(KmerCounter(k), MaxAbsScaler(),
                         LogisticRegression(C=C, max_iter=max_iter, random_state=random_state))
