"""FASTA reading: compressions, layouts, and every kind of bad input, located by file and line."""

import gzip
import logging

import pytest
from fasta_helpers import write

from seqmamba.datasets.fasta import FastaFile
from seqmamba.datasets.fasta_scan import RecordStart, detect_compression, scan_fasta
from seqmamba.errors import InputError

TEXT = ">r1 first record\nACGTAC\nGTaa\n>r2\nacgtNN\nAC\n>r3\nGGGGCCCCAT\n"
EXPECTED = {"r1": "ACGTACGTaa", "r2": "acgtNNAC", "r3": "GGGGCCCCAT"}


def scanned(path, **kwargs) -> dict[str, str]:
    out, name = {}, None
    for event in scan_fasta(path, **kwargs):
        if isinstance(event, RecordStart):
            name = event.name
            out[name] = ""
        else:
            out[name] += event.decode()
    return out


@pytest.mark.parametrize("compression", ["plain", "gzip", "bgzip"])
def test_compressions_stream_the_same(tmp_path, compression):
    path = write(tmp_path / "x.fa", TEXT, compression)
    assert detect_compression(path) == compression
    assert scanned(path) == EXPECTED
    assert dict(FastaFile(path).records()) == EXPECTED
    assert FastaFile(path).lengths() == {k: len(v) for k, v in EXPECTED.items()}


def test_unwrapped_crlf_blank_lines_and_small_blocks(tmp_path):
    text = ">r1\r\nACGTACGTaa\r\n\r\n>r2 desc\r\nacgtNN\r\nAC\r\n>r3\r\nGGGGCCCCAT"  # no final newline
    path = write(tmp_path / "crlf.fa", text)
    assert scanned(path) == EXPECTED
    # Blocks smaller than a line exercise headers and lines split across reads.
    assert scanned(path, block_size=3) == EXPECTED
    assert dict(FastaFile(path).records()) == EXPECTED


@pytest.mark.parametrize("data, message", [
    (b"", "empty file"),
    (b"\n\n  \n", "empty file"),
    (b"ACGT\n>r1\nACGT\n", "line 1: sequence data before the first '>'"),
    (b"\n\nACGT\n", "line 3: sequence data before the first '>'"),
    (b">r1 only a header\n", "no sequence data"),
    (b">r1\n>r2\n", "no sequence data"),
    (b">r1\nACGT\n>r2\nAC\n>r1\nGG\n", "line 5: duplicate record name 'r1' \\(first at line 1\\)"),
    (b">\nACGT\n", "line 1: header without a record name"),
    (b">r1\nACGT\nAC-T\n", "line 3, column 3: '-' is not a nucleotide code in record 'r1'"),
    (b">r1\r\nACGT\r\nACG T\r\n", "line 3, column 4: space is not a nucleotide code"),
    (b">r1\nAC>GT\n", "line 2, column 3: '>'"),
    (b">r1\nACGT\n>r2\nAAAAAAAAAAAAX\n", "line 4, column 13: 'X' is not a nucleotide code in record 'r2'"),
    (b">r1\nAC\xffGT\n", "line 2, column 3: binary data \\(byte 0xff\\)"),
    (b"\x00\x01\x02BAM\x01", "binary data"),
    (b">r\x01x\nACGT\n", "line 1: binary data in a header"),
    (b"BZh91AY&SY", "bzip2-compressed"),
])
def test_bad_input_names_file_and_line(tmp_path, data, message):
    path = write(tmp_path / "bad.fa", data)
    with pytest.raises(InputError, match=message) as caught:
        scanned(path, block_size=7)
    assert str(path) in str(caught.value)
    # The Biopython path reports the very same error.
    with pytest.raises(InputError, match=message):
        dict(FastaFile(path).records())


def test_truncated_and_corrupt_gzip(tmp_path):
    whole = gzip.compress((">r1\n" + "ACGT" * 50_000 + "\n").encode())
    path = write(tmp_path / "cut.fa.gz", whole[: len(whole) // 2])
    with pytest.raises(InputError, match=r"cut.fa.gz: truncated gzip data after line"):
        scanned(path)
    with pytest.raises(InputError, match="truncated gzip"):
        dict(FastaFile(path).records())
    broken = bytearray(whole)
    broken[100:110] = b"\x00" * 10
    path = write(tmp_path / "corrupt.fa.gz", bytes(broken))
    with pytest.raises(InputError, match="corrupt gzip data"):
        scanned(path)


def test_zero_length_record_warns_and_is_skipped(tmp_path, caplog):
    path = write(tmp_path / "z.fa", ">r1\nACGT\n>empty\n>r3\nGG\n")
    with caplog.at_level(logging.WARNING):
        assert dict(FastaFile(path).records()) == {"r1": "ACGT", "r3": "GG"}
        assert scanned(path) == {"r1": "ACGT", "empty": "", "r3": "GG"}
    assert "line 3: record 'empty' has no sequence" in caplog.text
    with pytest.raises(InputError, match="line 3: record 'empty' has no sequence"):
        scanned(path, empty="error")
    with pytest.raises(InputError, match="record 'empty'"):
        dict(FastaFile(path, empty="error").records())


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        FastaFile(tmp_path / "nope.fa")
    with pytest.raises(InputError, match="is a directory"):
        FastaFile(tmp_path)


def test_random_access_plain_and_bgzip(tmp_path):
    plain = write(tmp_path / "x.fa", TEXT)
    index = FastaFile(plain).index()
    assert index["r1"][2:8] == "GTACGT"
    assert (tmp_path / "x.fa.fai").is_file()
    packed = write(tmp_path / "y.fa.gz", TEXT, "bgzip")
    elsewhere = tmp_path / "idx"
    elsewhere.mkdir()
    index = FastaFile(packed).index(index_dir=elsewhere)
    assert index["r2"][0:8] == "acgtNNAC"
    assert sorted(p.name for p in elsewhere.iterdir()) == ["y.fa.gz.fai", "y.fa.gz.gzi"]


def test_plain_gzip_random_access_says_how(tmp_path):
    path = write(tmp_path / "z.fa.gz", TEXT, "gzip")
    with pytest.raises(InputError, match=r"plain gzip.*bgzip -c.*seqmamba ingest"):
        FastaFile(path).index()


def test_irregular_lines_cannot_index_but_copy_can(tmp_path):
    path = write(tmp_path / "ragged.fa", ">r1\nACG\nGTAAAA\nAC\n>r2\r\nTT\r\n")
    with pytest.raises(InputError, match=r"cannot index.*seqmamba ingest"):
        FastaFile(path).index()
    copy = FastaFile(path).write_bgzip(tmp_path / "ragged.bgz.fa.gz", line_width=4)
    assert detect_compression(copy) == "bgzip"
    assert gzip.decompress(copy.read_bytes()) == b">r1\nACGG\nTAAA\nAAC\n>r2\nTT\n"
    assert FastaFile(copy).index()["r1"][1:6] == "CGGTA"


def test_bgzip_copy_of_gzip_drops_empty_records_and_is_atomic(tmp_path):
    path = write(tmp_path / "g.fa.gz", ">a x y\nAC\n>e\n>b\nGGTT\n", "gzip")
    copy = FastaFile(path).write_bgzip(tmp_path / "g.bgz.fa.gz")
    assert gzip.decompress(copy.read_bytes()) == b">a x y\nAC\n>b\nGGTT\n"
    bad = write(tmp_path / "bad.fa", ">a\nACGT\nAXGT\n")
    with pytest.raises(InputError, match="line 3, column 2"):
        FastaFile(bad).write_bgzip(tmp_path / "out.fa.gz")
    assert not (tmp_path / "out.fa.gz").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("failure", [KeyboardInterrupt, OSError])
def test_an_index_build_that_fails_leaves_no_truncated_index(tmp_path, monkeypatch, failure):
    import errno

    import pyfaidx

    from seqmamba.errors import OutputError

    path = write(tmp_path / "x.fa", TEXT)
    real_build = pyfaidx.Faidx.build_index

    def half_then_fail(self):
        with open(self.indexname, "w") as handle:  # pyfaidx writes the index in place, line by line
            handle.write("r1\t10\t")
        raise KeyboardInterrupt if failure is KeyboardInterrupt else OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pyfaidx.Faidx, "build_index", half_then_fail)
    with pytest.raises(KeyboardInterrupt if failure is KeyboardInterrupt else OutputError) as caught:
        FastaFile(path).index()
    if failure is OSError:
        assert str(caught.value).startswith(f"{path}.fai: no space left on device")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.fa"]  # no .fai a later run would trust
    monkeypatch.setattr(pyfaidx.Faidx, "build_index", real_build)
    assert FastaFile(path).index()["r3"][0:4] == "GGGG"
