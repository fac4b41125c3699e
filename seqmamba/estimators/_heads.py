"""The estimators' torch modules: a `DNAEncoder` with a pooled linear head, or a per-position one.

Both take ``input_ids`` and ``attention_mask`` (1 on real tokens). The encoder gets the mask too, so
padding never reaches a real position: a window's outputs do not depend on the longer windows it is
batched with. Pooling ignores padded positions. Padding sits at the end of a window; an
RC-equivariant encoder flips its reverse strand's output back, so the mask applies to the combined
output as it is.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import MambaConfig
from ..dna import DNAEncoder

POOLINGS = ("mean", "max", "cls")


def masked_pool(hidden: torch.Tensor, mask: torch.Tensor, how: str) -> torch.Tensor:
    """hidden (b, L, d), mask (b, L) -> (b, d): mean or max over real positions, or position 0 ("cls").

    Example:
        >>> h = torch.tensor([[[1.0], [3.0], [100.0]]])
        >>> mask = torch.tensor([[1, 1, 0]])
        >>> masked_pool(h, mask, "mean").item(), masked_pool(h, mask, "max").item()
        (2.0, 3.0)
    """
    if how == "cls":
        return hidden[:, 0]
    m = mask.to(hidden.dtype).unsqueeze(-1)  # (b, L, 1)
    if how == "mean":
        return (hidden * m).sum(1) / m.sum(1).clamp_min(1.0)
    if how == "max":
        return hidden.masked_fill(m == 0, torch.finfo(hidden.dtype).min).amax(1)
    raise ValueError(f"pooling must be one of {POOLINGS}, got {how!r}")


class _EncoderWithHead(nn.Module):
    """A `DNAEncoder` and a linear head of ``n_outputs``; subclasses say where the head is applied."""

    def __init__(self, config: MambaConfig, n_outputs: int, pooling: str) -> None:
        super().__init__()
        self.encoder = DNAEncoder(config)
        self.config = config
        self.pooling = pooling
        self.head = nn.Linear(config.d_model, n_outputs)

    @property
    def gradient_checkpointing(self) -> bool:
        return self.encoder.gradient_checkpointing

    @gradient_checkpointing.setter
    def gradient_checkpointing(self, value: bool) -> None:
        self.encoder.gradient_checkpointing = value

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, pooling: str | None = None) -> torch.Tensor:
        """(b, L) ids -> (b, d_model) pooled embeddings."""
        hidden = self.encoder(input_ids, attention_mask)  # (b, L, d_model)
        return masked_pool(hidden, attention_mask, pooling or self.pooling)


class SequenceHeadModel(_EncoderWithHead):
    """DNA ids (b, L) -> pooled embedding (b, d_model) -> logits (b, n_outputs).

    Example:
        >>> from seqmamba.config import MambaConfig
        >>> cfg = MambaConfig(d_model=8, n_layers=1, d_state=4, bidirectional=True, vocab_size=10)
        >>> model = SequenceHeadModel(cfg, n_outputs=3)
        >>> model(torch.randint(1, 5, (2, 30)), torch.ones(2, 30, dtype=torch.long)).shape
        torch.Size([2, 3])
    """

    def __init__(self, config: MambaConfig, n_outputs: int, pooling: str = "mean") -> None:
        super().__init__(config, n_outputs, pooling)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(input_ids, attention_mask))  # (b, n_outputs)


class MaskedLMModel(_EncoderWithHead):
    """DNA ids (b, L) -> per-position token logits (b, L, vocab): masked-nucleotide modelling.

    With an RC-equivariant encoder the head reads both strands, the RCPS way (Caduceus-PS's ``RCPSLMHead``):
    ``logits[t, k] = W[k]·h[t] + W[comp(k)]·h_rc[L-1-t] + (b[k] + b[comp(k)]) / 2``, where ``h_rc`` is the
    reverse-complement strand's output. The strand average that `embed` pools is identical at position t of
    a sequence and at L-1-t of its reverse complement, where a masked base is A in one and T in the other, so
    a head on it cannot tell them apart; this one can, and the logits of the reverse complement are the
    logits flipped in L with their columns complemented.

    Example:
        >>> from seqmamba.config import MambaConfig
        >>> cfg = MambaConfig(d_model=8, n_layers=1, d_state=4, bidirectional=True, vocab_size=10)
        >>> MaskedLMModel(cfg)(torch.randint(1, 5, (2, 30)), torch.ones(2, 30)).shape
        torch.Size([2, 30, 10])
        >>> from seqmamba.dna import reverse_complement
        >>> comp = [0, 4, 3, 2, 1, 5, 6, 7, 8, 9]  # DNATokenizer's complement map
        >>> rc_cfg = MambaConfig(d_model=8, n_layers=1, d_state=4, bidirectional=True, vocab_size=10,
        ...                      rc_equivariant=True, complement_map=comp)
        >>> model = MaskedLMModel(rc_cfg).double()
        >>> ids, ones = torch.randint(1, 5, (2, 30)), torch.ones(2, 30)
        >>> rc_ids = reverse_complement(ids, torch.tensor(comp))
        >>> torch.equal(model(rc_ids, ones), model(ids, ones).flip(1)[..., comp])
        True
    """

    def __init__(self, config: MambaConfig, pooling: str = "mean") -> None:
        super().__init__(config, config.vocab_size, pooling)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if not self.config.rc_equivariant:
            return self.head(self.encoder(input_ids, attention_mask))  # (b, L, vocab)
        hidden, hidden_rc = self.encoder.strands(input_ids, attention_mask)  # (b, L, d_model); hidden_rc RC order
        return strand_logits(self.head, hidden, hidden_rc, self.encoder.complement)  # (b, L, vocab)


def strand_logits(head: nn.Linear, hidden: torch.Tensor, hidden_rc: torch.Tensor,
                  complement: torch.Tensor) -> torch.Tensor:
    """Token logits (b, L, vocab) from both strands: W[k]·h[t] + W[comp(k)]·h_rc[L-1-t] + symmetric bias.

    ``hidden`` (b, L, d): the forward strand; ``hidden_rc`` (b, L, d): the RC strand in its own order;
    ``complement`` (vocab,): token id -> its complement's. The RC term is the head applied to ``hidden_rc``
    as it comes, flipped and complemented afterwards (W[comp]·x equals (W·x)[comp]): for the reverse
    complement the two terms trade places, so its logits equal these flipped and complemented bit for bit.
    """
    logits = F.linear(hidden, head.weight)  # (b, L, vocab)
    logits = logits + F.linear(hidden_rc, head.weight).flip(1)[..., complement]  # W[comp(k)]·h_rc[L-1-t]
    if head.bias is not None:
        logits = logits + (head.bias + head.bias[complement]) * 0.5  # complement-symmetric
    return logits


class CausalLMModel(_EncoderWithHead):
    """Causal DNA ids (b, L) -> per-position logits (b, L, vocab): position t predicts the token at t + 1.

    The encoder must be causal (``bidirectional=False``) and not RC-equivariant: either would let
    position t see the base it is asked to predict.

    Example:
        >>> from seqmamba.config import MambaConfig
        >>> cfg = MambaConfig(d_model=8, n_layers=1, d_state=4, bidirectional=False, vocab_size=10)
        >>> model = CausalLMModel(cfg)
        >>> ids = torch.randint(1, 5, (2, 30))
        >>> logits = model(ids, torch.ones(2, 30))
        >>> logits.shape, torch.allclose(model(ids[:, :10], torch.ones(2, 10)), logits[:, :10], atol=1e-5)
        (torch.Size([2, 30, 10]), True)
    """

    def __init__(self, config: MambaConfig, pooling: str = "mean") -> None:
        if config.bidirectional or config.rc_equivariant:
            raise ValueError("CausalLMModel needs a causal encoder (bidirectional=False, rc_equivariant=False)")
        super().__init__(config, config.vocab_size, pooling)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(input_ids, attention_mask))  # (b, L, vocab)


def build_module(kind: str, config: MambaConfig, n_outputs: int, pooling: str) -> nn.Module:
    """The module an estimator's checkpoint describes (``kind`` from its estimator.json)."""
    if kind == "SequenceHeadModel":
        return SequenceHeadModel(config, n_outputs, pooling)
    if kind == "MaskedLMModel":
        return MaskedLMModel(config, pooling)
    if kind == "CausalLMModel":
        return CausalLMModel(config, pooling)
    raise ValueError(f"unknown model kind {kind!r}")
