"""save_pretrained / from_pretrained: round trips, clear errors, no pickle, atomic writes."""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from seqmamba import DNAEncoder, MambaConfig, MambaEncoder
from seqmamba.checkpoint import CONFIG_NAME, WEIGHTS_NAME
from seqmamba.tokenizers.dna import COMPLEMENT, DNATokenizer


def _encoder(**kwargs) -> MambaEncoder:
    torch.manual_seed(0)
    return MambaEncoder(MambaConfig(**{"d_model": 8, "n_layers": 2, "d_state": 4, **kwargs}))


@pytest.mark.parametrize("kwargs", [{}, {"bidirectional": True, "bidirectional_combine": "gate"}])
def test_round_trip_gives_identical_outputs(tmp_path, kwargs):
    enc = _encoder(**kwargs).eval()
    enc.save_pretrained(tmp_path / "model")
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == [CONFIG_NAME, WEIGHTS_NAME]
    loaded = MambaEncoder.from_pretrained(tmp_path / "model")
    assert loaded.config == enc.config and not loaded.training
    x = torch.randn(2, 19, 8)
    assert torch.equal(loaded(x), enc(x))
    meta = json.loads((tmp_path / "model" / CONFIG_NAME).read_text())
    assert meta["format_version"] == 1 and meta["model_type"] == "MambaEncoder"


def test_dna_encoder_round_trip_and_dtype(tmp_path):
    torch.manual_seed(0)
    cfg = MambaConfig(d_model=8, n_layers=1, d_state=4, bidirectional=True, rc_equivariant=True,
                      vocab_size=DNATokenizer.vocab_size, complement_map=list(COMPLEMENT))
    model = DNAEncoder(cfg).eval()
    model.save_pretrained(tmp_path)
    loaded = DNAEncoder.from_pretrained(tmp_path, dtype=torch.float64)
    ids = torch.randint(1, 6, (2, 21))
    torch.testing.assert_close(loaded.embed(ids).float(), model.embed(ids), rtol=1e-5, atol=1e-6)
    assert next(loaded.parameters()).dtype == torch.float64
    with pytest.raises(ValueError, match="holds a DNAEncoder, not a MambaEncoder"):
        MambaEncoder.from_pretrained(tmp_path)


def test_overwrite_keeps_other_files_and_leaves_no_temporaries(tmp_path):
    (tmp_path / "tokenizer.json").write_text("{}")
    _encoder().save_pretrained(tmp_path)
    _encoder(d_state=8).save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [CONFIG_NAME, WEIGHTS_NAME, "tokenizer.json"]
    assert MambaEncoder.from_pretrained(tmp_path).config.d_state == 8


def _edit_config(directory, **changes):
    path = directory / CONFIG_NAME
    meta = json.loads(path.read_text())
    for key, value in changes.items():
        if key == "format_version":
            meta[key] = value
        else:
            meta["config"][key] = value
    path.write_text(json.dumps(meta))


def test_version_mismatches_are_refused(tmp_path):
    _encoder().save_pretrained(tmp_path)
    _edit_config(tmp_path, format_version=99)
    with pytest.raises(ValueError, match="format version 99"):
        MambaEncoder.from_pretrained(tmp_path)
    _edit_config(tmp_path, format_version=1, version=2)
    with pytest.raises(ValueError, match="config version 2"):
        MambaEncoder.from_pretrained(tmp_path)


def test_mismatched_weights_are_named(tmp_path):
    _encoder().save_pretrained(tmp_path)
    weights = load_file(tmp_path / WEIGHTS_NAME)

    _edit_config(tmp_path, n_layers=1)
    with pytest.raises(ValueError, match=r"tensor 'layers\.1\.mixer\.\S+' is not in the model the config describes"):
        MambaEncoder.from_pretrained(tmp_path)

    _edit_config(tmp_path, n_layers=2, d_state=8)
    mismatch = r"tensor 'layers\.0\.mixer\.ssm\.A_log' has shape \(16, 4\), the config implies \(16, 8\)"
    with pytest.raises(ValueError, match=mismatch):
        MambaEncoder.from_pretrained(tmp_path)

    _edit_config(tmp_path, d_state=4)
    del weights["norm_f.weight"]
    save_file(weights, tmp_path / WEIGHTS_NAME)
    with pytest.raises(ValueError, match=r"tensor 'norm_f\.weight' is missing \(the config implies shape \(8,\)\)"):
        MambaEncoder.from_pretrained(tmp_path)


def test_missing_or_corrupt_files(tmp_path):
    with pytest.raises(ValueError, match=r"config\.json: no such file"):
        MambaEncoder.from_pretrained(tmp_path)
    _encoder().save_pretrained(tmp_path)
    (tmp_path / WEIGHTS_NAME).write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="truncated or not a safetensors file"):
        MambaEncoder.from_pretrained(tmp_path)
    (tmp_path / CONFIG_NAME).write_text("{not json")
    with pytest.raises(ValueError, match="invalid JSON"):
        MambaEncoder.from_pretrained(tmp_path)
