"""Windows over DNA strings and batches of them, for the estimators.

A sequence longer than ``max_len`` is cut into windows (every ``stride`` bases; the last one is kept
shorter), so any length, a whole chromosome included, goes through a model with bounded memory: only
one batch of windows is ever tokenized and on the device. Batches group windows of similar length, so
padding stays rare (the models mask it out of every layer, so it costs only compute).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..datasets.windows import tile
from ..errors import InputError
from ..tokenizers.dna import CLS, PAD, DNATokenizer


def check_sequences(X: object, what: str = "X") -> list[str]:
    """X as a list of DNA strings; TypeError/InputError for anything else (sklearn-style checks)."""
    if isinstance(X, (str, bytes)):
        raise TypeError(f"{what} must be a list of sequences, not a single string; wrap it: [{what}]")
    if hasattr(X, "columns") and hasattr(X, "shape"):  # a pandas / polars DataFrame: its one column
        if X.shape[1] != 1:
            raise TypeError(f"{what} is a table of {X.shape[1]} columns: pass its sequence column alone")
        X = X[X.columns[0]]  # iterating the frame itself would give its column names
    if hasattr(X, "to_list"):  # pandas / polars Series
        X = X.to_list()
    elif isinstance(X, np.ndarray):
        if X.ndim == 2 and X.shape[1] == 1:  # a one-column frame turned array
            X = X[:, 0]
        if X.ndim != 1:
            raise TypeError(f"{what} must be 1-D (one sequence per row), got shape {X.shape}")
        X = X.tolist()
    try:
        sequences = list(X)  # type: ignore[call-overload]
    except TypeError:
        raise TypeError(f"{what} must be a list of DNA strings, got {type(X).__name__}") from None
    if not sequences:
        raise InputError(f"{what} is empty: need at least one sequence")
    out = []
    for i, seq in enumerate(sequences):
        if isinstance(seq, bytes):
            seq = seq.decode("ascii", errors="replace")
        if not isinstance(seq, str):
            raise TypeError(f"{what}[{i}] is a {type(seq).__name__}, not a DNA string")
        if not seq:
            raise InputError(f"{what}[{i}] is an empty sequence")
        out.append(seq)
    return out


def window_spans(length: int, max_len: int, stride: int) -> list[tuple[int, int]]:
    """Windows ``[start, end)`` covering ``[0, length)``: every ``stride`` bases, the last one shorter.

    With ``stride > max_len`` the bases between windows are skipped (and the end, where the next
    window would start past it).

    Example:
        >>> window_spans(25, 10, 10)
        [(0, 10), (10, 20), (20, 25)]
        >>> window_spans(7, 10, 10)
        [(0, 7)]
    """
    return tile(0, length, max_len, stride, "keep")  # the one window planner, datasets.windows


@dataclass(frozen=True)
class WindowRef:
    """One window: which sequence (row of X) and its 0-based half-open coordinates there."""

    row: int
    start: int
    end: int


def plan_windows(sequences: Sequence[str], max_len: int, stride: int) -> list[WindowRef]:
    """Every window of every sequence, in input order."""
    return [WindowRef(i, s, e) for i, seq in enumerate(sequences) for s, e in window_spans(len(seq), max_len, stride)]


@dataclass
class Batch:
    """Token ids ``(b, L)``, mask ``(b, L)`` (1 on real tokens) and the windows they hold."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    windows: list[WindowRef]

    def as_dict(self) -> dict[str, torch.Tensor]:
        return {"input_ids": self.input_ids, "attention_mask": self.attention_mask}


PAD_TO_MULTIPLE_OF = 16  # batch widths (tokens): see encode_windows


def encode_windows(
    sequences: Sequence[str], windows: Sequence[WindowRef], tokenizer: DNATokenizer, add_cls: bool,
    names: Sequence[str] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Tokenize and right-pad a group of windows: ids ``(b, L)`` int64 and mask ``(b, L)``, L the longest
    window rounded up to a multiple of PAD_TO_MULTIPLE_OF."""
    encoded = []
    for w in windows:
        record = names[w.row] if names is not None else f"sequence {w.row}"
        ids = tokenizer.encode(sequences[w.row][w.start:w.end], record=record, offset=w.start)
        encoded.append(np.concatenate(([CLS], ids)) if add_cls else ids)
    # Widths a multiple of 16, as Hugging Face's pad_to_multiple_of: the GPU scan then compiles one kernel for
    # every length (Triton specializes a row length on its divisibility by 16) and loads its rows aligned.
    width = -(-max(len(ids) for ids in encoded) // PAD_TO_MULTIPLE_OF) * PAD_TO_MULTIPLE_OF
    input_ids = np.full((len(encoded), width), PAD, dtype=np.int64)
    mask = np.zeros((len(encoded), width), dtype=np.int64)
    for row, ids in enumerate(encoded):
        input_ids[row, :len(ids)] = ids
        mask[row, :len(ids)] = 1
    return torch.from_numpy(input_ids), torch.from_numpy(mask)


def iter_batches(
    sequences: Sequence[str], windows: Sequence[WindowRef], tokenizer: DNATokenizer, batch_size: int,
    add_cls: bool = False, names: Sequence[str] | None = None, order: np.ndarray | None = None,
    max_tokens: int | None = None,
) -> Iterator[Batch]:
    """Batches of windows, longest first, so windows of equal length share a batch.

    ``order`` (a permutation of the windows) replaces the length order (training shuffles).
    ``max_tokens`` caps batch x length, so a batch of long windows holds fewer of them.
    """
    if order is None:
        lengths = np.fromiter((w.end - w.start for w in windows), dtype=np.int64, count=len(windows))
        order = np.argsort(-lengths, kind="stable")
    i = 0
    while i < len(order):
        first = windows[int(order[i])]
        size = batch_size
        if max_tokens is not None:
            size = max(1, min(batch_size, max_tokens // max(1, first.end - first.start)))
        group = [windows[int(j)] for j in order[i:i + size]]
        ids, mask = encode_windows(sequences, group, tokenizer, add_cls, names)
        yield Batch(ids, mask, group)
        i += size


def sample_training_windows(
    lengths: Sequence[int], max_len: int, rng: np.random.Generator,
) -> list[WindowRef]:
    """One window of at most ``max_len`` per sequence, at a random place in the longer ones."""
    out = []
    for i, n in enumerate(lengths):
        start = int(rng.integers(0, n - max_len + 1)) if n > max_len else 0
        out.append(WindowRef(i, start, min(n, start + max_len)))
    return out


def length_bucketed_order(windows: Sequence[WindowRef], batch_size: int, rng: np.random.Generator) -> np.ndarray:
    """A shuffled order in which each run of ``batch_size`` windows has similar lengths.

    Sort by length with random tie-breaks, cut into batches, shuffle the batches: every epoch sees
    other batch compositions, yet padding stays small.
    """
    lengths = np.array([w.end - w.start for w in windows])
    order = np.lexsort((rng.random(len(windows)), lengths))
    chunks = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    rng.shuffle(chunks)
    return np.concatenate(chunks) if chunks else order
