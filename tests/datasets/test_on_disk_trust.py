"""What is on disk is checked before it is trusted (issue 25, cases 6 and 7).

Case 7: a model directory with a malformed file (a missing or mistyped field in estimator.json, config.json or
tokenizer.json, truncated weights, a tensor of another shape, a config edited to another size, a directory of
another kind of model) is refused with one line naming the file and the field or tensor, through the real CLI
(exit 1, no traceback, no output) and through every Python loader (an `InputError` with the same text). Each
case used to end in "unexpected KeyError/TypeError ... (a bug in seqmamba)", or worse, loaded.

Case 6: a FASTA index (.fai, .gzi) that no longer describes its file (the FASTA rewritten after indexing, the
index still looking newer) is rebuilt where seqmamba may write, and refused by name where it may not; it used to
be trusted, giving the old lengths and bases at the old offsets.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file, save_file

from seqmamba import MambaConfig, MambaEmbedder, MambaForecaster, MambaSequenceClassifier
from seqmamba.dna import DNAEncoder
from seqmamba.errors import InputError
from seqmamba.pipelines.cli import main

TINY_FORECAST = ["--lookback", "24", "--horizon", "6", "--d-model", "8", "--n-layers", "1", "--max-epochs", "1",
                 "--device", "cpu", "-q"]
HOW_DNA = "`seqmamba classify` / `seqmamba embed`, or MambaSequenceClassifier.load / MambaEmbedder.load"
HOW_FORECASTER = "`seqmamba forecast`, or MambaForecaster.load"


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Tiny models of every kind, saved once: dna (classifier), emb (embedder), fc (forecaster), enc (encoder)."""
    root = tmp_path_factory.mktemp("models")
    rng = np.random.default_rng(0)
    X = ["".join(rng.choice(list("AT" if i % 2 else "GC"), 40)) for i in range(16)]
    y = ["AT" if i % 2 else "GC" for i in range(16)]
    clf = MambaSequenceClassifier(d_model=8, n_layers=1, d_state=4, max_len=64, max_epochs=1, batch_size=16,
                                  device="cpu", random_state=0).fit(X, y)
    clf.save(root / "dna")
    MambaEmbedder(model=clf, device="cpu").fit().save(root / "emb")
    t = np.arange(120, dtype=np.float64)
    pd.DataFrame({"date": pd.date_range("2022-01-01", periods=120, freq="D"), "a": np.sin(t / 4),
                  "b": np.cos(t / 6)}).to_csv(root / "toy.csv", index=False)
    assert main(["train", "forecast", str(root / "toy.csv"), "-o", str(root / "fc"), *TINY_FORECAST]) == 0
    DNAEncoder(MambaConfig(d_model=8, n_layers=1, d_state=4, vocab_size=10)).save_pretrained(root / "enc")
    (root / "in.fa").write_text(">r1\nACGTACGTAC\n>r2\nGGCCGGCCAA\n")
    return root


# --- the corruptions: each edits a copy of a model directory and returns the one line it must give ------------

def edit_json(path: Path, edit) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data, indent=2))


def truncated(model: Path) -> str:
    weights = model / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    return f"{weights}: truncated or not a safetensors file"


def wrong_shape(model: Path, name: str) -> str:
    """One tensor saved one element longer along its first axis (a file edited or written by another model)."""
    weights = model / "model.safetensors"
    tensors = load_file(weights)
    old = tensors[name]
    tensors[name] = torch.zeros((old.shape[0] + 1, *old.shape[1:]), dtype=old.dtype)
    save_file(tensors, weights)
    new = (old.shape[0] + 1, *old.shape[1:])
    return f"{weights}: tensor {name!r} has shape {new}, the config implies {tuple(old.shape)}"


def dna_case(case: str, model: Path, models: Path) -> str:
    estimator, config, tokenizer = model / "estimator.json", model / "config.json", model / "tokenizer.json"
    if case == "missing-key":
        edit_json(estimator, lambda d: d["head"].pop("n_outputs"))
        return f"{estimator}: field 'head.n_outputs': missing (expected an integer)"
    if case == "wrong-type":
        edit_json(estimator, lambda d: d["params"].update(max_len="x"))
        return f"{estimator}: field 'params.max_len': expected an integer, got \"x\""
    if case == "wrong-type-config":
        edit_json(config, lambda d: d["config"].update(d_state="4"))
        return f"{config}: field 'config.d_state': expected an integer, got \"4\""
    if case == "bad-tokenizer":
        edit_json(tokenizer, lambda d: d.update(ambiguity=5))
        return f"{tokenizer}: field 'ambiguity': expected one of \"n\", \"unk\", \"error\", got 5"
    if case == "truncated-weights":
        return truncated(model)
    if case == "wrong-shape-tensor":
        return wrong_shape(model, "encoder.encoder.layers.0.norm.weight")
    if case == "edited-config-shape":
        edit_json(config, lambda d: d["config"].update(d_model=16))
        return (f"{model / 'model.safetensors'}: tensor 'encoder.embedding.weight' has shape (10, 8), the config "
                "implies (10, 16) (19 more tensors differ)")
    assert case == "forecaster-dir"
    shutil.rmtree(model)
    shutil.copytree(models / "fc", model)
    return (f"{estimator}: no such file; {model} holds a MambaForecaster (a forecaster directory), not a DNA model "
            f"written by `seqmamba train dna` or an estimator's save(); load it with {HOW_FORECASTER}")


def forecaster_case(case: str, model: Path, models: Path) -> str:
    config = model / "config.json"
    if case == "missing-key":
        edit_json(config, lambda d: d["fitted"].pop("n_epochs_"))
        return f"{config}: field 'fitted.n_epochs_': missing (expected an integer)"
    if case == "wrong-type":
        edit_json(config, lambda d: d["params"].update(batch_size="x"))
        return f"{config}: field 'params.batch_size': expected an integer, got \"x\""
    if case == "wrong-type-config":
        edit_json(config, lambda d: d["network"].update(lookback=[24]))
        return f"{config}: field 'network.lookback': expected an integer, got [24]"
    if case == "bad-scaler":
        edit_json(config, lambda d: d["scaler"]["fitted"].update(mean_=[0.0]))
        return f"{config}: field 'scaler.fitted.mean_': 1 values, expected 2 (fitted.n_features_in_)"
    if case == "truncated-weights":
        return truncated(model)
    if case == "wrong-shape-tensor":
        return wrong_shape(model, "context")
    if case == "edited-config-shape":
        edit_json(config, lambda d: d["network"].update(d_model=16))
        return (f"{model / 'model.safetensors'}: tensor 'model.embed.weight' has shape (8, 24), the config implies "
                "(16, 24) (20 more tensors differ)")
    assert case == "dna-dir"
    shutil.rmtree(model)
    shutil.copytree(models / "dna", model)
    return (f"{config}: holds a SequenceHeadModel (a DNA model directory), not a MambaForecaster; load it with "
            f"{HOW_DNA}")


def encoder_case(case: str, model: Path, models: Path) -> str:
    config = model / "config.json"
    if case == "missing-key":
        edit_json(config, lambda d: d.pop("model_type"))
        return f"{config}: field 'model_type': missing (expected a string)"
    if case == "wrong-type":
        edit_json(config, lambda d: d["config"].update(d_model="x"))
        return f"{config}: field 'config.d_model': expected an integer, got \"x\""
    if case == "wrong-type-config":
        edit_json(config, lambda d: d["config"].update(bidirectional="yes"))
        return f"{config}: field 'config.bidirectional': expected true or false, got \"yes\""
    if case == "truncated-weights":
        return truncated(model)
    if case == "wrong-shape-tensor":
        return wrong_shape(model, "encoder.layers.0.norm.weight")
    if case == "edited-config-shape":
        edit_json(config, lambda d: d["config"].update(d_state=8))
        return (f"{model / 'model.safetensors'}: tensor 'encoder.layers.0.mixer.ssm.A_log' has shape (16, 4), the "
                "config implies (16, 8) (1 more tensor differs)")
    source = "dna" if case == "dna-dir" else "fc"
    shutil.rmtree(model)
    shutil.copytree(models / source, model)
    if source == "dna":
        return (f"{config}: holds a SequenceHeadModel (a DNA model directory), not a DNAEncoder; load it with "
                f"{HOW_DNA}")
    return (f"{config}: holds a MambaForecaster (a forecaster directory), not a DNAEncoder; load it with "
            f"{HOW_FORECASTER}")


DNA_CASES = ["missing-key", "wrong-type", "wrong-type-config", "bad-tokenizer", "truncated-weights",
             "wrong-shape-tensor", "edited-config-shape", "forecaster-dir"]
FORECASTER_CASES = ["missing-key", "wrong-type", "wrong-type-config", "bad-scaler", "truncated-weights",
                    "wrong-shape-tensor", "edited-config-shape", "dna-dir"]
ENCODER_CASES = ["missing-key", "wrong-type", "wrong-type-config", "truncated-weights", "wrong-shape-tensor",
                 "edited-config-shape", "dna-dir", "forecaster-dir"]


def broken_copy(models: Path, tmp_path: Path, source: str, case: str, corrupt) -> tuple[Path, str]:
    model = tmp_path / "model"
    shutil.copytree(models / source, model)
    return model, corrupt(case, model, models)


def one_error_line(capfd) -> str:
    err = capfd.readouterr().err
    assert "Traceback" not in err and "a bug in seqmamba" not in err, err
    assert err.count("\n") == 1 and err.startswith("Error: "), err
    return err[len("Error: "):].rstrip("\n")


# --- case 7 through the CLI --------------------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["classify", "embed"])
@pytest.mark.parametrize("case", DNA_CASES)
def test_malformed_dna_model_through_the_cli(models, tmp_path, capfd, command, case):
    model, expected = broken_copy(models, tmp_path, "dna", case, dna_case)
    out = tmp_path / ("out.tsv" if command == "classify" else "out.npy")
    assert main([command, str(model), str(models / "in.fa"), "-o", str(out), "-q"]) == 1
    assert one_error_line(capfd) == expected
    assert not out.exists()


@pytest.mark.parametrize("case", FORECASTER_CASES)
def test_malformed_forecaster_through_the_cli(models, tmp_path, capfd, case):
    model, expected = broken_copy(models, tmp_path, "fc", case, forecaster_case)
    out = tmp_path / "out.csv"
    assert main(["forecast", str(model), str(models / "toy.csv"), "-o", str(out)]) == 1
    assert one_error_line(capfd) == expected
    assert not out.exists()


# --- case 7 through the Python API -------------------------------------------------------------------------------

@pytest.mark.parametrize("source", ["dna", "emb"])
@pytest.mark.parametrize("case", DNA_CASES)
def test_malformed_dna_model_through_the_api(models, tmp_path, source, case):
    if source == "emb" and case == "wrong-type":  # the embedder's own estimator.json
        case = "missing-key"
    model, expected = broken_copy(models, tmp_path, source, case, dna_case)
    cls = MambaSequenceClassifier if source == "dna" else MambaEmbedder
    with pytest.raises(InputError) as caught:
        cls.load(model)
    assert str(caught.value) == expected


@pytest.mark.parametrize("case", FORECASTER_CASES)
def test_malformed_forecaster_through_the_api(models, tmp_path, case):
    model, expected = broken_copy(models, tmp_path, "fc", case, forecaster_case)
    with pytest.raises(InputError) as caught:
        MambaForecaster.load(model)
    assert str(caught.value) == expected


@pytest.mark.parametrize("case", ENCODER_CASES)
def test_malformed_encoder_checkpoint_through_the_api(models, tmp_path, case):
    model, expected = broken_copy(models, tmp_path, "enc", case, encoder_case)
    with pytest.raises(InputError) as caught:
        DNAEncoder.from_pretrained(model)
    assert str(caught.value) == expected


def test_good_models_still_load(models):
    """The checks refuse nothing seqmamba wrote: every kind loads and answers."""
    assert MambaSequenceClassifier.load(models / "dna").predict(["ACGTAC"]).shape == (1,)
    assert MambaEmbedder.load(models / "emb").transform(["ACGTAC"]).shape == (1, 8)
    assert len(MambaForecaster.load(models / "fc").predict()) == 6
    assert DNAEncoder.from_pretrained(models / "enc").config.d_model == 8


def test_a_streaming_patch_forecaster_round_trips(tmp_path):
    """A "patch" forecaster saved after update() carries its stream state: its shapes are checked too."""
    t = np.arange(80, dtype=np.float64)
    frame = pd.DataFrame({"date": pd.date_range("2022-01-01", periods=80, freq="D"), "a": np.sin(t / 4),
                          "b": np.cos(t / 6)})
    fc = MambaForecaster(lookback=16, horizon=4, d_model=8, n_layers=1, d_state=4, patch_len=4,
                         architecture="patch", max_epochs=1, device="cpu", verbose=0).fit(frame.iloc[:70])
    fc.update(frame.iloc[70:])
    fc.save(tmp_path / "fc")
    expected = fc.predict()
    pd.testing.assert_frame_equal(MambaForecaster.load(tmp_path / "fc").predict(), expected)
    weights = tmp_path / "fc" / "model.safetensors"
    tensors = load_file(weights)
    tensors["stream.ssm0"] = tensors["stream.ssm0"][:, :1].contiguous()
    save_file(tensors, weights)
    with pytest.raises(InputError, match=r"model\.safetensors: tensor 'stream\.ssm0' has shape \(2, 1, 4\), the "
                                         r"config implies \(2, 16, 4\)$"):
        MambaForecaster.load(tmp_path / "fc")


# --- case 6: a FASTA index that no longer describes its file ------------------------------------------------------
#
# The FASTA is rewritten after it was indexed, and the old index looks newer than it (`cp -p`, `rsync -a`, an
# unpacked archive, or simply a rewrite within the file system's timestamp tick): pyfaidx's own rule (rebuild
# an index older than the file) misses it, and lengths and bases came from the old offsets.

OLD_FASTA = ">r1 first\nACGTACGTAC\nACGTA\n>r2\nGGGGCCCC\n>r3\nTTTT\n"
NEW_FASTA = ">r1 first\nACGTACGTAC\nACGTACGTAC\nAC\n>r2\nCCCCGGGGAA\n>r3\nTTTTAAAA\n>r4\nACGT\n"
NEW_RECORDS = {"r1": "ACGTACGTACACGTACGTACAC", "r2": "CCCCGGGGAA", "r3": "TTTTAAAA", "r4": "ACGT"}


def write_fasta(path: Path, text: str, bgzip: bool) -> Path:
    from seqmamba.datasets.fasta import FastaFile

    if not bgzip:
        path.write_text(text)
        return path
    plain = path.with_name("plain-" + path.name.removesuffix(".gz"))
    plain.write_text(text)
    FastaFile(plain).write_bgzip(path, line_width=10)
    plain.unlink()
    return path


def indexed_then_rewritten(folder: Path, bgzip: bool) -> tuple[Path, list[Path], bytes]:
    """A FASTA indexed, then rewritten with other records, its index files dated after the rewrite.

    Returns the FASTA, its index files, and the bytes of the .fai that pyfaidx builds for the new file."""
    import pyfaidx

    from seqmamba.datasets.fasta import FastaFile

    fasta = write_fasta(folder / ("g.fa.gz" if bgzip else "g.fa"), OLD_FASTA, bgzip)
    FastaFile(fasta).index()
    indexes = [fasta.with_name(fasta.name + ".fai")] + ([fasta.with_name(fasta.name + ".gzi")] if bgzip else [])
    write_fasta(fasta, NEW_FASTA, bgzip)
    for index in indexes:
        os.utime(index, (fasta.stat().st_mtime + 60, fasta.stat().st_mtime + 60))
    reference = folder / "reference"
    reference.mkdir()
    shutil.copy(fasta, reference / fasta.name)
    pyfaidx.Faidx(str(reference / fasta.name)).close()
    return fasta, indexes, (reference / (fasta.name + ".fai")).read_bytes()


@pytest.mark.parametrize("bgzip", [False, True], ids=["plain", "bgzip"])
def test_stale_index_is_rebuilt_through_the_cli(tmp_path, capfd, bgzip):
    fasta, indexes, fresh = indexed_then_rewritten(tmp_path, bgzip)
    assert main(["ingest", str(fasta), "--tsv", "-q"]) == 0
    out = capfd.readouterr().out.splitlines()
    assert [row.split("\t")[:2] for row in out[1:5]] == [[k, str(len(v))] for k, v in NEW_RECORDS.items()]
    assert indexes[0].read_bytes() == fresh


@pytest.mark.parametrize("bgzip", [False, True], ids=["plain", "bgzip"])
def test_stale_index_is_rebuilt_through_the_api(tmp_path, bgzip):
    from seqmamba.datasets.fasta import FastaFile

    fasta, indexes, fresh = indexed_then_rewritten(tmp_path, bgzip)
    if not bgzip:  # lengths() reads the .fai only when it is this file's (it does not write)
        assert FastaFile(fasta).lengths() == {k: len(v) for k, v in NEW_RECORDS.items()}
        assert indexes[0].read_bytes() != fresh
    index = FastaFile(fasta).index()
    assert {name: index[name][:] for name in index.keys()} == NEW_RECORDS
    assert indexes[0].read_bytes() == fresh


def stale_index_refusal(fasta: Path, folder: Path) -> str:
    from seqmamba.datasets.fai_check import index_problem

    fai = fasta.with_name(fasta.name + ".fai")
    problem = index_problem(fasta, "plain", fai)
    assert problem == "record 'r1' does not end at byte 26 (it is not 15 bases long)"
    return (f"{fai}: does not match g.fa ({problem}), and {folder} is not writable to rebuild it; pass index_dir "
            "(or `seqmamba ingest -o DIR`)")


def test_stale_index_in_a_read_only_folder_is_refused_through_the_api(tmp_path, monkeypatch):
    from seqmamba.datasets.fasta import FastaFile

    fasta, indexes, _ = indexed_then_rewritten(tmp_path, bgzip=False)
    expected = stale_index_refusal(fasta, tmp_path)
    before = indexes[0].read_bytes()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: mode != os.W_OK and real_access(path, mode, **kw))
    with pytest.raises(InputError) as caught:
        FastaFile(fasta).index()
    assert str(caught.value) == expected
    assert indexes[0].read_bytes() == before
    assert FastaFile(fasta).lengths() == {k: len(v) for k, v in NEW_RECORDS.items()}  # a scan, not the old index


def test_stale_index_in_a_read_only_folder_is_refused_through_the_cli(tmp_path):
    """The folder is read-only (0555); as root the command runs without the capabilities that ignore that."""
    from paths import REPO
    from process_helpers import without_dac_override

    data = tmp_path / "data"
    data.mkdir()
    fasta, indexes, _ = indexed_then_rewritten(data, bgzip=False)
    shutil.rmtree(data / "reference")
    expected = stale_index_refusal(fasta, data)
    before = indexes[0].read_bytes()
    prefix: list[str] = []
    if os.geteuid() == 0:
        prefix = without_dac_override()
        if prefix is None:
            pytest.skip("running as root and cannot drop CAP_DAC_OVERRIDE (no working setpriv)")
    data.chmod(0o555)
    try:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
        done = subprocess.run([*prefix, sys.executable, "-m", "seqmamba.pipelines.cli", "ingest", str(fasta), "-q"],
                              capture_output=True, text=True, env=env, timeout=300)
    finally:
        data.chmod(0o755)
    assert (done.returncode, done.stderr) == (1, f"Error: {expected}\n")
    assert indexes[0].read_bytes() == before and sorted(p.name for p in data.iterdir()) == ["g.fa", "g.fa.fai"]


# The checks themselves: every index pyfaidx builds passes; every kind of rewrite is caught.

LAYOUTS = {
    "plain": ">r1 desc\nACGTACGT\nACG\n>r2\nGGGG\n",
    "crlf": ">r1\r\nACGTAC\r\nAC\r\n>r2\r\nGG\r\n",
    "no-final-line-end": ">r1\nACGT\nAC\n>r2\nGGCC",
    "empty-records": ">r0\n>r1\nACGT\nAC\n>e\n>r2\nGG\n",
    "blank-lines-first": "\n\n>r1\nACGT\n>r2\nGG\n",
    "comment-first": ";a comment\n>r1\nACGT\n",
    "full-last-line": ">r1\nACGT\nACGT\n>r2\nACGT\n",
    "trailing-blank-line": ">r1\nACGT\n\n",
    "one-base": ">r1\nA\n",
}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_fresh_index_passes(tmp_path, layout):
    import pyfaidx

    from seqmamba.datasets.fai_check import index_problem

    fasta = tmp_path / "g.fa"
    fasta.write_text(LAYOUTS[layout])
    pyfaidx.Faidx(str(fasta)).close()
    assert index_problem(fasta, "plain", tmp_path / "g.fa.fai") is None


REWRITES = {
    # name: (new text, the problem found); the index is the one of OLD_FASTA
    "records-swapped": (">r2\nGGGGCCCC\n>r1 first\nACGTACGTAC\nACGTA\n>r3\nTTTT\n",
                        "record 'r1' does not start at byte 10 (its header line is not there)"),
    "a-base-more": (">r1 first\nACGTACGTAC\nACGTAA\n>r2\nGGGGCCCC\n>r3\nTTTT\n",
                    "record 'r1' does not end at byte 26 (it is not 15 bases long)"),
    "same-size-other-lines": (">r1 first\nACGTACGTACACG\nTA\n>r2\nGGGGCCCC\n>r3\nTTTT\n",
                              "record 'r1': its lines are not 10 bases long"),
    "record-appended": (OLD_FASTA + ">r4\nACGT\n",
                        "g.fa goes on after the last indexed record 'r3' (byte 48 of 58)"),
    "cut-short": (OLD_FASTA[:30], "the last record 'r3' ends at byte 48 of g.fa, which has 30"),
    "a-base-less-same-size": (">r1 first\nACGTACGTAC\nACGT\n>r2\nGGGGCCCC\n>r3\nTTTTT\n",
                              "record 'r1' does not end at byte 26 (it is not 15 bases long)"),
}


@pytest.mark.parametrize("rewrite", REWRITES)
def test_a_rewrite_under_a_newer_index_is_caught(tmp_path, rewrite):
    import pyfaidx

    from seqmamba.datasets.fai_check import index_problem

    fasta = tmp_path / "g.fa"
    fasta.write_text(OLD_FASTA)
    pyfaidx.Faidx(str(fasta)).close()
    fai = tmp_path / "g.fa.fai"
    text, problem = REWRITES[rewrite]
    fasta.write_text(text)
    os.utime(fai, (fasta.stat().st_mtime + 1, fasta.stat().st_mtime + 1))
    assert index_problem(fasta, "plain", fai) == problem


def test_broken_index_files_are_caught(tmp_path):
    from seqmamba.datasets.fai_check import index_problem
    from seqmamba.datasets.fasta import FastaFile

    fasta = write_fasta(tmp_path / "g.fa.gz", OLD_FASTA, bgzip=True)
    FastaFile(fasta).index()
    fai, gzi = tmp_path / "g.fa.gz.fai", tmp_path / "g.fa.gz.gzi"
    assert index_problem(fasta, "bgzip", fai, gzi) is None
    good_fai, good_gzi = fai.read_bytes(), gzi.read_bytes()
    fai.write_bytes(good_fai + b"r9\tx\t1\t2\t3\n")
    assert index_problem(fasta, "bgzip", fai, gzi) == "g.fa.gz.fai, line 4: not a .fai record (name and four integers)"
    fai.write_bytes(good_fai)
    gzi.write_bytes(good_gzi[:-3])
    assert index_problem(fasta, "bgzip", fai, gzi) == ("g.fa.gz.gzi is not a .gzi index (truncated, or of another "
                                                       "format)")
    gzi.unlink()
    assert index_problem(fasta, "bgzip", fai, gzi) == "there is no g.fa.gz.gzi"
    os.utime(fai, (1, 1))
    assert index_problem(fasta, "bgzip", fai) == "g.fa.gz.fai is older than g.fa.gz"
