"""MambaConfig: defaults, validation and the dict/JSON round trip."""

import json

import pytest

from seqmamba import MambaConfig
from seqmamba.config import CONFIG_VERSION


def test_defaults_follow_the_mamba_paper():
    cfg = MambaConfig(d_model=40, n_layers=2)
    assert (cfg.d_state, cfg.d_conv, cfg.expand, cfg.d_inner) == (16, 4, 2, 80)
    assert cfg.resolved_dt_rank == 3  # ceil(40 / 16)
    assert cfg.version == CONFIG_VERSION
    assert not cfg.bidirectional


def test_round_trip_through_json():
    cfg = MambaConfig(
        d_model=16, n_layers=3, d_state=4, bidirectional=True, bidirectional_combine="gate",
        rc_equivariant=True, vocab_size=5, complement_map=[3, 2, 1, 0, 4], dt_rank=2,
    )
    assert MambaConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"d_model": 0}, "d_model"),
        ({"n_layers": 1.5}, "n_layers"),
        ({"dt_rank": "big"}, "dt_rank"),
        ({"bidirectional_combine": "concat"}, "bidirectional_combine"),
        ({"dt_min": 0.5, "dt_max": 0.1}, "dt_min"),
        ({"version": CONFIG_VERSION + 1}, "version"),
    ],
)
def test_bad_values_are_named(change, message):
    with pytest.raises(ValueError, match=message):
        MambaConfig(**{"d_model": 8, "n_layers": 1, **change})


def test_from_dict_names_unknown_and_missing_keys():
    with pytest.raises(ValueError, match=r"unknown keys.*'n_heads'"):
        MambaConfig.from_dict({"d_model": 8, "n_layers": 1, "n_heads": 4})
    with pytest.raises(ValueError, match=r"missing required keys.*'n_layers'"):
        MambaConfig.from_dict({"d_model": 8})
    with pytest.raises(ValueError, match="version"):
        MambaConfig.from_dict({"d_model": 8, "n_layers": 1, "version": 99})
