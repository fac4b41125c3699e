"""`classify` and `embed` stream: rows go out a chunk at a time (into the temporary file), memory does not
grow with the number of records, and the result equals the in-memory estimator's."""

import itertools
import tracemalloc

import numpy as np
import polars as pl
import pytest

from seqmamba.estimators import MambaEmbedder, MambaSequenceClassifier
from seqmamba.pipelines import record_stream
from seqmamba.pipelines.cli import main
from seqmamba.pipelines.progress import RecordProgress


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    rng = np.random.default_rng(0)
    X = ["".join(rng.choice(list("AT" if i % 2 else "GC"), 40)) for i in range(16)]
    y = ["AT" if i % 2 else "GC" for i in range(16)]
    clf = MambaSequenceClassifier(d_model=8, n_layers=1, d_state=4, max_len=64, max_epochs=1, batch_size=8,
                                  device="cpu", random_state=0).fit(X, y)
    return clf.save(tmp_path_factory.mktemp("stream") / "model")


def write_fasta(path, n, seed=1, lengths=(20, 150)):
    rng = np.random.default_rng(seed)
    records = [(f"r{i}", "".join(rng.choice(list("ACGTN"), int(rng.integers(*lengths))))) for i in range(n)]
    with open(path, "w") as handle:
        for name, seq in records:
            handle.write(f">{name} some description\n")
            handle.writelines(seq[i:i + 60] + "\n" for i in range(0, len(seq), 60))
    return records


def test_record_chunks_cut_by_records_and_bases(tmp_path):
    records = write_fasta(tmp_path / "a.fa", 10)
    write_fasta(tmp_path / "b.fa", 3, seed=2)
    paths = [tmp_path / "a.fa", tmp_path / "b.fa"]
    chunks = list(record_stream.record_chunks(paths, max_records=4))
    assert [len(chunk.names) for chunk in chunks] == [4, 4, 4, 1]  # chunks span files
    assert [n for chunk in chunks for n in chunk.names][:10] == [name for name, _ in records]
    assert [f for chunk in chunks for f in chunk.files] == [str(paths[0])] * 10 + [str(paths[1])] * 3
    by_bases = list(record_stream.record_chunks(paths, max_bases=1))
    assert all(len(chunk.names) == 1 for chunk in by_bases) and len(by_bases) == 13
    survey = record_stream.survey_records(paths)
    assert survey.n_records == 13 and survey.lengths[:10] == [len(s) for _, s in records]


def chunked(records, size):
    """The records as `record_chunks` hands them over: ``size`` at a time."""
    return [records[i:i + size] for i in range(0, len(records), size)]


# Expected values come from the estimator called chunk by chunk, as the command does: a window's output
# depends a little on the windows batched with it (padding reaches the reverse scan; see
# docs/reliability.md), so the whole input at once differs in the 3rd decimal for this tiny model.

@pytest.mark.parametrize("per_window", [False, True])
def test_classify_in_small_chunks_equals_the_estimator(model_dir, tmp_path, monkeypatch, per_window):
    records = write_fasta(tmp_path / "in.fa", 40)
    monkeypatch.setattr(record_stream, "CHUNK_RECORDS", 7)
    out = tmp_path / "out.tsv"
    argv = ["classify", str(model_dir), str(tmp_path / "in.fa"), "-o", str(out), "-q"]
    assert main(argv + (["--per-window"] if per_window else [])) == 0
    frame = pl.read_csv(out, separator="\t")
    clf = MambaSequenceClassifier.load(model_dir, device="cpu")
    keys, expected = [], []
    for chunk in chunked(records, 7):
        sequences = [s for _, s in chunk]
        if per_window:
            logits, windows = clf.window_logits(sequences)
            keys += [(chunk[w.row][0], w.start, w.end) for w in windows]
            expected.append(np.exp(logits) / np.exp(logits).sum(1, keepdims=True))
        else:
            keys += [(name, len(seq)) for name, seq in chunk]
            expected.append(clf.predict_proba(sequences))
    columns = ["#chrom", "start", "end"] if per_window else ["id", "length"]
    assert list(frame.select(columns).iter_rows()) == keys  # every record or window once, in input order
    np.testing.assert_allclose(frame.select(["prob_AT", "prob_GC"]).to_numpy(), np.concatenate(expected),
                               atol=1e-6)  # the TSV keeps 6 significant digits


@pytest.mark.parametrize(("suffix", "per_window"), [(".parquet", False), (".parquet", True), (".npy", False),
                                                    (".npy", True)])
def test_embed_in_small_chunks_equals_the_estimator(model_dir, tmp_path, monkeypatch, suffix, per_window):
    records = write_fasta(tmp_path / "in.fa", 30)
    monkeypatch.setattr(record_stream, "CHUNK_RECORDS", 4)
    out = tmp_path / f"emb{suffix}"
    argv = ["embed", str(model_dir), str(tmp_path / "in.fa"), "-o", str(out), "-q"]
    assert main(argv + (["--per-window"] if per_window else [])) == 0
    embedder = MambaEmbedder.from_classifier(MambaSequenceClassifier.load(model_dir, device="cpu"))
    keys, expected = [], []
    for chunk in chunked(records, 4):
        sequences = [s for _, s in chunk]
        if per_window:
            emb, windows = embedder.embed_windows(sequences)
            keys += [(chunk[w.row][0], w.start, w.end) for w in windows]
        else:
            emb = embedder.transform(sequences)
            keys += [(name,) for name, _ in chunk]
        expected.append(emb)
    expected = np.concatenate(expected)
    if suffix == ".npy":
        got = np.load(out)
        assert got.dtype == np.float32
    else:
        frame = pl.read_parquet(out)
        assert list(frame.select(["id", "start", "end"] if per_window else ["id"]).iter_rows()) == keys
        got = frame.select(pl.selectors.starts_with("emb_")).to_numpy()
    assert got.shape == expected.shape == (len(keys), 8)
    np.testing.assert_array_equal(got, expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["in.fa", out.name])


def test_rows_reach_the_temporary_file_chunk_by_chunk(model_dir, tmp_path, monkeypatch):
    write_fasta(tmp_path / "in.fa", 30)
    monkeypatch.setattr(record_stream, "CHUNK_RECORDS", 5)
    seen = []  # at each chunk: (bytes already in the temporary file, whether out.tsv exists yet)
    real = MambaSequenceClassifier.window_logits

    def spy(self, *args, **kwargs):
        temporary = list(tmp_path.glob(".out.tsv.*.tmp"))
        seen.append((temporary[0].stat().st_size if temporary else -1, (tmp_path / "out.tsv").exists()))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(MambaSequenceClassifier, "window_logits", spy)
    assert main(["classify", str(model_dir), str(tmp_path / "in.fa"), "-o", str(tmp_path / "out.tsv"), "-q"]) == 0
    sizes = [size for size, _ in seen]
    assert len(seen) == 6 and not any(done for _, done in seen)
    # Before the first chunk only the (buffered) header; then each chunk's rows are in before the next.
    assert all(a < b for a, b in itertools.pairwise(sizes)) and sizes[1] > 0


def peak_python_memory(argv) -> int:
    tracemalloc.start()
    try:
        assert main(argv) == 0
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def fast_embed_windows(self, X, names=None, progress=None):
    """A stand-in for the model: the real windows, zero embeddings (memory of the pipeline, not of torch)."""
    from seqmamba.estimators._dna_data import plan_windows

    windows = plan_windows(X, self.max_len, self._stride)
    return np.zeros((len(windows), 8), dtype=np.float32), windows


def test_memory_does_not_grow_with_the_number_of_records(model_dir, tmp_path, monkeypatch):
    # Python-level allocations (records, rows, arrays), with the model stubbed out so that the input can be
    # large: 16.5 Mbp. Holding every record (or result) would make memory grow with the sequence.
    monkeypatch.setattr(MambaEmbedder, "embed_windows", fast_embed_windows)
    monkeypatch.setattr(record_stream, "CHUNK_RECORDS", 100)

    bases = {}

    def run(n):
        bases[n] = sum(len(s) for _, s in write_fasta(tmp_path / f"{n}.fa", n, lengths=(5000, 6000)))
        return peak_python_memory(["embed", str(model_dir), str(tmp_path / f"{n}.fa"), "-o",
                                   str(tmp_path / f"{n}.parquet"), "-q"])

    run(50)  # first use: imports and caches, not counted
    peaks = {n: run(n) for n in (300, 3000)}
    # 10x the records add ~15 MB of sequence; what memory adds is the names kept to find duplicates.
    assert peaks[3000] - peaks[300] < 0.15 * (bases[3000] - bases[300]), (peaks, bases)
    assert pl.read_parquet(tmp_path / "3000.parquet").height == 3000


def test_progress_lines_in_a_log():
    import io

    out = io.StringIO()
    progress = RecordProgress("embedding", 4, 4_000_000, quiet=False, interval=0, stream=out, tty=False)
    for _ in range(4):
        progress.bases(1_000_000)
        progress.records(1)
    progress.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 4
    assert lines[-1].startswith("embedding: 4/4 records, 4/4 Mbp (100%), ")
    quiet = io.StringIO()
    progress = RecordProgress("embedding", 4, 10, quiet=True, interval=0, stream=quiet, tty=False)
    progress.records(4)
    assert quiet.getvalue() == ""


def test_freed_memory_goes_back_to_the_system_on_glibc():
    import platform

    from seqmamba.pipelines import memory

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        pytest.skip("malloc_trim is glibc's")
    assert memory._malloc_trim() is not None  # found, so each chunk's freed heap pages are returned
    memory.release_freed_memory()


def test_classify_caps_the_kernel_cache_unless_the_user_set_it(model_dir, tmp_path, monkeypatch):
    import os

    write_fasta(tmp_path / "in.fa", 3)
    monkeypatch.delenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", raising=False)
    assert main(["classify", str(model_dir), str(tmp_path / "in.fa"), "-q"]) == 0
    assert os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] == "0"
    monkeypatch.setenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "512")
    assert main(["embed", str(model_dir), str(tmp_path / "in.fa"), "-o", str(tmp_path / "e.npy"), "-q"]) == 0
    assert os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] == "512"
