"""DNAEncoder: token ids in, reverse-complement equivariance exact in float64."""

import pytest
import torch

from seqmamba import DNAEncoder, MambaConfig
from seqmamba.dna import reverse_complement
from seqmamba.tokenizers.dna import COMPLEMENT as TOKEN_COMPLEMENT
from seqmamba.tokenizers.dna import DNATokenizer

COMPLEMENT = torch.tensor(TOKEN_COMPLEMENT)


def _model(rc=True, **kwargs) -> DNAEncoder:
    torch.manual_seed(0)
    cfg = MambaConfig(**{"d_model": 16, "n_layers": 2, "d_state": 4, "bidirectional": True,
                         "rc_equivariant": rc, "vocab_size": DNATokenizer.vocab_size,
                         "complement_map": list(TOKEN_COMPLEMENT), **kwargs})
    return DNAEncoder(cfg).double()


def _decode(ids):
    return DNATokenizer().decode(ids.numpy())


def test_reverse_complement_of_token_ids():
    ids = torch.tensor([[1, 1, 2, 3, 4, 5]])  # AACGTN
    assert _decode(reverse_complement(ids, COMPLEMENT)[0]) == "NACGTT"
    assert torch.equal(reverse_complement(reverse_complement(ids, COMPLEMENT), COMPLEMENT), ids)


@pytest.mark.parametrize("bidirectional", [True, False])
def test_pooled_embeddings_are_exactly_strand_symmetric(bidirectional):
    model = _model(bidirectional=bidirectional)
    ids = torch.randint(1, 6, (3, 57), generator=torch.Generator().manual_seed(1))
    rc = reverse_complement(ids, COMPLEMENT)
    with torch.no_grad():
        assert torch.equal(model.embed(ids), model.embed(rc))
        per_position = model(ids)
        assert torch.equal(model(rc), per_position.flip(1))
    assert per_position.shape == (3, 57, 16)


def test_without_rc_equivariance_the_strands_differ():
    model = _model(rc=False)
    ids = torch.randint(1, 5, (1, 40), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert not torch.allclose(model.embed(ids), model.embed(reverse_complement(ids, COMPLEMENT)))


def test_rc_equivariant_gradients_flow_with_checkpointing():
    model = _model().float()
    model.gradient_checkpointing = True
    assert model.encoder.config.gradient_checkpointing
    model.embed(torch.randint(1, 6, (2, 20))).sum().backward()
    assert model.embedding.weight.grad.abs().max() > 0


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"vocab_size": None}, "vocab_size"),
        ({"complement_map": None}, "complement_map"),
        ({"complement_map": [3, 2, 1, 0]}, "one entry per token"),
        ({"complement_map": [0, 4, 3, 2, 2, 5, 6, 7, 8, 9]}, r"token ids \[1, 4\]"),
    ],
)
def test_bad_configs_are_explained(changes, message):
    with pytest.raises(ValueError, match=message):
        _model(**changes)


def test_ids_must_be_integer_tokens():
    with pytest.raises(ValueError, match="integer token ids"):
        _model()(torch.zeros(2, 10))
