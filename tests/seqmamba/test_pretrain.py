"""`seqmamba pretrain` and `seqmamba.pretraining.pretrain`: genome windows, objectives, the model directory,
resume, bad input, and two torchrun processes against one."""

import doctest
import gzip
import importlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from paths import REPO
from safetensors.torch import load_file
from scipy.stats import chisquare

from seqmamba import MambaEmbedder
from seqmamba.datasets.genome_tokens import GenomeTokens, GenomeWindows, reverse_complement_ids
from seqmamba.errors import InputError
from seqmamba.objectives import MaskedNucleotideTask, NextBaseTask, mask_nucleotides
from seqmamba.pipelines.cli import main
from seqmamba.pretraining import WindowBatches, parse_duration, pretrain
from seqmamba.tokenizers.dna import DNATokenizer
from seqmamba.training import DistContext, read_metrics

ROOT = REPO
TINY = ["--d-model", "8", "--n-layers", "1", "--d-state", "4", "--window", "64", "--batch-size", "4",
        "--device", "cpu", "--threads", "1", "--valid-windows", "8", "-q"]
TINY_API = {"d_model": 8, "n_layers": 1, "d_state": 4, "window": 64, "batch_size": 4, "device": "cpu",
            "threads": 1, "valid_windows": 8, "verbose": False}


def random_dna(n, seed=0):
    return "".join(np.random.default_rng(seed).choice(list("ACGT"), n))


def write_fasta(path, records, gz=False):
    text = "".join(f">{name}\n{seq}\n" for name, seq in records.items())
    if gz:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


@pytest.fixture
def genome(tmp_path):
    """Two files, three records (one gzip), long enough for 64-base windows and their held-out ends."""
    a = write_fasta(tmp_path / "a.fa", {"chr1": random_dna(4000, 1), "chr2": random_dna(2500, 2)})
    b = write_fasta(tmp_path / "b.fa.gz", {"plasmid": random_dna(3000, 3)}, gz=True)
    return [a, b]


def epoch_records(out):
    return [r for r in read_metrics(out / "training" / "metrics.jsonl") if r["event"] in ("epoch", "end")]


# ----------------------------------------------------------------------------------------- the command

def test_cli_pretrains_a_model_directory_that_embeds(genome, tmp_path, capsys):
    out = tmp_path / "pretrained"
    assert main(["pretrain", *map(str, genome), "-o", str(out), *TINY, "--max-steps", "6", "--eval-every", "3"]) == 0
    assert capsys.readouterr().err == ""  # -q
    records = epoch_records(out)
    assert [r["step"] for r in records] == [3, 6]
    for record in records:
        assert record["train_loss"] > 0 and record["tokens_per_s"] > 0 and record["tokens"] == 3 * 4 * 64
        assert record["val_loss"] > 0 and 0 <= record["val_accuracy"] <= 1
    # The standard estimator directory: the masked model loads as a fitted embedder and embeds.
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "estimator.json", "model.safetensors",
                                                     "tokenizer.json", "training"]
    record = json.loads((out / "estimator.json").read_text())
    assert record["estimator"] == "MambaEmbedder" and record["head"]["kind"] == "MaskedLMModel"
    assert record["params"]["max_len"] == 64 and record["params"]["bidirectional"] is True
    weights = load_file(out / "model.safetensors")
    assert "encoder.embedding.weight" in weights and "head.weight" in weights
    assert all(k.startswith(("encoder.", "head.")) for k in weights)
    emb = MambaEmbedder(model=str(out), max_len=64, device="cpu").fit()
    Z = emb.transform([random_dna(200, 9), random_dna(50, 10)])
    assert Z.shape == (2, 8) and np.isfinite(Z).all()
    assert MambaEmbedder.load(out).transform(["ACGT" * 10]).shape == (1, 8)
    # The run's options are recorded; the checkpoint stays for --resume.
    options = json.loads((out / "training" / "options.json").read_text())
    assert options["command"] == "pretrain" and options["window"] == 64
    assert (out / "training" / "checkpoint" / "trainer_state.json").is_file()


def test_a_classifier_starts_from_the_pretrained_encoder(genome, tmp_path):
    from seqmamba import MambaSequenceClassifier

    out = tmp_path / "pretrained"
    pretrain(genome, out, max_steps=2, eval_every=2, **TINY_API)
    X = [random_dna(80, seed) for seed in range(8)]
    clf = MambaSequenceClassifier(init=str(out), max_len=64, max_epochs=1, batch_size=4, device="cpu",
                                  random_state=0).fit(X, [0, 1] * 4)
    start = load_file(out / "model.safetensors")
    assert clf.model_.config.d_model == 8
    assert clf.predict_proba(X).shape == (8, 2)
    assert set(clf.model_.encoder.state_dict()) == {k[len("encoder."):] for k in start if k.startswith("encoder.")}


def test_cli_progress_and_summary_on_stderr(genome, tmp_path, capsys):
    out = tmp_path / "m"
    argv = [a for a in TINY if a != "-q"]
    assert main(["pretrain", str(genome[0]), "-o", str(out), *argv, "--max-steps", "2", "--eval-every", "2"]) == 0
    err = capsys.readouterr().err
    assert "1 file(s), 2 record(s), 6,500 bases" in err
    assert "2 steps; this run 2 in" in err and "tokens/s" in err and "val_accuracy" in err
    assert err.rstrip().endswith(f"model in {out}")


def test_causal_objective_next_base(genome, tmp_path):
    out = tmp_path / "causal"
    result = pretrain(genome, out, causal=True, max_steps=3, eval_every=3, gradient_checkpointing=True, **TINY_API)
    assert result.global_step == 3 and set(result.metrics) == {"val_loss", "val_accuracy"}
    record = json.loads((out / "estimator.json").read_text())
    assert record["head"]["kind"] == "CausalLMModel" and record["params"]["bidirectional"] is False
    assert json.loads((out / "config.json").read_text())["config"]["bidirectional"] is False
    Z = MambaEmbedder(model=str(out), max_len=64, device="cpu").fit().transform([random_dna(100, 4)])
    assert Z.shape == (1, 8)
    # The saved model has checkpointing off again, and loads with the same outputs.
    assert MambaEmbedder.load(out).model_.gradient_checkpointing is False


def test_next_base_targets_and_masking_rules():
    ids = torch.tensor([[1, 2, 5, 4, 3, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 1, 0]])
    assert NextBaseTask.targets(ids, mask).tolist() == [[2, -100, 4, 3, -100]]  # N and padding not predicted
    ids = torch.randint(1, 6, (4, 2000), generator=torch.Generator().manual_seed(0))
    corrupted, targets = mask_nucleotides(ids, 0.15, torch.Generator().manual_seed(1))
    chosen = targets != -100
    assert (ids[chosen] <= 4).all() and (targets[chosen] == ids[chosen]).all()
    assert 0.13 < chosen.float().mean() / (ids <= 4).float().mean() < 0.17
    assert 0.75 < (corrupted[chosen] == 8).float().mean() < 0.85  # [MASK]
    assert torch.equal(corrupted[~chosen], ids[~chosen])
    again = mask_nucleotides(ids, 0.15, torch.Generator().manual_seed(1))
    assert torch.equal(again[0], corrupted) and torch.equal(again[1], targets)  # a seeded generator repeats


def test_rc_equivariant_model_is_strand_symmetric_and_not_augmented(genome, tmp_path):
    out = tmp_path / "rc"
    pretrain(genome, out, rc_equivariant=True, max_steps=2, eval_every=2, **TINY_API)
    assert json.loads((out / "config.json").read_text())["config"]["rc_equivariant"] is True
    emb = MambaEmbedder(model=str(out), max_len=64, device="cpu").fit()
    seq = random_dna(64, 7)
    tok = DNATokenizer()
    rc = tok.decode(tok.reverse_complement(tok.encode(seq)))
    np.testing.assert_allclose(emb.transform([seq]), emb.transform([rc]), atol=1e-5)
    windows = GenomeWindows(GenomeTokens.read(genome), 64)
    plain = WindowBatches(windows, batch_size=4, grad_accum=1, steps_per_epoch=1, seed=0, rc_augment=False)
    assert not any(plain.draw(step, slot)[1] for step in range(25) for slot in range(4))
    augmented = WindowBatches(windows, batch_size=4, grad_accum=1, steps_per_epoch=1, seed=0)
    flips = [augmented.draw(step, slot)[1] for step in range(100) for slot in range(4)]
    assert 0.4 < np.mean(flips) < 0.6
    unmasked = WindowBatches(windows, batch_size=4, grad_accum=1, steps_per_epoch=1, seed=0, masked=False)
    window, _, ids, _ = next(unmasked.draw(s, 0) for s in range(100) if unmasked.draw(s, 0)[1])
    np.testing.assert_array_equal(reverse_complement_ids(windows.genome.window(window)), ids.numpy())


def test_causal_and_rc_equivariant_exclude_each_other(genome, tmp_path, capsys):
    out = tmp_path / "m"
    assert main(["pretrain", str(genome[0]), "-o", str(out), "--causal", "--rc-equivariant", *TINY]) == 2
    assert "exclude each other" in capsys.readouterr().err and not out.exists()


def test_max_time_stops_cleanly_with_a_checkpoint(genome, tmp_path):
    result = pretrain(genome, tmp_path / "m", max_steps=50, eval_every=50, max_time=1e-6, **TINY_API)
    assert result.global_step == 1  # the deadline passed during the first step
    assert epoch_records(tmp_path / "m")[-1]["event"] == "end"
    assert parse_duration("30m") == 1800 and parse_duration("2h") == 7200 and parse_duration("90") == 90
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("soon")


# --------------------------------------------------------------------------------------- the windows

def test_genome_tokens_read_each_file_into_one_array(tmp_path):
    a = write_fasta(tmp_path / "a.fa", {"x": "ACGTacgtRY", "empty": "", "y": "NNNA"})
    b = write_fasta(tmp_path / "b.fa.gz", {"x": "GGGG"}, gz=True)  # the same name in another file is fine
    genome = GenomeTokens.read([a, b])
    assert [(r.path, r.name, r.offset, r.length) for r in genome.records] == [
        (str(a), "x", 0, 10), (str(a), "y", 10, 4), (str(b), "x", 14, 4)]
    assert genome.tokens.dtype == np.uint8
    assert DNATokenizer().decode(genome.tokens) == "ACGTACGTNNNNNAGGGG"


def test_windows_are_drawn_in_proportion_to_record_length(tmp_path):
    path = write_fasta(tmp_path / "g.fa", {"a": random_dna(1000, 1), "b": random_dna(3000, 2),
                                           "c": random_dna(6000, 3), "short": random_dna(60, 4)})
    windows = GenomeWindows(GenomeTokens.read([path]), 64, valid_frac=0.02)
    assert windows.skipped == [3]  # shorter than a window: never drawn
    rng = np.random.default_rng(123)
    drawn = [windows.train_window(rng) for _ in range(20_000)]
    counts = np.bincount([w.record for w in drawn], minlength=4)
    assert counts[3] == 0
    lengths = np.array([windows.train_length(i) for i in range(3)], dtype=float)
    assert lengths.tolist() == [980, 2940, 5880]
    expected = lengths / lengths.sum() * len(drawn)
    assert chisquare(counts[:3], expected).pvalue > 0.001
    # Starts are uniform over a record's training region (first and second half alike).
    starts = np.array([w.start for w in drawn if w.record == 2])
    assert abs(np.mean(starts < (5880 - 64) / 2) - 0.5) < 0.03


def test_training_windows_never_touch_the_held_out_end(tmp_path):
    path = write_fasta(tmp_path / "g.fa", {"a": random_dna(2000, 1), "b": random_dna(700, 2)})
    windows = GenomeWindows(GenomeTokens.read([path]), 64, valid_frac=0.1)
    rng = np.random.default_rng(0)
    ends = {0: 0, 1: 0}
    for _ in range(5000):
        w = windows.train_window(rng)
        assert 0 <= w.start and w.end - w.start == 64 and w.end <= windows.train_length(w.record)
        ends[w.record] = max(ends[w.record], w.end)
    assert ends == {0: 1800, 1: 630}  # right up to the held-out region, never into it
    valid = windows.validation_windows(100)
    assert valid and all(w.start >= windows.train_length(w.record) for w in valid)
    assert [(w.record, w.start, w.end) for w in valid] == [(0, 1800, 1864), (0, 1864, 1928), (0, 1928, 1992),
                                                           (1, 630, 694)]  # tiles; short tails dropped
    assert windows.validation_windows(2, seed=0) == windows.validation_windows(2, seed=0)  # a fixed choice


def test_windows_with_too_many_n_are_skipped(tmp_path):
    rng = np.random.default_rng(0)
    noisy = np.array(list(random_dna(3000, 5)))
    noisy[:1500][rng.random(1500) < 0.4] = "N"  # the first half is 40 % N
    path = write_fasta(tmp_path / "g.fa", {"a": "".join(noisy)})
    genome = GenomeTokens.read([path])
    windows = GenomeWindows(genome, 64, max_n_frac=0.1, valid_frac=0.0)
    fractions = []
    for _ in range(2000):
        w = windows.train_window(rng)
        fractions.append(np.mean(genome.window(w) > 4))
    assert max(fractions) <= 0.1
    # The expected share of draws that pass, counted exactly, against a brute-force count.
    n_per_window = np.convolve(genome.tokens > 4, np.ones(64, dtype=int), "valid")
    assert windows.acceptance == pytest.approx(np.mean(n_per_window <= 6))
    assert GenomeWindows(genome, 64, max_n_frac=1.0, valid_frac=0.0).acceptance == 1.0


def test_batches_are_the_same_whatever_the_number_of_ranks(genome):
    windows = GenomeWindows(GenomeTokens.read(genome), 64)
    one = WindowBatches(windows, batch_size=8, grad_accum=1, steps_per_epoch=2, seed=3)
    two = WindowBatches(windows, batch_size=4, grad_accum=1, steps_per_epoch=2, seed=3)
    whole = list(one(1, DistContext()))
    ranks = [list(two(1, DistContext(rank=r, world_size=2))) for r in (0, 1)]
    for step in range(2):
        joined = torch.cat([ranks[0][step]["input_ids"], ranks[1][step]["input_ids"]])
        assert torch.equal(joined, whole[step]["input_ids"])
    assert not torch.equal(whole[0]["input_ids"], next(iter(one(0, DistContext())))["input_ids"])  # epochs differ


def test_masked_task_per_window_loss_splits_like_the_whole_batch():
    torch.manual_seed(0)
    from seqmamba.config import MambaConfig
    from seqmamba.estimators.embedder import MaskedLMModel

    model = MaskedLMModel(MambaConfig(d_model=8, n_layers=1, d_state=4, bidirectional=True, vocab_size=10)).double()
    ids = torch.randint(1, 5, (4, 32))
    corrupted, labels = mask_nucleotides(ids, 0.3, torch.Generator().manual_seed(0))
    task = MaskedNucleotideTask(per_window=True)
    whole = task.loss(model, {"input_ids": corrupted, "labels": labels})
    halves = [task.loss(model, {"input_ids": corrupted[s], "labels": labels[s]}) for s in (slice(0, 2), slice(2, 4))]
    assert torch.allclose(whole, (halves[0] + halves[1]) / 2)


# --------------------------------------------------------------------------------------------- resume

def test_resume_after_max_steps_continues_the_step_count(genome, tmp_path, capsys):
    out = tmp_path / "m"
    base = ["pretrain", *map(str, genome), "-o", str(out), *TINY, "--eval-every", "2"]
    assert main([*base, "--max-steps", "4"]) == 0
    assert main([*base, "--max-steps", "6"]) == 1  # a finished run is not replaced without asking
    assert_one_line_error(capsys, f"{out}: already holds a DNA model; pass resume=True (--resume) to continue it")
    assert main([*base, "--max-steps", "6", "--resume"]) == 0
    records = epoch_records(out)
    assert [r["step"] for r in records] == [2, 4, 6]
    state = json.loads((out / "training" / "checkpoint" / "trainer_state.json").read_text())
    assert state["trainer"]["state"]["global_step"] == 6
    assert MambaEmbedder.load(out).transform(["ACGT" * 20]).shape == (1, 8)
    # Options that change what is trained on are refused on --resume; --overwrite starts again.
    assert main([*base, "--max-steps", "8", "--resume", "--seed", "1"]) == 1
    assert "options unlike the run's: seed 1 (was 0)" in capsys.readouterr().err
    assert main([*base, "--max-steps", "2", "--overwrite"]) == 0
    assert [r["step"] for r in epoch_records(out)] == [2]


def test_resume_after_an_interrupt_equals_an_uninterrupted_run(genome, tmp_path):
    whole = pretrain(genome, tmp_path / "whole", max_steps=4, eval_every=2, **TINY_API)
    # Stopped by max_time in its first step, then resumed to the same end (same learning-rate curve).
    pretrain(genome, tmp_path / "cut", max_steps=4, eval_every=2, max_time=1e-6, **TINY_API)
    resumed = pretrain(genome, tmp_path / "cut", max_steps=4, eval_every=2, resume=True, **TINY_API)
    assert resumed.global_step == 4
    a, b = load_file(tmp_path / "whole" / "model.safetensors"), load_file(tmp_path / "cut" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.metrics == pytest.approx(whole.metrics)


# ------------------------------------------------------------------------------------------ bad input

def assert_one_line_error(capsys, *parts):
    err = capsys.readouterr().err
    assert err.startswith("Error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    for part in parts:
        assert part in err, err


def test_empty_fasta_is_refused_and_nothing_is_written(tmp_path, capsys):
    empty = tmp_path / "empty.fa"
    empty.write_text("")
    out = tmp_path / "m"
    assert main(["pretrain", str(empty), "-o", str(out), *TINY]) == 1
    assert_one_line_error(capsys, "empty.fa", "empty file")
    assert not out.exists()


def test_genome_shorter_than_a_window_everywhere(tmp_path, capsys):
    path = write_fasta(tmp_path / "small.fa", {"a": random_dna(50), "b": random_dna(60)})
    out = tmp_path / "m"
    assert main(["pretrain", str(path), "-o", str(out), *TINY]) == 1
    assert_one_line_error(capsys, "small.fa", "no record is long enough for one 64-base window", "'b'")
    assert not out.exists()


def test_every_window_above_max_n_frac(tmp_path, capsys):
    path = write_fasta(tmp_path / "gappy.fa", {"a": ("ACGTN" * 400)})  # 20 % N everywhere
    out = tmp_path / "m"
    assert main(["pretrain", str(path), "-o", str(out), *TINY, "--max-n-frac", "0.1"]) == 1
    assert_one_line_error(capsys, "gappy.fa", "more than 0.1 of its bases N", "--max-n-frac")
    assert not out.exists()
    assert main(["pretrain", str(path), "-o", str(out), *TINY, "--max-n-frac", "0.25", "--max-steps", "1"]) == 0


def test_a_directory_that_is_not_ours_is_refused(genome, tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    (data / "notes.txt").write_text("mine")
    for extra in ([], ["--overwrite"]):
        assert main(["pretrain", str(genome[0]), "-o", str(data), *TINY, *extra]) == 1
        assert_one_line_error(capsys, str(data), "is not a DNA model directory", "'notes.txt'")
    assert [p.name for p in data.iterdir()] == ["notes.txt"] and (data / "notes.txt").read_text() == "mine"
    # A model directory holding a file of someone else's: refused, since --overwrite would lose it.
    model = tmp_path / "model"
    assert main(["pretrain", str(genome[0]), "-o", str(model), *TINY, "--max-steps", "1"]) == 0
    (model / "notes.txt").write_text("mine")
    assert main(["pretrain", str(genome[0]), "-o", str(model), *TINY, "--overwrite"]) == 1
    assert_one_line_error(capsys, "'notes.txt', not part of a DNA model")
    # A directory that holds its FASTA input is never written.
    (model / "notes.txt").unlink()
    inside = write_fasta(model / "g.fa", {"a": random_dna(3000)})
    assert main(["pretrain", str(inside), "-o", str(model), *TINY, "--overwrite"]) == 1
    assert_one_line_error(capsys, "holds the input")
    # A `train dna` run is not a pretraining run to resume.
    inside.unlink()
    (model / "training" / "options.json").write_text(json.dumps({"train_path": "x.csv"}))
    assert main(["pretrain", str(genome[0]), "-o", str(model), *TINY, "--resume"]) == 1
    assert_one_line_error(capsys, "not a pretraining run; nothing to resume")
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert main(["pretrain", str(genome[0]), "-o", str(a_file), *TINY]) in (1, 2)
    assert a_file.read_text() == "x"


@pytest.mark.parametrize("name", ["seqmamba.objectives", "seqmamba.pretraining", "seqmamba.datasets.genome_tokens"])
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


def test_a_directory_another_run_is_writing_is_refused(genome, tmp_path, capsys):
    from seqmamba.datasets.output_safety import lock_output_dir

    out = tmp_path / "m"
    out.mkdir()
    with lock_output_dir(out):
        assert main(["pretrain", str(genome[0]), "-o", str(out), *TINY]) == 1
        assert_one_line_error(capsys, str(out), "another run is writing to it")
    assert [p.name for p in out.iterdir()] == []


# ------------------------------------------------------------------------------------------- torchrun

@pytest.mark.slow
def test_torchrun_two_gloo_ranks_match_one_process(genome, tmp_path):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["OMP_NUM_THREADS"] = "1"
    at = TINY.index("--batch-size")
    options = TINY[:at] + TINY[at + 2:]
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "seqmamba.pipelines.cli", "pretrain", *map(str, genome), "-o", str(tmp_path / "ddp"),
               *options, "--batch-size", "2", "--max-steps", "4", "--eval-every", "2"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    one = pretrain(genome, tmp_path / "one", max_steps=4, eval_every=2, **{**TINY_API, "batch_size": 4})
    ddp, single = load_file(tmp_path / "ddp" / "model.safetensors"), load_file(tmp_path / "one" / "model.safetensors")
    for name in single:
        torch.testing.assert_close(ddp[name], single[name], atol=1e-5, rtol=1e-4)
    for a, b in zip(epoch_records(tmp_path / "ddp"), epoch_records(tmp_path / "one")):
        assert a["samples"] == b["samples"] == 8
        for key in ("train_loss", "val_loss", "val_accuracy"):
            assert a[key] == pytest.approx(b[key], abs=1e-5)
    state = json.loads((tmp_path / "ddp" / "training" / "checkpoint" / "trainer_state.json").read_text())
    assert state["trainer"]["world_size"] == 2
    assert one.global_step == 4


def test_a_diverged_pretraining_writes_no_model(genome, tmp_path):
    out = tmp_path / "m"
    with pytest.raises(InputError, match=r"^pretrain: training diverged: the network's tensor '.*' holds NaN or inf; "
                                         r"lower lr \(now 1e\+30\)"):
        pretrain(genome, out, max_steps=6, eval_every=6, **{**TINY_API, "lr": 1e30})
    assert not (out / "model.safetensors").exists() and not (out / "estimator.json").exists()
