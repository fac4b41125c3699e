"""`seqmamba train`: the group is registered lazily; the hidden selftest trains through the engine."""

from click.testing import CliRunner

from seqmamba.pipelines.cli import cli, main
from seqmamba.training import read_metrics


def test_train_group_is_listed_and_selftest_hidden():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0 and "train" in result.output
    result = CliRunner().invoke(cli, ["train", "--help"])
    assert result.exit_code == 0 and "torchrun" in result.output and "selftest" not in result.output


def test_selftest_trains_resumes_and_protects_the_run(tmp_path):
    run_dir = str(tmp_path / "run")
    result = CliRunner().invoke(cli, ["train", "selftest", "-o", run_dir, "--max-steps", "4", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "selftest: 4 steps on cpu" in result.output
    assert main(["train", "selftest", "-o", run_dir, "--max-steps", "4", "--quiet"]) == 1  # says --resume
    result = CliRunner().invoke(cli, ["train", "selftest", "-o", run_dir, "--max-steps", "6", "--quiet",
                                      "--resume"])
    assert result.exit_code == 0 and "selftest: 6 steps" in result.output
    assert [r["step"] for r in read_metrics(tmp_path / "run" / "metrics.jsonl")] == [4, 6]


def test_bad_device_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(cli, ["train", "selftest", "-o", str(tmp_path), "--device", "tpu"])
    assert result.exit_code == 2 and "Invalid value for '--device'" in result.output
