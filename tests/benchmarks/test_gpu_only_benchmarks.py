"""The benchmarks that time a CUDA GPU (CUDA graphs, GPU kernel time, mamba_ssm's CUDA extensions) stop with one
line and a non-zero exit where there is none; mamba_ssm's side is built from the PyPI sdists on the GPU machine,
never here. What of them runs without a GPU (the comparison's alternating rounds) is tested here."""

import subprocess
import sys

import pytest
import torch
from paths import REPO

GPU_ONLY = [
    (["compare_mamba_ssm.py", "--mamba-sdist", "m.tgz", "--conv-sdist", "c.tgz"],
     "compare_mamba_ssm.py: needs a CUDA GPU (mamba_ssm has no CPU path)"),
    (["compare_mamba_ssm.py", "--ours-only"], "compare_mamba_ssm.py: needs a CUDA GPU (mamba_ssm has no CPU path)"),
    (["short_inference.py"], "short_inference.py: needs a CUDA GPU (CUDA graphs)"),
    (["fit_graphs.py"], "fit_graphs.py: needs a CUDA GPU"),
    (["step_host_bound.py"], "step_host_bound.py: needs a CUDA GPU (it compares wall time with GPU kernel time)"),
    (["step_host_bound.py", "--block"],
     "step_host_bound.py: needs a CUDA GPU (it compares wall time with GPU kernel time)"),
    (["step_host_bound.py", "--encoder"],
     "step_host_bound.py: needs a CUDA GPU (it compares wall time with GPU kernel time)"),
]


@pytest.mark.skipif(torch.cuda.is_available(),
                    reason="with a CUDA GPU these scripts measure (minutes each) instead of stopping")
@pytest.mark.parametrize(("argv", "message"), GPU_ONLY, ids=[" ".join(argv[:2]) for argv, _ in GPU_ONLY])
def test_without_a_gpu_it_stops_with_one_line(argv, message, tmp_path):
    script, *args = argv
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / script), *args], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip() == message


def test_the_comparison_wants_both_sdists_or_ours_only(tmp_path):
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "compare_mamba_ssm.py"), "--mamba-sdist", "m.tgz"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].endswith("give --mamba-sdist and --conv-sdist (or --ours-only)")


def test_a_table_cut_short_keeps_the_rows_it_has(tmp_path):
    """benchmarks/report.py: the table is rewritten to --out after each row."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        from report import MarkdownTable
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    out = tmp_path / "table.md"
    table = MarkdownTable(out, "Device: test.", ["a", "b"], "|---:|---:|")
    assert out.read_text() == "Device: test.\n\n| a | b |\n|---:|---:|\n"
    table.add(1, "2.50")
    assert out.read_text().endswith("| 1 | 2.50 |\n")


def test_compare_measures_host_bound_rows_in_alternating_rounds():
    """A host-bound row's two sides are measured in turns (the host's speed drifts within a run), each side's
    median kept, the rounds' lowest and highest ratio beside it; a side out of memory in any round is None."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    import compare_mamba_ssm as compare

    order: list[str] = []

    def side(name: str, fwd: list[float], gb: list[float | None]):
        values = iter(zip(fwd, gb, strict=True))

        def measure() -> dict:
            order.append(name)
            f, g = next(values)
            return {"fwd": f, "fwd+bwd_gb": g}
        return measure

    ours, theirs, spread = compare.interleaved(side("ours", [1.0, 3.0, 2.0], [0.5, 0.5, 0.5]),
                                               side("theirs", [2.0, 2.0, 5.0], [0.4, None, 0.4]), 3)
    assert order == ["ours", "theirs"] * 3
    assert ours == {"fwd": 2.0, "fwd+bwd_gb": 0.5} and theirs == {"fwd": 2.0, "fwd+bwd_gb": None}
    assert spread == {"fwd": (2.0 / 3.0, 2.5)}  # no spread for memory
    assert compare._ratio(ours, theirs, "fwd", spread) == "**1.00** (0.67-2.50)"
    assert compare._ratio(ours, theirs, "fwd", {}) == "**1.00**"


def test_fit_graphs_fused_run_keeps_the_fused_kernels_in_graphed_steps():
    """fit_graphs.py's third run times graphed steps with the fused two-direction kernels (the A/B of
    kernels.separate_directions): within it a GraphedStep's steps and the dry run fuse again; after, they do not."""
    import contextlib

    from training_helpers import step_seeing_fusion

    sys.path.insert(0, str(REPO / "benchmarks"))
    import fit_graphs

    from seqmamba.kernels import separate_directions
    from seqmamba.training import ahead

    step, seen = step_seeing_fusion()
    with fit_graphs.fused_in_graphs():
        step(torch.ones(3, 2))
        assert ahead.separate_directions is contextlib.nullcontext  # the dry run's too
    step(torch.ones(3, 2))
    assert seen == [True, False] and ahead.separate_directions is separate_directions
