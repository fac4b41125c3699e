"""Windowing: coordinates, partial policies, N filter, strands, regions, memory, and E. coli."""


import pytest
from paths import SHARED_DATA

from seqmamba.datasets.bed import Region, read_bed
from seqmamba.datasets.windows import WindowedGenome, tile
from seqmamba.errors import InputError

GENOMES = SHARED_DATA / "genomes"
ECOLI = GENOMES / "GCF_000005845.2_ASM584v2_genomic.fna.gz"
needs_ecoli = pytest.mark.skipif(not ECOLI.is_file(), reason=f"shared genome data missing ({ECOLI})")


def fasta(tmp_path, text, name="g.fa"):
    path = tmp_path / name
    path.write_text(text)
    return path


def coords(genome):
    return [(w.chrom, w.start, w.end, w.strand) for w in genome]


@pytest.mark.parametrize("partial, expected", [
    ("keep", [(0, 4), (2, 6), (4, 8), (6, 10), (8, 11)]),
    ("pad", [(0, 4), (2, 6), (4, 8), (6, 10), (8, 11)]),
    ("drop", [(0, 4), (2, 6), (4, 8), (6, 10)]),
])
def test_partial_policies(tmp_path, partial, expected):
    path = fasta(tmp_path, ">a\nACGTA\nCGTAC\nG\n>b\nAC\n")
    windows = list(WindowedGenome(path, 4, 2, partial=partial))
    assert [(w.start, w.end) for w in windows if w.chrom == "a"] == expected
    short = [w for w in windows if w.chrom == "b"]
    assert [(w.start, w.end) for w in short] == ([] if partial == "drop" else [(0, 2)])
    if partial == "pad":
        assert [w.pad for w in windows] == [0, 0, 0, 0, 1, 2]
    assert windows[0].sequence == b"ACGT" and windows[1].sequence == b"GTAC"


def test_streaming_matches_tile_for_many_shapes(tmp_path):
    for length in (1, 7, 10, 23):
        path = fasta(tmp_path, f">r\n{'A' * length}\n", f"r{length}.fa")
        for size, stride, partial in [(5, 5, "keep"), (5, 2, "keep"), (5, 7, "keep"), (5, 5, "drop"),
                                      (10, 3, "pad"), (30, 5, "keep")]:
            got = [(w.start, w.end) for w in WindowedGenome(path, size, stride, partial=partial)]
            assert got == tile(0, length, size, stride, partial), (length, size, stride, partial)


def test_n_filter_soft_mask_and_strands(tmp_path):
    path = fasta(tmp_path, ">a\nAAcgNNNN\nACGT\n")
    windows = list(WindowedGenome(path, 4, strand="both"))
    assert [(w.start, w.strand, w.n_fraction) for w in windows] == [
        (0, "+", 0.0), (0, "-", 0.0), (4, "+", 1.0), (4, "-", 1.0), (8, "+", 0.0), (8, "-", 0.0)]
    assert windows[1].sequence == b"cgTT"  # reverse complement keeps soft-masking
    kept = list(WindowedGenome(path, 4, max_n_frac=0.5, strand="-"))
    assert [(w.start, w.strand) for w in kept] == [(0, "-"), (8, "-")]
    assert kept[1].to_bed() == "a\t8\t12\t.\t0\t-"


def test_regions(tmp_path):
    path = fasta(tmp_path, ">a\nACGTACGTAC\n>b\nGGGGGCCCCC\n")
    bed = tmp_path / "r.bed"
    bed.write_text("track name=x\nb\t2\t9\tpeak\n# comment\na\t0\t3\n")
    windows = list(WindowedGenome(path, 4, 2, regions=read_bed(bed)))
    assert [(w.chrom, w.start, w.end, w.sequence) for w in windows] == [
        ("a", 0, 3, b"ACG"), ("b", 2, 6, b"GGGC"), ("b", 4, 8, b"GCCC"), ("b", 6, 9, b"CCC")]
    with pytest.raises(InputError, match=r"r.bed: line 2: region b 2 12 ends past the end of 'b' \(10 bp\)"):
        list(WindowedGenome(path, 4, regions=[Region("b", 2, 12, 2, str(bed))]))
    with pytest.raises(InputError, match="'zz' is not a record"):
        list(WindowedGenome(path, 4, regions=[Region("zz", 0, 5)]))


@pytest.mark.parametrize("text, message", [("a\t5\t2\n", "line 1: need 0 <= start < end"),
                                           ("a 1 2\n", "line 1: BED needs chrom"),
                                           ("a\tx\t2\n", "line 1: start and end must be integers"),
                                           ("# nothing\n", "no regions")])
def test_bad_bed(tmp_path, text, message):
    bed = tmp_path / "bad.bed"
    bed.write_text(text)
    with pytest.raises(InputError, match=message):
        read_bed(bed)


def test_bad_arguments(tmp_path):
    path = fasta(tmp_path, ">a\nACGT\n")
    for kwargs in ({"size": 0}, {"stride": 0}, {"partial": "x"}, {"strand": "+-"}, {"max_n_frac": 2}):
        with pytest.raises(ValueError):
            WindowedGenome(path, **{"size": 4, **kwargs})


def test_memory_is_bounded_by_windows_not_records():
    # A 3 Mbp record fed in 64 kB chunks: the cutter keeps about a window, never the record.
    from seqmamba.datasets.windows import _RecordCutter

    cutter = _RecordCutter("long", 100_000, 50_000, "keep")
    chunk = b"ACGT" * (1 << 14)
    peak, count = 0, 0
    for _ in range(3_000_000 // len(chunk)):
        for start, end, get_bases in cutter.push(chunk):
            assert len(get_bases()) == end - start == 100_000
            count += 1
        peak = max(peak, len(cutter.buffer))
    assert count > 50
    assert peak <= 2 * 100_000 + len(chunk)


@needs_ecoli
def test_ecoli_windows():
    windows = list(WindowedGenome(ECOLI, 1_000_000, 100_000))
    assert len(windows) == 38
    assert {w.chrom for w in windows} == {"NC_000913.3"}
    assert [(w.start, w.end) for w in windows[:2]] == [(0, 1_000_000), (100_000, 1_100_000)]
    assert (windows[-2].start, windows[-2].end) == (3_600_000, 4_600_000)
    assert (windows[-1].start, windows[-1].end) == (3_700_000, 4_641_652)
    assert all(w.n_fraction == 0 for w in windows)
    first = windows[0].sequence
    assert first.startswith(b"AGCTTTTCATTCTGACTGCAACGGGCAATATGTC")  # the RefSeq record's first bases
    gc = (first.count(b"G") + first.count(b"C")) / len(first)
    assert 0.49 < gc < 0.53
