"""The work behind `seqmamba train dna`, `classify`, `embed` and `quickstart`: Python functions the
commands (and the quickstart) call, with outputs written atomically.

Classification and embedding stream: records come in chunks (`record_stream.record_chunks`), each
chunk's rows go to the output file as soon as they are computed, and the file is renamed into place
after the last one. Memory holds one chunk whatever the number of records.

Every row names the FASTA file its record came from (``file``, the path as the user gave it, ``-`` for
standard input): the same record name in two files (chromosome X of two genomes) gives two rows told
apart by it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ..datasets.atomic import atomic_path, output_or_stdout
from ..errors import InputError
from .embedding_files import NpyRows, ParquetRows, check_embedding_output
from .memory import release_freed_memory
from .progress import RecordProgress
from .record_stream import Chunk, RecordSurvey

Chunks = Iterable[Chunk]  # (names, sequences, files) of consecutive records


def write_predictions(clf: Any, chunks: Chunks, output: str | None, per_window: bool,
                      progress: RecordProgress | None = None) -> int:
    """Classify every record; write one TSV row per record (or per window, BED-style); return the rows.

    Per record: ``id file length predicted prob_<class>...``. Per window: ``#chrom start end file predicted
    prob_<class>...`` (0-based, half-open). Rows follow the input order.
    """
    from scipy.special import softmax

    class_cols = [f"prob_{c}" for c in clf.classes_]
    header = ["#chrom", "start", "end", "file"] if per_window else ["id", "file", "length"]
    rows = 0
    with output_or_stdout(output) as out:
        out.write("\t".join([*header, "predicted", *class_cols]) + "\n")
        for names, sequences, files in chunks:
            logits, windows = clf.window_logits(sequences, names=names,
                                                progress=progress.bases if progress else None)  # (w, k)
            if per_window:
                probs = softmax(logits, axis=1)  # (windows, classes)
                keys = ([names[w.row], str(w.start), str(w.end), files[w.row]] for w in windows)
            else:
                probs = softmax(clf.pool_windows(logits, windows, len(sequences)), axis=1)  # (records, classes)
                keys = ([name, file, str(len(seq))] for name, file, seq in zip(names, files, sequences))
            labels = clf.classes_[probs.argmax(1)]
            out.write("".join("\t".join([*key, str(label), *(f"{v:.6g}" for v in p)]) + "\n"
                              for key, label, p in zip(keys, labels, probs)))
            out.flush()  # a chunk's rows reach the (temporary) file now, not at the end
            release_freed_memory()
            rows += len(probs)
            if progress is not None:
                progress.records(len(names))
    return rows


def write_embeddings(embedder: Any, chunks: Chunks, output: str, per_window: bool, survey: RecordSurvey,
                     progress: RecordProgress | None = None) -> tuple[int, int]:
    """Embed and write ``.parquet`` (id [, start, end], file, emb_0..) or ``.npy`` (the matrix); returns its shape.

    ``survey`` (every record's length) sizes the ``.npy`` header before the first row is computed; an
    incomplete one (streamed input) leaves room in the header and fills it in at the end.
    """
    from ..datasets.windows import tile
    from ..estimators.embedder import pool_window_embeddings

    suffix = check_embedding_output(output)
    if not survey.complete:
        n_rows = None
    elif per_window:
        stride = embedder.window_stride or embedder.max_len
        n_rows = sum(len(tile(0, n, embedder.max_len, stride, "keep")) for n in survey.lengths)
    else:
        n_rows = survey.n_records
    width = 0
    with atomic_path(output) as tmp:
        writer = NpyRows(tmp, n_rows) if suffix == ".npy" else ParquetRows(tmp, per_window)
        try:
            for names, sequences, files in chunks:
                emb, windows = embedder.embed_windows(sequences, names=names,
                                                      progress=progress.bases if progress else None)  # (w, d)
                if per_window:
                    ids = [names[w.row] for w in windows]
                    files = [files[w.row] for w in windows]  # the chunk's files, now one per window
                    starts = np.fromiter((w.start for w in windows), dtype=np.int64, count=len(windows))
                    ends = np.fromiter((w.end for w in windows), dtype=np.int64, count=len(windows))
                else:
                    emb = pool_window_embeddings(emb, windows, len(sequences))  # (records, d)
                    ids, starts, ends = names, None, None
                writer.append(ids, starts, ends, emb, files)
                release_freed_memory()
                width = emb.shape[1]
                if progress is not None:
                    progress.records(len(names))
        except BaseException:
            writer.abort()
            raise
        writer.close()
    return writer.rows, width


def check_output_dir(path: str | os.PathLike) -> Path:
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"{path}: exists and is not a directory")
    path.mkdir(parents=True, exist_ok=True)
    return path
