"""Property tests (hypothesis): the FASTA readers against a small independent model of the format, and the
windows against brute force. Every generated input must give the model's records or the documented
InputError: never another exception, never a hang (a 20 s alarm per example).

The model is docs/dna_io.md's format: lines end in LF or CRLF (a CR elsewhere in a sequence line is
dropped); a header is a line starting with '>', named by its first word (UTF-8, no control bytes but
tab); sequence lines hold IUPAC codes in either case; blank lines are allowed anywhere; before the first
header only blank lines. Errors: an empty file, a NUL byte, a header without a name, a duplicate name, any
other character, and a file whose records are all empty (and, with ``empty="error"``, any empty record).
"""

import contextlib
import gzip
import itertools
import signal
import tempfile
from pathlib import Path

import pytest
from fasta_helpers import write
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from seqmamba.datasets import fasta as fasta_module
from seqmamba.datasets.fasta import FastaFile
from seqmamba.datasets.fasta_scan import RecordStart, scan_fasta
from seqmamba.datasets.windows import WindowedGenome, tile
from seqmamba.errors import InputError
from seqmamba.estimators._dna_data import window_spans

# Slow shared CI machines: no per-example deadline (the alarm catches hangs), modest example counts.
SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                    derandomize=True)
IUPAC = "ACGTUNRYSWKMBDHVacgtunryswkmbdhv"


class Invalid(Exception):
    """The model's verdict: this input must raise InputError."""


def model_records(data: bytes, empty: str = "warn") -> list[tuple[str, str]]:
    """The records (name, sequence) of ``data`` by the documented format, or Invalid."""
    if b"\x00" in data:
        raise Invalid("NUL byte")
    lines = data.split(b"\n")
    records: list[list] = []
    names: set[str] = set()
    saw_text = False
    for raw in lines:
        if raw.startswith(b">"):
            saw_text = True
            try:
                text = raw[1:].rstrip(b"\r").decode("utf-8")
            except UnicodeDecodeError:
                raise Invalid("header not UTF-8") from None
            if any(ord(c) < 0x20 and c != "\t" for c in text):
                raise Invalid("control byte in a header")
            words = text.split()
            if not words:
                raise Invalid("header without a name")
            if words[0] in names:
                raise Invalid("duplicate name")
            names.add(words[0])
            records.append([words[0], []])
            continue
        body = raw.replace(b"\r", b"")
        if not records:
            if raw.strip():
                raise Invalid("data before the first header")
            continue
        if body.translate(None, IUPAC.encode()):
            raise Invalid("not a nucleotide code")
        if body:
            saw_text = True
        records[-1][1].append(body.decode())
    if not saw_text:
        raise Invalid("empty file")
    out = [(name, "".join(parts)) for name, parts in records]
    if all(not seq for _, seq in out):
        raise Invalid("every record empty")
    if empty == "error" and any(not seq for _, seq in out):
        raise Invalid("an empty record")
    return [(name, seq) for name, seq in out if seq]


@contextlib.contextmanager
def no_hang(seconds: int = 20):
    def alarm(signum, frame):
        raise TimeoutError(f"the reader took more than {seconds} s: a hang")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def scanned(path: Path, empty: str, block_size: int) -> list[tuple[str, str]]:
    out = []
    for item in scan_fasta(path, empty=empty, block_size=block_size):
        if isinstance(item, RecordStart):
            out.append([item.name, b""])
        else:
            out[-1][1] += item
    return [(name, seq.decode()) for name, seq in out if seq]


def check_readers(data: bytes, compression: str, empty: str, block_size: int) -> None:
    """scan() and records() give the model's records, or both raise InputError when the model says so."""
    try:
        expected = model_records(data, empty)
        event("valid")
    except Invalid as why:
        expected = None
        event(f"invalid: {why}")
    with tempfile.TemporaryDirectory() as folder:
        path = write(Path(folder) / "x.fa", data, compression)
        for read in (lambda: scanned(path, empty, block_size), lambda: list(FastaFile(path, empty=empty).records())):
            with no_hang():
                if expected is None:
                    with pytest.raises(InputError) as caught:
                        read()
                    assert "\n" not in str(caught.value) and str(path) in str(caught.value)
                else:
                    assert read() == expected


# --- generators: FASTA-like texts, valid and corrupted ---------------------------------------------------------

safe_chars = st.sampled_from([*"abcXYZ019_.|:-", "é", "\u00a0", "\t", " ", "\x7f"])
any_chars = st.sampled_from([*"abcXYZ019_.|:-", "é", "\u00a0", "\t", " ", "\x7f", "\x01", "\x1b"])
bases = st.text(st.sampled_from(list(IUPAC)), max_size=120)
bad_base = st.sampled_from([" ", "1", "*", "-", ">", ";", "\t", "\r", "\x00", "é", "\x0b"])


@st.composite
def fasta_texts(draw) -> bytes:
    eol = draw(st.sampled_from(["\n", "\r\n", "mixed"]))
    parts = []
    if draw(st.booleans()):
        parts.append(draw(st.sampled_from(["", " ", "\t", "\r"])) + "\n")  # blank lines before the first header
    names = []
    for i in range(draw(st.integers(0, 5))):
        roll = draw(st.integers(0, 9))
        if roll == 0:  # anything: no name, control bytes, a clash
            title = draw(st.text(any_chars, max_size=12))
        elif roll == 1 and names:  # a duplicate name
            title = draw(st.sampled_from(names)) + draw(st.text(safe_chars, max_size=6))
        else:
            title = f"r{i}" + draw(st.sampled_from(["", " ", "\t", "|x"])) + draw(st.text(safe_chars, max_size=10))
        names.append(title.split()[0] if title.split() else "")
        parts.append(">" + title)
        sequence = draw(bases)
        if draw(st.integers(0, 9)) == 0:  # now and then one bad character somewhere
            at = draw(st.integers(0, len(sequence)))
            sequence = sequence[:at] + draw(bad_base) + sequence[at:]
        width = draw(st.integers(1, 70))
        lines = [sequence[i:i + width] for i in range(0, len(sequence), width)]
        for _ in range(draw(st.integers(0, 2))):  # blank lines inside the record
            lines.insert(draw(st.integers(0, len(lines))), "")
        parts.extend(lines)
    if not parts:
        return b""
    ends = [draw(st.sampled_from(["\n", "\r\n"])) if eol == "mixed" else eol for _ in parts]
    text = "".join(p + e for p, e in zip(parts, ends))
    if draw(st.booleans()):
        text = text.rstrip("\r\n")  # no line end after the last line
    return text.encode("utf-8")


COMPRESSION = st.sampled_from(["plain", "plain", "gzip", "bgzip"])
BLOCK = st.sampled_from([1, 7, 64, 1 << 20])  # the scanner's block size: records cut at every place


@SETTINGS
@given(fasta_texts(), COMPRESSION, st.sampled_from(["warn", "error"]), BLOCK)
def test_fasta_texts_read_as_the_model_says(data, compression, empty, block_size):
    check_readers(data, compression, empty, block_size)


@SETTINGS
@given(st.binary(max_size=300), st.sampled_from(["plain", "gzip"]), BLOCK)
def test_arbitrary_bytes_read_as_the_model_says(data, compression, block_size):
    check_readers(data, compression, "warn", block_size)


@SETTINGS
@given(fasta_texts(), st.integers(1, 200))
def test_truncated_gzip_is_an_input_error(data, cut):
    packed = gzip.compress(data)
    assume(cut < len(packed))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "t.fa.gz"
        path.write_bytes(packed[:-cut])
        for read in (lambda: list(scan_fasta(path)), lambda: list(FastaFile(path).records())):
            with no_hang(), pytest.raises(InputError):
                read()


# --- windows ----------------------------------------------------------------------------------------------------

def brute_tile(start: int, end: int, size: int, stride: int, partial: str) -> list[tuple[int, int]]:
    """Full windows at start, start + stride, ...; then, unless dropped, the one window after the last full one
    (cut at ``end``), if the full windows leave the end uncovered."""
    starts = list(range(start, end, stride))
    full = [(s, s + size) for s in starts if s + size <= end]
    out = list(full)
    after = [s for s in starts if s + size > end]
    covered = full[-1][1] if full else start
    if partial != "drop" and after and covered < end:
        out.append((after[0], end))
    return out


@SETTINGS
@given(st.integers(0, 50), st.integers(0, 400), st.integers(1, 60), st.integers(1, 80),
       st.sampled_from(["keep", "pad", "drop"]))
def test_tile_equals_brute_force(start, length, size, stride, partial):
    got = tile(start, start + length, size, stride, partial)
    assert got == brute_tile(start, start + length, size, stride, partial)
    for s, e in got:
        assert start <= s < e <= start + length and e - s <= size
    if stride <= size and partial != "drop" and length:
        covered = set()
        for s, e in got:
            covered.update(range(s, e))
        assert covered == set(range(start, start + length))  # no gap when the windows overlap or touch


@st.composite
def genomes(draw):
    records = []
    for i in range(draw(st.integers(1, 4))):
        records.append((f"chr{i}", draw(st.text(st.sampled_from(list("ACGTNacgtnRY")), max_size=300))))
    assume(any(seq for _, seq in records))
    return records


@SETTINGS
@given(genomes(), st.integers(1, 50), st.integers(1, 70), st.sampled_from(["keep", "pad", "drop"]),
       st.sampled_from(["+", "both"]), st.sampled_from([1.0, 0.5, 0.0]), st.integers(1, 40), BLOCK)
def test_windows_over_a_genome_equal_brute_force(records, size, stride, partial, strand, max_n, width, block_size):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "g.fa"
        path.write_text("".join(f">{name}\n" + "".join(seq[i:i + width] + "\n" for i in range(0, len(seq), width))
                                for name, seq in records))
        real_scan = fasta_module.FastaFile.scan

        def small_blocks(self, progress=None):  # chunks end anywhere: the cutter's buffer is exercised
            return scan_fasta(self.path, empty=self.empty, progress=progress, block_size=block_size)

        with pytest.MonkeyPatch.context() as patch, no_hang():
            patch.setattr(fasta_module.FastaFile, "scan", small_blocks)
            got = [(w.chrom, w.start, w.end, w.strand, w.pad, w.sequence, w.n_fraction)
                   for w in WindowedGenome(path, size, stride, partial=partial, strand=strand, max_n_frac=max_n)]
        assert fasta_module.FastaFile.scan is real_scan
    expected = []
    complement = str.maketrans("ACGTNacgtnRY", "TGCANtgcanYR")
    for name, seq in records:
        for s, e in brute_tile(0, len(seq), size, stride, partial):
            bases = seq[s:e]
            n_fraction = sum(c not in "ACGTacgt" for c in bases) / (e - s)
            if n_fraction > max_n:
                continue
            pad = size - (e - s) if partial == "pad" else 0
            expected.append((name, s, e, "+", pad, bases.encode(), n_fraction))
            if strand == "both":
                expected.append((name, s, e, "-", pad, bases.translate(complement)[::-1].encode(), n_fraction))
    assert got == expected


@SETTINGS
@given(st.integers(1, 3000), st.integers(1, 300), st.integers(1, 400))
def test_estimator_window_spans_cover_the_sequence(length, max_len, stride):
    spans = window_spans(length, max_len, stride)
    # Brute force: a window at every multiple of the stride that starts inside the sequence, as long as the
    # windows before it have not reached the end.
    expected = []
    for start in range(0, length, stride):
        if expected and expected[-1][1] == length:
            break
        expected.append((start, min(start + max_len, length)))
    assert spans == expected
    assert all(0 <= s < e <= length and e - s <= max_len for s, e in spans)  # never empty, never inverted
    if stride <= max_len:
        assert spans[0][0] == 0 and spans[-1][1] == length  # the whole sequence reaches the model
        assert all(b[0] <= a[1] for a, b in itertools.pairwise(spans))  # no gap
