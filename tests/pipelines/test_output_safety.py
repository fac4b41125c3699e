"""Nothing the user had is ever lost (issue 25, cases 1-5 and 11), through the real CLI and the Python API.

1. a command writes a directory only when it is new, empty or its own kind of model (`--overwrite` for a
   finished one); anything else (data, `.`, the folder holding DATA) is refused, even with `--overwrite`;
2. an output is never an input (same path, a link, the same inode), whatever `--overwrite` says;
3. one rule for every command that writes a model directory (`claim_model_dir`);
4. an existing output file is refused without `--overwrite`, replaced atomically with it; stdout and
   special files are written as before; `quickstart` re-runs into its own folder;
5. one run at a time writes a directory (a lock): a second fails at once;
11. a bad base in a training table names the file, line and column, and leaves nothing behind.

Every refusal: exit 1, exactly one `Error: ...` line naming the path, no traceback, the user's files unchanged.
"""

import errno
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_models import TINY_DNA, TINY_FORECAST, train_tiny_models
from process_helpers import env, run_until

from seqmamba.datasets.labelled import read_labelled_table
from seqmamba.datasets.output_safety import lock_output_dir, refuse_same_file
from seqmamba.errors import InputError, OutputBusyError, OutputError, OutputExistsError
from seqmamba.pipelines.cli import main

NOT_A_BASE = "is not a nucleotide code in the sequence (A C G T U N, IUPAC ambiguity codes, either case)"


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A tiny DNA classifier (dna/) and a tiny forecaster (fc/, columns a, b), trained once, never written to."""
    root = train_tiny_models(tmp_path_factory.mktemp("models"))
    (root / "x.fa").write_text(">r1\nACGTACGTAC\n>r2\nGGCCAATT\n")
    return root


def copy(models, name, tmp_path):
    """A copy of a model (or file) of the module's, to be written over."""
    source, target = models / name, tmp_path / name
    if source.is_dir():
        shutil.copytree(source, target)
    else:
        shutil.copy(source, target)
    return target


def snapshot(folder):
    """Every file under ``folder`` with its bytes (what must stay unchanged)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def refused(argv, capfd, message):
    """Run the CLI; it must exit 1 with exactly ``Error: <message>`` (one line, no traceback)."""
    code = main(argv)
    err = capfd.readouterr().err
    assert code == 1, err
    assert err == f"Error: {message}\n", err
    return err


def ok(argv, capfd):
    code = main(argv)
    err = capfd.readouterr().err
    assert code == 0, err
    return err


# --- case 1: a directory that is not a model is never replaced --------------------------------------------------

@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_case1_train_forecast_refuses_a_directory_that_is_not_a_model(models, tmp_path, capfd, overwrite):
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "notes.txt").write_text("a week of work\n")
    (folder / "sub").mkdir()
    (folder / "sub" / "data.csv").write_text("1,2\n")
    before = snapshot(folder)
    refused(["train", "forecast", str(models / "toy.csv"), "-o", str(folder), *TINY_FORECAST, *overwrite], capfd,
            f"{folder}: exists and is not a forecaster directory (it holds 'notes.txt', 'sub'); choose a new or "
            "empty directory")
    assert snapshot(folder) == before and sorted(os.listdir(folder)) == ["notes.txt", "sub"]


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_case1_train_forecast_refuses_the_current_directory(models, tmp_path, capfd, monkeypatch, overwrite):
    """`-o .`, and `-o` the directory holding DATA.csv: both used to be emptied, exit 0."""
    monkeypatch.chdir(tmp_path)
    shutil.copy(models / "toy.csv", "DATA.csv")
    (tmp_path / "notes.txt").write_text("keep me\n")
    before = snapshot(tmp_path)
    refused(["train", "forecast", "DATA.csv", "-o", ".", *TINY_FORECAST, *overwrite], capfd,
            ".: holds the input DATA.csv; writing a model there could destroy it: choose another directory")
    refused(["train", "forecast", str(models / "toy.csv"), "-o", ".", *TINY_FORECAST, *overwrite], capfd,
            ".: exists and is not a forecaster directory (it holds 'DATA.csv', 'notes.txt'); choose a new or "
            "empty directory")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_case1_train_dna_refuses_a_directory_that_is_not_a_model(models, tmp_path, capfd, overwrite):
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me\n")
    refused(["train", "dna", "--train", str(models / "train.csv"), "-o", str(folder), *TINY_DNA, *overwrite], capfd,
            f"{folder}: exists and is not a DNA model directory (it holds 'notes.txt'); choose a new or empty "
            "directory")
    assert sorted(os.listdir(folder)) == ["notes.txt"]


def test_case1_a_model_directory_holding_other_files_is_not_replaced(models, tmp_path, capfd):
    """`train forecast` replaces MODEL_DIR whole: a file of the user's in it would go with it."""
    fc = copy(models, "fc", tmp_path)
    (fc / "notes.txt").write_text("keep me\n")
    before = snapshot(fc)
    refused(["train", "forecast", str(models / "toy.csv"), "-o", str(fc), "--overwrite", *TINY_FORECAST], capfd,
            f"{fc}: holds 'notes.txt', not part of a forecaster; move it away or choose another directory")
    assert snapshot(fc) == before


def test_case1_forecaster_save_refuses_a_foreign_directory(models, tmp_path):
    from seqmamba import MambaForecaster

    fc = MambaForecaster.load(models / "fc")
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "config.json").write_text('{"mine": true}\n')
    for overwrite in (False, True):
        with pytest.raises(OutputExistsError) as caught:
            fc.save(folder, overwrite=overwrite)
        assert str(caught.value) == (f"{folder}: exists and is not a forecaster directory (it holds 'config.json'); "
                                     "choose a new or empty directory")
        assert isinstance(caught.value, FileExistsError)
    assert (folder / "config.json").read_text() == '{"mine": true}\n'
    with pytest.raises(OutputExistsError, match="holds a DNA model, not a forecaster"):
        fc.save(copy(models, "dna", tmp_path), overwrite=True)
    from seqmamba import DNAEncoder, MambaConfig

    encoder = tmp_path / "encoder"
    DNAEncoder(MambaConfig(d_model=8, n_layers=1, d_state=4, vocab_size=5)).save_pretrained(encoder)
    with pytest.raises(OutputExistsError, match="encoder: holds an encoder checkpoint, not a forecaster"):
        fc.save(encoder, overwrite=True)
    fc.save(tmp_path / "new")  # new, empty, or a forecaster's: as before
    fc.save(tmp_path / "new")  # the default replaces its own kind (documented)
    with pytest.raises(OutputExistsError, match="already holds a forecaster; pass overwrite=True to replace it"):
        fc.save(tmp_path / "new", overwrite=False)
    assert sorted(os.listdir(tmp_path / "new")) == ["config.json", "model.safetensors"]


def test_case1_dna_save_refuses_a_foreign_directory(models, tmp_path):
    from seqmamba import MambaEmbedder, MambaSequenceClassifier

    clf = MambaSequenceClassifier.load(models / "dna")
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "config.json").write_text('{"mine": true}\n')
    for overwrite in (False, True):
        with pytest.raises(OutputExistsError, match=r"results: exists and is not a DNA model directory \(it holds "
                                                     r"'config.json'\); choose a new or empty directory"):
            clf.save(folder, overwrite=overwrite)
    assert sorted(os.listdir(folder)) == ["config.json"] and (folder / "config.json").read_text() == '{"mine": true}\n'
    with pytest.raises(OutputExistsError, match="holds a forecaster, not a DNA model"):
        clf.save(copy(models, "fc", tmp_path))
    target = copy(models, "dna", tmp_path)
    with pytest.raises(OutputExistsError, match="already holds a DNA model; pass overwrite=True to replace it"):
        clf.save(target, overwrite=False)
    clf.save(target)  # the default replaces its own kind (documented)
    MambaEmbedder.from_classifier(clf).save(target)  # the other DNA estimator's directory is the same kind


# --- case 2: an output is never an input ------------------------------------------------------------------------

def _same_file_cases(models, tmp):
    x = copy(models, "x.fa", tmp)
    data = copy(models, "toy.csv", tmp)
    npy = tmp / "in.npy"  # a FASTA file that happens to have the name of an embedding output
    npy.write_text(x.read_text())
    hard = tmp / "hard.fa"
    os.link(x, hard)
    soft = tmp / "soft.fa"
    soft.symlink_to(x)
    regions = tmp / "r.bed"
    regions.write_text("r1\t0\t8\n")
    ref = tmp / "ref"
    ref.mkdir()
    os.link(tmp / "x.fa", ref / "x.fa.gz")  # ingest's copy name, a hard link to the input
    model_holding_data = tmp / "m"
    model_holding_data.mkdir()
    shutil.copy(models / "train.csv", model_holding_data / "train.csv")
    dna = str(models / "dna")
    fc = str(models / "fc")
    return [
        (["classify", dna, str(x), "-o", str(x)], f"{x}: is also an input"),
        (["classify", dna, str(x), "-o", str(hard)], f"{hard}: is also an input ({x})"),
        (["classify", dna, str(x), "-o", str(soft)], f"{soft}: is also an input ({x})"),
        (["classify", dna, str(x), "-o", f"{dna}/model.safetensors"], f"{dna}/model.safetensors: is also an input"),
        (["windows", str(x), "-o", str(x)], f"{x}: is also an input"),
        (["windows", str(x), "--regions", str(regions), "-o", str(regions)], f"{regions}: is also an input"),
        (["embed", dna, str(npy), "-o", str(npy)], f"{npy}: is also an input"),
        (["forecast", fc, str(data), "-o", str(data)], f"{data}: is also an input"),
        (["forecast", fc, str(data), "--plot", str(data)], f"{data}: is also an input"),
        (["ingest", str(x), "-o", str(ref)], f"{ref}/x.fa.gz: is also an input ({x})"),
    ], [
        (["train", "forecast", str(data), "-o", str(tmp), *TINY_FORECAST],
         f"{tmp}: holds the input {data}; writing a model there could destroy it: choose another directory"),
        (["train", "dna", "--train", str(model_holding_data / "train.csv"), "-o", str(model_holding_data),
          *TINY_DNA], f"{model_holding_data}: holds the input {model_holding_data}/train.csv; writing a model there "
                      "could destroy it: choose another directory"),
    ]


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_case2_an_output_that_is_an_input_is_refused(models, tmp_path, capfd, overwrite):
    files, directories = _same_file_cases(models, tmp_path)
    before = snapshot(tmp_path)
    for argv, message in files:
        refused([*argv, *overwrite], capfd, f"{message}; writing it would destroy the input: choose another output")
    for argv, message in directories:
        refused([*argv, *overwrite], capfd, message)
    assert snapshot(tmp_path) == before
    assert (tmp_path / "soft.fa").is_symlink()


def test_case2_plot_and_csv_cannot_be_one_file(models, tmp_path, capfd):
    out = tmp_path / "f.csv"
    refused(["forecast", str(models / "fc"), str(models / "toy.csv"), "-o", str(out), "--plot", str(out)], capfd,
            f"{out}: is also the -o output; two outputs cannot share it: choose another output")
    assert not out.exists()


def test_case2_refuse_same_file_through_the_api(tmp_path):
    x = tmp_path / "x.fa"
    x.write_text(">a\nAC\n")
    os.link(x, tmp_path / "hard.fa")
    with pytest.raises(OutputExistsError, match=r"hard.fa: is also an input \(.*x.fa\)"):
        refuse_same_file([x], tmp_path / "hard.fa")
    with pytest.raises(OutputExistsError, match="holds the input"):
        refuse_same_file([x], tmp_path, directory=True)
    refuse_same_file([x], tmp_path / "other.fa")  # a new file: fine
    refuse_same_file([x], None)  # stdout
    refuse_same_file([x], "/dev/null")  # a special file
    assert x.read_text() == ">a\nAC\n"


# --- case 3: one rule for every command that writes a model directory ------------------------------------------

def test_case3_train_dna_replaces_a_finished_model_only_with_overwrite(models, tmp_path, capfd):
    dna = copy(models, "dna", tmp_path)
    before = snapshot(dna)
    argv = ["train", "dna", "--train", str(models / "train.csv"), "-o", str(dna), "--seed", "7", *TINY_DNA]
    refused(argv, capfd, f"{dna}: already holds a DNA model; pass --overwrite to replace it")
    assert snapshot(dna) == before
    ok([*argv, "--overwrite"], capfd)
    after = snapshot(dna)
    assert after["model.safetensors"] != before["model.safetensors"]  # replaced: seed 7, not 0
    assert sorted(os.listdir(dna)) == ["config.json", "estimator.json", "model.safetensors", "tokenizer.json",
                                       "training"]


def test_case3_train_forecast_replaces_a_finished_model_only_with_overwrite(models, tmp_path, capfd):
    fc = copy(models, "fc", tmp_path)
    before = snapshot(fc)
    argv = ["train", "forecast", str(models / "toy.csv"), "-o", str(fc), "--seed", "7", *TINY_FORECAST]
    refused(argv, capfd, f"{fc}: already holds a forecaster; pass --overwrite to replace it")
    assert snapshot(fc) == before
    ok([*argv, "--overwrite"], capfd)
    assert sorted(os.listdir(fc)) == ["config.json", "model.safetensors"]
    assert snapshot(fc)["config.json"] != before["config.json"]


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_case3_a_model_of_the_other_kind_is_never_replaced(models, tmp_path, capfd, overwrite):
    dna, fc = copy(models, "dna", tmp_path), copy(models, "fc", tmp_path)
    before = snapshot(tmp_path)
    refused(["train", "dna", "--train", str(models / "train.csv"), "-o", str(fc), *TINY_DNA, *overwrite], capfd,
            f"{fc}: holds a forecaster, not a DNA model; choose another directory (only a DNA model is ever "
            "replaced here)")
    refused(["train", "forecast", str(models / "toy.csv"), "-o", str(dna), *TINY_FORECAST, *overwrite], capfd,
            f"{dna}: holds a DNA model, not a forecaster; choose another directory (only a forecaster is ever "
            "replaced here)")
    assert snapshot(tmp_path) == before


# --- case 4: an existing output file is refused without --overwrite --------------------------------------------

def _file_outputs(models, tmp):
    x, data = str(models / "x.fa"), str(models / "toy.csv")
    cases = [
        (["classify", str(models / "dna"), x, "-q", "-o"], tmp / "p.tsv"),
        (["embed", str(models / "dna"), x, "-q", "-o"], tmp / "e.parquet"),
        (["embed", str(models / "dna"), x, "-q", "-o"], tmp / "e.npy"),
        (["windows", x, "--size", "4", "-q", "-o"], tmp / "w.bed"),
        (["forecast", str(models / "fc"), data, "-o"], tmp / "f.csv"),
        (["ingest", x, "-q", "-o", str(tmp / "ref")], tmp / "ref" / "x.fa.gz"),
    ]
    try:
        import matplotlib  # noqa: F401

        cases.append((["forecast", str(models / "fc"), data, "--plot"], tmp / "f.png"))
    except ImportError:
        pass
    return cases


def test_case4_an_existing_output_file_needs_overwrite(models, tmp_path, capfd):
    for argv, out in _file_outputs(models, tmp_path):
        command = argv if argv[0] == "ingest" else [*argv, str(out)]
        out.parent.mkdir(exist_ok=True)
        out.write_text("the user's file\n")
        refused(command, capfd, f"{out}: exists; pass --overwrite to replace it")
        assert out.read_text() == "the user's file\n"
        ok([*command, "--overwrite"], capfd)
        assert out.read_bytes() != b"the user's file\n"
        assert not list(out.parent.glob(f".{out.name}.*")), "a temporary file was left"


def test_case4_stdout_and_special_files_are_written_as_before(models, tmp_path, capfd):
    x = str(models / "x.fa")
    ok(["windows", x, "--size", "4", "-q", "-o", os.devnull], capfd)
    assert main(["windows", x, "--size", "4", "-q"]) == 0
    assert capfd.readouterr().out.startswith("r1\t0\t4")
    assert main(["classify", str(models / "dna"), x, "-q"]) == 0
    assert [line.split("\t")[0] for line in capfd.readouterr().out.splitlines()] == ["id", "r1", "r2"]
    assert Path(os.devnull).is_char_device()


@pytest.fixture
def small_quickstart(monkeypatch, tmp_path):
    from seqmamba.pipelines import quickstart_cmd

    monkeypatch.setattr(quickstart_cmd, "DEFAULTS", {**quickstart_cmd.DEFAULTS, "n_train": 16, "n_test": 8,
                                                     "length": (300, 340), "d_model": 8, "epochs": 1})
    monkeypatch.chdir(tmp_path)
    return tmp_path / "seqmamba-quickstart"


def test_case4_quickstart_reruns_into_its_own_directory(small_quickstart, capfd):
    ok(["quickstart", "-q"], capfd)
    first = snapshot(small_quickstart)
    assert ".seqmamba-quickstart" in first and "predictions.tsv" in first
    ok(["quickstart", "-q", "--seed", "1"], capfd)  # the README runs it; a second run just works
    assert snapshot(small_quickstart)["test.fa"] != first["test.fa"]


def test_case4_quickstart_refuses_a_foreign_directory_of_its_name(small_quickstart, capfd):
    small_quickstart.mkdir()
    (small_quickstart / "test.fa").write_text(">mine\nACGT\n")
    refused(["quickstart", "-q"], capfd, "seqmamba-quickstart: exists and is not a quickstart directory (it holds "
                                         "'test.fa'); pass --overwrite to write into it, or choose another directory")
    assert os.listdir(small_quickstart) == ["test.fa"]
    (small_quickstart / "test.fa").unlink()
    (small_quickstart / "notes.txt").write_text("keep me\n")
    ok(["quickstart", "-q", "--overwrite"], capfd)  # writes its own files, keeps the others
    assert (small_quickstart / "notes.txt").read_text() == "keep me\n"


# --- case 5: one run at a time ---------------------------------------------------------------------------------

def test_case5_a_second_train_dna_into_the_same_directory_fails_at_once(models, tmp_path):
    """Two real `train dna` processes: the second stops at once, naming the directory and the first run."""
    model = tmp_path / "model"
    lock = model / ".seqmamba.lock"
    second = {}

    def first_holds_the_lock() -> bool:
        if not (lock.exists() and lock.read_text().startswith("process ")):
            return False
        started = time.monotonic()
        second["result"] = subprocess.run(
            [sys.executable, "-m", "seqmamba.pipelines.cli", "train", "dna", "--train", str(models / "train.csv"),
             "-o", str(model), *TINY_DNA], env=env(), capture_output=True, text=True, timeout=300)
        second["seconds"] = time.monotonic() - started
        second["holder"] = lock.read_text().strip()
        return True

    code, _ = run_until(["train", "dna", "--train", str(models / "train.csv"), "-o", str(model), *TINY_DNA,
                         "--epochs", "100000"], tmp_path, first_holds_the_lock, signal.SIGTERM)
    assert code == 143  # the first run, stopped by the test
    result = second["result"]
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == (f"Error: {model}: another run is writing to it ({second['holder']}); wait for it to "
                             "finish, or choose another directory\n")
    assert second["holder"].endswith(f" on {socket.gethostname()}")
    assert not lock.exists()  # the first run's lock went with it


def test_case5_train_forecast_and_the_generic_train_command_take_the_lock(models, tmp_path, capfd):
    fc, run_dir = tmp_path / "fc", tmp_path / "run"
    for folder in (fc, run_dir):
        folder.mkdir()
    holder = f"process {os.getpid()} on {socket.gethostname()}"
    with lock_output_dir(fc), lock_output_dir(run_dir):
        refused(["train", "forecast", str(models / "toy.csv"), "-o", str(fc), *TINY_FORECAST], capfd,
                f"{fc}: another run is writing to it ({holder}); wait for it to finish, or choose another directory")
        refused(["train", "selftest", "-o", str(run_dir), "--max-steps", "2", "--device", "cpu", "-q"], capfd,
                f"{run_dir}: another run is writing to it ({holder}); wait for it to finish, or choose another "
                "directory")
        assert sorted(os.listdir(fc)) == [".seqmamba.lock"]
        with pytest.raises(OutputBusyError):  # the API: a second holder fails at once
            with lock_output_dir(fc):
                pass
    assert os.listdir(fc) == [] and os.listdir(run_dir) == []
    ok(["train", "forecast", str(models / "toy.csv"), "-o", str(fc), *TINY_FORECAST], capfd)
    assert sorted(os.listdir(fc)) == ["config.json", "model.safetensors"]  # no lock file left
    ok(["train", "selftest", "-o", str(run_dir), "--max-steps", "2", "--device", "cpu", "-q"], capfd)
    assert ".seqmamba.lock" not in os.listdir(run_dir)


def test_case5_a_failed_train_forecast_leaves_no_directory(models, tmp_path, capfd, monkeypatch):
    """The directory a run created to hold its lock goes again when the run fails (nothing left behind)."""
    from seqmamba.forecasting import MambaForecaster

    def fails(self, *args, **kwargs):
        assert (tmp_path / "fc" / ".seqmamba.lock").is_file()  # held while training
        raise OutputError(tmp_path / "fc", errno.ENOSPC, "no space left on device")

    monkeypatch.setattr(MambaForecaster, "fit", fails)
    refused(["train", "forecast", str(models / "toy.csv"), "-o", str(tmp_path / "fc"), *TINY_FORECAST], capfd,
            f"{tmp_path / 'fc'}: no space left on device")
    assert os.listdir(tmp_path) == []


# --- case 11: a bad base in a training table ------------------------------------------------------------------

def _bad_table(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text("sequence,label\n" + "".join(f"{'AT' * 10},AT\n{'GC' * 10},GC\n" for _ in range(2))
                    + "ACGTACGTACGTACGTACGT1CGT,AT\n")  # line 6, the '1' in column 21
    return path


def test_case11_a_bad_base_names_the_file_line_and_column_and_leaves_nothing(models, tmp_path, capfd):
    bad = _bad_table(tmp_path)
    model = tmp_path / "model"
    refused(["train", "dna", "--train", str(bad), "-o", str(model), *TINY_DNA], capfd,
            f"{bad}: line 6, column 21: '1' {NOT_A_BASE}")
    assert not model.exists()  # no MODEL/training/options.json
    refused(["train", "dna", "--train", str(models / "train.csv"), "--valid", str(bad), "-o", str(model), *TINY_DNA],
            capfd, f"{bad}: line 6, column 21: '1' {NOT_A_BASE}")
    assert not model.exists()


def test_case11_read_labelled_table_names_the_line_and_column(tmp_path):
    bad = _bad_table(tmp_path)
    with pytest.raises(InputError) as caught:
        read_labelled_table(bad)
    assert str(caught.value) == f"{bad}: line 6, column 21: '1' {NOT_A_BASE}"
    quoted = tmp_path / "quoted.tsv"
    quoted.write_text('id\tlabel\tsequence\nx\ta\tACGT\n"y"\t"b"\t"AC GT"\n')
    with pytest.raises(InputError) as caught:
        read_labelled_table(quoted)
    assert str(caught.value) == f"{quoted}: line 3, column 12: space {NOT_A_BASE}"
