"""Caduceus checkpoints: seqmamba reproduces Caduceus's own code (golden files), reads and writes its layout.

The golden directories under tests/data/caduceus/ were written by Caduceus's ``CaduceusForMaskedLM`` (see
their README and benchmarks/caduceus_golden.py); nothing here needs the network or Caduceus's code.
"""

from __future__ import annotations

import dataclasses
import doctest
import importlib
import json
import shutil
import sys
import types
from pathlib import Path

import pytest
import torch
from paths import TEST_DATA
from safetensors.torch import load_file, save_file

from seqmamba import DNAEncoder, MambaConfig, MambaEmbedder, load_caduceus, save_caduceus
from seqmamba.caduceus import (
    TO_CADUCEUS,
    caduceus_ids,
    from_caduceus_ids,
    load_caduceus_parts,
    rcps_hidden,
    seqmamba_complement,
)
from seqmamba.dna import reverse_complement
from seqmamba.errors import InputError
from seqmamba.estimators._heads import MaskedLMModel
from seqmamba.rcps import rcps_reference

DATA = TEST_DATA / "caduceus"
GOLDENS = ["ph", "ps", "ps_unfused"]
COMPLEMENT = torch.tensor(seqmamba_complement())


def copy_golden(name: str, tmp_path: Path) -> Path:
    target = tmp_path / name
    shutil.copytree(DATA / name, target)
    return target


def assert_matches(got: torch.Tensor, want: torch.Tensor) -> float:
    """float32 against Caduceus's float32: 1e-4 relative to the tensor's scale; returns the relative error."""
    scale = want.abs().max().item()
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4 * scale)
    return (got - want).abs().max().item() / scale


def randomize(model: torch.nn.Module, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("A_log"):
                p.copy_(torch.log(torch.rand(p.shape, generator=gen) * 3.5 + 0.5))
            elif "norm" in name or name.endswith(".D"):
                p.copy_(1 + 0.3 * torch.randn(p.shape, generator=gen))
            elif p.dim() >= 2:
                p.copy_(torch.randn(p.shape, generator=gen) / p.shape[1] ** 0.5)
            else:
                p.copy_(0.2 * torch.randn(p.shape, generator=gen))


def rc_config(swap: bool, **kw) -> MambaConfig:
    return MambaConfig(d_model=16, n_layers=2, d_state=4, bidirectional=True, vocab_size=10, rc_equivariant=True,
                       rc_strand_swap=swap, complement_map=seqmamba_complement(), **kw)


@pytest.mark.parametrize("name", ["seqmamba.caduceus", "seqmamba.rcps", "seqmamba.estimators.caduceus_mlm"])
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


# -- equivalence with Caduceus's code -----------------------------------------------------------------


@pytest.mark.parametrize("name", GOLDENS)
def test_outputs_match_caduceus(name):
    golden = load_file(DATA / name / "golden.safetensors")
    model, tokenizer = load_caduceus(DATA / name)
    ids = from_caduceus_ids(golden["input_ids"])
    with torch.no_grad():
        hidden = rcps_hidden(model.encoder, ids) if model.config.rc_equivariant else model.encoder(ids)
        logits = model(ids, torch.ones_like(ids))
    err_hidden = assert_matches(hidden, golden["last_hidden_state"])
    # Columns of the tokens seqmamba has ([BOS], [RESERVED] and the padding rows have none).
    err_logits = assert_matches(logits, golden["logits"][..., TO_CADUCEUS])
    assert err_hidden < 1e-5 and err_logits < 1e-5  # measured: below 5e-7 on a CPU
    assert tokenizer.vocab_size == logits.shape[-1]


def test_published_ps_order_is_the_fused_one():
    # The same weights with the strands kept apart (Caduceus's unfused RCPS path) give other numbers:
    # the strand swap is what the fused path, and so the published checkpoints, compute.
    golden = load_file(DATA / "ps" / "golden.safetensors")
    spec, state, _ = load_caduceus_parts(DATA / "ps", DNAEncoder.state_shapes)
    assert spec.config.rc_strand_swap
    apart = DNAEncoder(dataclasses.replace(spec.config, rc_strand_swap=False))
    apart.load_state_dict(state)
    with torch.no_grad():
        hidden = rcps_hidden(apart.eval(), from_caduceus_ids(golden["input_ids"]))
    want = golden["last_hidden_state"]
    assert (hidden - want).abs().max() > 0.1 * want.abs().max()


@pytest.mark.parametrize("name", GOLDENS)
def test_dna_encoder_from_pretrained_reads_caduceus(name):
    golden = load_file(DATA / name / "golden.safetensors")
    encoder = DNAEncoder.from_pretrained(DATA / name, dtype=torch.float64)
    assert not encoder.training and encoder.embedding.weight.dtype == torch.float64
    ids = from_caduceus_ids(golden["input_ids"])
    with torch.no_grad():
        hidden = rcps_hidden(encoder, ids) if encoder.config.rc_equivariant else encoder(ids)
    assert_matches(hidden.float(), golden["last_hidden_state"])


def test_token_ids_map_both_ways():
    ids = torch.arange(10)[None]
    assert torch.equal(from_caduceus_ids(caduceus_ids(ids)), ids)
    assert caduceus_ids(ids).tolist() == [[4, 7, 8, 9, 10, 11, 0, 1, 3, 6]]  # [PAD] A C G T N [CLS] [SEP] [MASK] [UNK]
    with pytest.raises(ValueError, match="BOS"):
        from_caduceus_ids(torch.tensor([[2]]))


# -- the RCPS stack and the strand-aware MLM head ------------------------------------------------------------


@pytest.mark.parametrize("swap", [True, False])
def test_rcps_fast_path_matches_the_reference(swap):
    model = DNAEncoder(rc_config(swap)).double().eval()
    randomize(model, 3)
    ids = torch.randint(1, 6, (3, 41))
    emb = model.embedding
    with torch.no_grad():
        want = rcps_reference(model.encoder, emb(ids), emb(reverse_complement(ids, model.complement)), swap)
        got = rcps_hidden(model, ids)  # (batch, L, 2*d_model)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("swap", [True, False])
def test_rc_mlm_logits_are_equivariant_exactly(swap):
    model = MaskedLMModel(rc_config(swap)).double().eval()
    randomize(model, 4)  # the head's bias too
    ids = torch.randint(1, 6, (2, 37))
    ids[0, 5] = 8  # [MASK]
    ones = torch.ones_like(ids)
    rc = reverse_complement(ids, COMPLEMENT)
    with torch.no_grad():
        logits, logits_rc = model(ids, ones), model(rc, ones)
        assert torch.equal(logits_rc, logits.flip(1)[..., COMPLEMENT])
        assert torch.equal(model.encoder.embed(ids), model.encoder.embed(rc))  # each strand pooled, then averaged
        torch.testing.assert_close(model.embed(ids, ones), model.embed(rc, ones), rtol=1e-12, atol=1e-12)


def test_rc_mlm_head_tells_a_base_from_its_complement():
    model = MaskedLMModel(rc_config(True)).double().eval()
    randomize(model, 5)
    ids = torch.randint(1, 5, (1, 30))
    ids[0, 10] = 8
    with torch.no_grad():
        logits = model(ids, torch.ones_like(ids))[0, 10]
        averaged = model.head(model.encoder(ids, torch.ones_like(ids)))[0, 10]  # the old head on strand averages
    a, t = 1, 4
    assert logits[a] != logits[t]
    # What the old head saw at the masked position is the same for the sequence's reverse complement, whose
    # answer is the complement: it cannot prefer A over T in one and T over A in the other.
    rc = reverse_complement(ids, COMPLEMENT)
    with torch.no_grad():
        averaged_rc = model.head(model.encoder(rc, torch.ones_like(rc)))[0, 30 - 1 - 10]
    torch.testing.assert_close(averaged_rc, averaged)


def test_rc_mlm_padding_does_not_reach_real_positions():
    model = MaskedLMModel(rc_config(True)).double().eval()
    randomize(model, 6)
    short = torch.randint(1, 6, (1, 20))
    padded = torch.cat([short, torch.zeros(1, 7, dtype=torch.long)], dim=1)
    mask = (padded != 0).long()
    with torch.no_grad():
        alone = model(short, torch.ones_like(short))
        batched = model(padded, mask)[:, :20]
    torch.testing.assert_close(batched, alone, rtol=1e-10, atol=1e-10)


def test_strand_swap_needs_rc_equivariance():
    with pytest.raises(ValueError, match="rc_strand_swap"):
        MambaConfig(d_model=8, n_layers=1, rc_strand_swap=True)


# -- writing the Caduceus layout -------------------------------------------------------------------------------

ROUND_TRIPS = {  # name: (rc_equivariant, rc_strand_swap, tied head, golden with the same tensor names)
    "ph_tied": (False, False, True, "ph"),
    "ph_untied": (False, False, False, "ph"),
    "ps_fused": (True, True, True, "ps"),
    "ps_unfused": (True, False, True, "ps_unfused"),
}


@pytest.mark.parametrize("name", ROUND_TRIPS)
def test_round_trip_through_the_caduceus_layout(name, tmp_path):
    rc, swap, tied, golden = ROUND_TRIPS[name]
    config = rc_config(swap) if rc else MambaConfig(d_model=16, n_layers=2, d_state=4, bidirectional=True,
                                                       vocab_size=10)
    model = MaskedLMModel(config)
    randomize(model, 7)
    with torch.no_grad():
        model.head.bias.zero_()
    if tied:
        model.head.weight = model.encoder.embedding.weight
    model.eval()
    save_caduceus(model, tmp_path / name)

    written = json.loads((tmp_path / name / "config.json").read_text())
    assert written["model_type"] == "caduceus" and written["vocab_size"] == 16 and written["rcps"] is rc
    assert written["fused_add_norm"] is (swap or not rc)
    assert written.get("tie_word_embeddings", True) is tied
    # The published tensor names (the golden's, written by Caduceus's save_pretrained) plus the tied copies.
    keys = set(load_file(tmp_path / name / "model.safetensors"))
    published = set(load_file(DATA / golden / "model.safetensors"))
    extra = keys - published
    assert published <= keys
    assert all(".mamba_rev.in_proj." in k or ".mamba_rev.out_proj." in k or k.startswith("lm_head.") for k in extra)

    again, _ = load_caduceus(tmp_path / name)
    ids = torch.randint(1, 10, (2, 33))
    ones = torch.ones_like(ids)
    with torch.no_grad():
        assert torch.equal(again(ids, ones), model(ids, ones))
    assert (again.head.weight is again.encoder.embedding.weight) is tied


def test_save_caduceus_refuses_what_caduceus_cannot_hold(tmp_path):
    model = MaskedLMModel(MambaConfig(d_model=8, n_layers=1, d_state=4, bidirectional=True, vocab_size=10))
    with torch.no_grad():
        model.head.bias.fill_(0.5)
    with pytest.raises(ValueError, match="bias"):
        save_caduceus(model, tmp_path / "a")
    save_caduceus(model.encoder, tmp_path / "b")  # the encoder alone: the head becomes the embedding
    assert load_caduceus(tmp_path / "b")[0].head.weight is not None
    causal = MaskedLMModel(MambaConfig(d_model=8, n_layers=1, d_state=4, vocab_size=10))
    with pytest.raises(ValueError, match="causal"):
        save_caduceus(causal, tmp_path / "c")
    untied_ps = MaskedLMModel(rc_config(True))
    with torch.no_grad():
        untied_ps.head.bias.zero_()
    with pytest.raises(ValueError, match="ties its MLM head"):
        save_caduceus(untied_ps, tmp_path / "d")


# -- bad checkpoints ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("field, value, words", [
    ("rms_norm", False, "LayerNorm"),
    ("bidirectional_strategy", "ew_multiply", "'ew_multiply' is not supported"),
    ("bidirectional_weight_tie", False, "untied"),
    ("bidirectional", False, "causal"),
    ("model_type", "mamba", "not a Caduceus checkpoint"),
    ("d_model", "24", "expected a int"),
    ("ssm_cfg", {"d_state": 4, "headdim": 8}, "ssm_cfg.headdim"),
    ("complement_map", {"7": 9}, "maps 7 to 9"),
    ("vocab_size", 8, "character vocabulary"),
    ("n_layer", None, "missing"),
])
def test_bad_config_is_one_line_naming_file_and_field(tmp_path, field, value, words):
    directory = copy_golden("ps", tmp_path)
    path = directory / "config.json"
    data = json.loads(path.read_text())
    if value is None:
        del data[field]
    else:
        data[field] = value
    path.write_text(json.dumps(data))
    with pytest.raises(InputError) as err:
        load_caduceus(directory)
    message = str(err.value)
    assert "\n" not in message and str(path) in message
    assert field in message and words in message


def test_bad_weights_name_the_tensor(tmp_path):
    directory = copy_golden("ph", tmp_path)
    weights = load_file(directory / "model.safetensors")
    key = "caduceus.backbone.layers.1.mixer.mamba_rev.A_log"
    missing = {k: v for k, v in weights.items() if k != key}
    save_file(missing, directory / "model.safetensors")
    with pytest.raises(InputError, match=r"missing tensor 'caduceus\.backbone\.layers\.1\.mixer\.mamba_rev\.A_log'"):
        load_caduceus(directory)
    untied = dict(weights)
    fwd = "caduceus.backbone.layers.0.mixer.mamba_fwd.in_proj.weight"
    untied[fwd.replace("mamba_fwd", "mamba_rev")] = untied[fwd] + 1
    save_file(untied, directory / "model.safetensors")
    with pytest.raises(InputError, match="untied"):
        load_caduceus(directory)
    (directory / "model.safetensors").unlink()
    with pytest.raises(InputError, match=r"no model\.safetensors or pytorch_model\.bin"):
        load_caduceus(directory)


def test_pytorch_model_bin_is_read_without_unpickling_code(tmp_path):
    directory = copy_golden("ps", tmp_path)
    weights = load_file(directory / "model.safetensors")
    (directory / "model.safetensors").unlink()
    torch.save(weights, directory / "pytorch_model.bin")
    golden = load_file(directory / "golden.safetensors")
    model, _ = load_caduceus(directory)
    ids = from_caduceus_ids(golden["input_ids"])
    with torch.no_grad():
        assert_matches(model(ids, torch.ones_like(ids)), golden["logits"][..., TO_CADUCEUS])
    torch.save({"weights": weights, "hook": types.SimpleNamespace(x=1)}, directory / "pytorch_model.bin")
    with pytest.raises(InputError, match=r"pytorch_model\.bin: cannot read the weights as plain tensors"):
        load_caduceus(directory)


# -- the hub ---------------------------------------------------------------------------------------------------------


def fake_hub(monkeypatch, download):
    module = types.ModuleType("huggingface_hub")
    module.snapshot_download = download
    monkeypatch.setitem(sys.modules, "huggingface_hub", module)


def test_hub_id_goes_through_snapshot_download(monkeypatch, tmp_path):
    calls = []
    snapshot = copy_golden("ps", tmp_path)

    def download(repo_id, revision=None, allow_patterns=None):
        calls.append((repo_id, revision, allow_patterns))
        return str(snapshot)

    fake_hub(monkeypatch, download)
    model, _ = load_caduceus("kuleshov-group/caduceus-ps_test", revision="abc")
    assert model.config.rc_strand_swap
    assert calls == [("kuleshov-group/caduceus-ps_test", "abc", ["config.json", "*.safetensors", "pytorch_model.bin"])]
    calls.clear()
    encoder = DNAEncoder.from_pretrained("kuleshov-group/caduceus-ps_test")
    assert encoder.config.rc_equivariant
    emb = MambaEmbedder(model="kuleshov-group/caduceus-ps_test", device="cpu", max_len=64).fit()
    assert emb.transform(["ACGTACGGTTAN" * 3]).shape == (1, 24)
    assert [c[0] for c in calls] == ["kuleshov-group/caduceus-ps_test"] * 2


def test_hub_without_the_extra_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # import fails
    with pytest.raises(InputError) as err:
        load_caduceus("kuleshov-group/caduceus-ps_test")
    assert "pip install 'seqmamba[hub]'" in str(err.value) and "\n" not in str(err.value)


def test_hub_download_failure_is_one_line(monkeypatch):
    def download(repo_id, revision=None, allow_patterns=None):
        raise OSError("Connection refused\n  while fetching config.json")

    fake_hub(monkeypatch, download)
    with pytest.raises(InputError) as err:
        DNAEncoder.from_pretrained("kuleshov-group/caduceus-ps_test")
    message = str(err.value)
    assert "\n" not in message and "download from the Hugging Face hub failed" in message
    assert "Connection refused" in message


# -- embeddings --------------------------------------------------------------------------------------------------------


def test_embedder_on_a_caduceus_ps_directory_is_strand_symmetric():
    emb = MambaEmbedder(model=str(DATA / "ps"), device="cpu", max_len=64).fit()
    seq = "ACGTTGCAAGGCTNNACGATTACA" * 2
    comp = {"A": "T", "C": "G", "G": "C", "T": "A", "N": "N"}
    rc = "".join(comp[b] for b in reversed(seq))
    z, z_rc = emb.transform([seq, rc])
    assert z.shape == (24,)
    torch.testing.assert_close(torch.from_numpy(z), torch.from_numpy(z_rc), rtol=1e-5, atol=1e-6)


def test_caduceus_embedder_saves_and_pickles_as_a_seqmamba_model(tmp_path):
    import pickle

    import numpy as np

    emb = MambaEmbedder(model=str(DATA / "ps"), device="cpu", max_len=64).fit()
    X = ["ACGTTGCAAGGCTNNACGATTACA", "GGGCCCATAT"]
    z = emb.transform(X)
    emb.save(tmp_path / "model")
    np.testing.assert_array_equal(MambaEmbedder.load(tmp_path / "model").transform(X), z)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(emb)).transform(X), z)


def test_bare_caduceus_backbone_file_reads(tmp_path):
    # A `Caduceus` (no MLM head) names its tensors backbone.*; the head is then the embedding.
    directory = copy_golden("ps", tmp_path)
    weights = load_file(directory / "model.safetensors")
    bare = {k.removeprefix("caduceus."): v for k, v in weights.items() if not k.startswith("lm_head.")}
    save_file(bare, directory / "model.safetensors")
    golden = load_file(directory / "golden.safetensors")
    model, _ = load_caduceus(directory)
    ids = from_caduceus_ids(golden["input_ids"])
    with torch.no_grad():
        assert_matches(model(ids, torch.ones_like(ids)), golden["logits"][..., TO_CADUCEUS])
