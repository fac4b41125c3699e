"""The work behind `seqmamba train dna`, `classify`, `embed` and `quickstart`: Python functions the
commands (and the quickstart) call, with outputs written atomically."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from ..datasets.atomic import atomic_output, atomic_path
from ..errors import InputError


@contextlib.contextmanager
def base_progress(total: int, quiet: bool, what: str) -> Iterator[Callable[[int], None]]:
    """A bases-done bar on stderr (people only: a TTY, and not --quiet); yields ``update(n_bases)``."""
    disable = quiet or not sys.stderr.isatty()
    with tqdm(total=total, unit="bp", unit_scale=True, desc=what, file=sys.stderr, disable=disable,
              leave=False) as bar:
        yield bar.update


def write_predictions(clf: Any, names: Sequence[str], sequences: Sequence[str], output: str | None,
                      per_window: bool, quiet: bool) -> np.ndarray:
    """Classify every record; write one TSV row per record (or per window, BED-style); return labels.

    Per record: ``id length predicted prob_<class>...``. Per window: ``#chrom start end predicted
    prob_<class>...`` (0-based, half-open).
    """
    total = sum(len(s) for s in sequences)
    with base_progress(total, quiet, "classifying") as progress:
        logits, windows = clf.window_logits(sequences, names=names, progress=progress)
    from ..estimators.classifier import _softmax

    class_cols = [f"prob_{c}" for c in clf.classes_]
    if per_window:
        probs = _softmax(logits)
        header = ["#chrom", "start", "end", "predicted", *class_cols]
        rows = ([names[w.row], str(w.start), str(w.end), str(clf.classes_[p.argmax()]), *(f"{v:.6g}" for v in p)]
                for w, p in zip(windows, probs))
    else:
        probs = _softmax(clf._pool_windows(logits, windows, len(sequences)))
        header = ["id", "length", "predicted", *class_cols]
        rows = ([names[i], str(len(sequences[i])), str(clf.classes_[p.argmax()]), *(f"{v:.6g}" for v in p)]
                for i, p in enumerate(probs))
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(atomic_output(output)) if output else sys.stdout
        out.write("\t".join(header) + "\n")
        for row in rows:
            out.write("\t".join(row) + "\n")
    return clf.classes_[probs.argmax(1)]


def write_embeddings(embedder: Any, names: Sequence[str], sequences: Sequence[str], output: str,
                     per_window: bool, quiet: bool) -> tuple[int, int]:
    """Embed and write ``.parquet`` (id [, start, end], emb_0..) or ``.npy`` (the matrix); returns its shape."""
    from ..estimators.embedder import pool_window_embeddings

    suffix = Path(output).suffix.lower()
    if suffix not in (".parquet", ".npy"):
        raise InputError(f"{output}: the output must end in .parquet or .npy")
    total = sum(len(s) for s in sequences)
    with base_progress(total, quiet, "embedding") as progress:
        emb, windows = embedder.embed_windows(sequences, names=names, progress=progress)
    if not per_window:
        emb = pool_window_embeddings(emb, windows, len(sequences))
    if suffix == ".npy":
        with atomic_output(output, "wb") as handle:
            np.save(handle, emb)
        return emb.shape
    import polars as pl

    columns: dict[str, Any] = {}
    if per_window:
        columns["id"] = [names[w.row] for w in windows]
        columns["start"] = np.array([w.start for w in windows], dtype=np.int64)
        columns["end"] = np.array([w.end for w in windows], dtype=np.int64)
    else:
        columns["id"] = list(names)
    frame = pl.DataFrame(columns).hstack(pl.from_numpy(emb, schema=[f"emb_{i}" for i in range(emb.shape[1])]))
    with atomic_path(output) as tmp:
        frame.write_parquet(tmp)
    return emb.shape


def check_output_dir(path: str | os.PathLike) -> Path:
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"{path}: exists and is not a directory")
    path.mkdir(parents=True, exist_ok=True)
    return path
