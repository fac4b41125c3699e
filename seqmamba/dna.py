"""`DNAEncoder`: token ids -> embeddings -> `MambaEncoder`, optionally reverse-complement equivariant.

Reverse-complement (RC) equivariance is built the post-hoc way of Caduceus ("conjoining"): the same
encoder runs on the sequence and on its reverse complement, and the two are combined symmetrically.
Position t of the sequence and position L-1-t of its RC are the same base pair, so per-position
outputs are out[t] = (h[t] + h_rc[L-1-t]) / 2, and pooled embeddings are (mean(h) + mean(h_rc)) / 2:
identical, bit for bit, for a sequence and its reverse complement. It costs two encoder passes.
"""

from __future__ import annotations

import dataclasses
import os

import torch
from torch import nn

from . import checkpoint as ckpt
from .config import MambaConfig
from .encoder import MambaEncoder


def check_complement_map(complement_map: list[int], vocab_size: int) -> torch.Tensor:
    """The map as a long tensor; ValueError unless it is an involution over range(vocab_size)."""
    if len(complement_map) != vocab_size:
        raise ValueError(
            f"complement_map must have one entry per token (vocab_size={vocab_size}),"
            f" got {len(complement_map)}"
        )
    table = torch.tensor(complement_map, dtype=torch.long)
    bad = [i for i, j in enumerate(complement_map) if not 0 <= j < vocab_size or complement_map[j] != i]
    if bad:
        raise ValueError(
            f"complement_map must map every token to a token whose complement is itself;"
            f" fails for token ids {bad[:10]}"
        )
    return table


def reverse_complement(ids: torch.Tensor, complement: torch.Tensor) -> torch.Tensor:
    """Token ids (batch, L) of the reverse-complement strands: complemented, then reversed in L.

    Only the (small, integer) ids are flipped, never activations. Every row is taken as a whole
    sequence: rows padded at the end become padded at the start.
    """
    return complement.to(ids.device)[ids].flip(-1)


class DNAEncoder(nn.Module):
    """DNA token ids (batch, L) -> per-position embeddings (batch, L, d_model).

    A token embedding (``config.vocab_size`` rows) feeds a `MambaEncoder` (causal or bidirectional).
    With ``config.rc_equivariant`` the encoder also runs on the reverse complement (weights shared) and
    the outputs are combined so that ``embed(ids)`` equals ``embed(reverse_complement(ids))`` exactly
    and ``forward(rc)`` is ``forward(ids)`` reversed in L.

    Example:
        >>> import torch
        >>> from seqmamba import MambaConfig
        >>> from seqmamba.dna import DNAEncoder, reverse_complement
        >>> from seqmamba.tokenizers.dna import COMPLEMENT, DNATokenizer
        >>> cfg = MambaConfig(d_model=16, n_layers=1, d_state=4, bidirectional=True, rc_equivariant=True,
        ...                   vocab_size=DNATokenizer.vocab_size, complement_map=list(COMPLEMENT))
        >>> model = DNAEncoder(cfg).double()
        >>> ids = torch.randint(1, 5, (2, 50))  # A, C, G, T = 1, 2, 3, 4
        >>> rc = reverse_complement(ids, torch.tensor(COMPLEMENT))
        >>> torch.equal(model.embed(ids), model.embed(rc))
        True
    """

    def __init__(self, config: MambaConfig) -> None:
        super().__init__()
        if config.vocab_size is None:
            raise ValueError("DNAEncoder: config.vocab_size must be set (e.g. 5 for A, C, G, T, N)")
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.d_model)
        nn.init.normal_(self.embedding.weight, std=0.02)
        self.encoder = MambaEncoder(dataclasses.replace(config, rc_equivariant=False, rc_strand_swap=False))
        complement = torch.empty(0, dtype=torch.long)
        if config.rc_equivariant:
            if config.complement_map is None:
                raise ValueError(
                    "DNAEncoder: rc_equivariant needs config.complement_map"
                    " (DNATokenizer's: seqmamba.tokenizers.dna.COMPLEMENT)"
                )
            complement = check_complement_map(config.complement_map, config.vocab_size)
        # Not persistent: it is part of the config, and a state_dict entry would duplicate it.
        self.register_buffer("complement", complement, persistent=False)

    @property
    def gradient_checkpointing(self) -> bool:
        return self.config.gradient_checkpointing

    @gradient_checkpointing.setter
    def gradient_checkpointing(self, value: bool) -> None:
        self.config.gradient_checkpointing = bool(value)
        self.encoder.gradient_checkpointing = bool(value)

    @staticmethod
    def _check_ids(ids: torch.Tensor) -> None:
        if ids.dim() != 2 or ids.dtype not in (torch.int32, torch.int64):
            raise ValueError(
                f"DNAEncoder: ids must be integer token ids (batch, L), got {ids.dtype} {tuple(ids.shape)}"
            )

    def _encode(self, ids: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        self._check_ids(ids)
        return self.encoder(self.embedding(ids), mask)  # (batch, L, d_model)

    def strands(self, ids: torch.Tensor, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Both strands' outputs of an RC-equivariant model: (forward strand, RC strand), each (batch, L, d_model).

        The RC strand's output is in its own order: its position L-1-t is the forward strand's position t.
        With ``config.rc_strand_swap`` the strands trade streams before every layer (Caduceus-PS, see
        `seqmamba.rcps`); otherwise each goes through the encoder alone. For ``ids`` reverse-complemented the
        two come back exchanged, exactly.
        """
        if not self.config.rc_equivariant:
            raise ValueError("DNAEncoder.strands: the model is not rc_equivariant (it encodes one strand)")
        self._check_ids(ids)
        ids_rc = reverse_complement(ids, self.complement)
        mask_rc = None if mask is None else mask.flip(-1)  # padding at the end moves to the start
        if self.config.rc_strand_swap:
            from .rcps import rcps_strands

            return rcps_strands(self.encoder, self.embedding(ids), self.embedding(ids_rc), mask, mask_rc)
        return self._encode(ids, mask), self._encode(ids_rc, mask_rc)  # (batch, L, d_model) each

    def forward(self, ids: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """ids (batch, L) -> (batch, L, d_model); with RC equivariance, RC input gives flipped output.

        ``mask`` (batch, L): 1 on real tokens, 0 on padding; real positions then come out as their row
        alone gives them, whatever the padding (see `MambaEncoder.forward`).
        """
        if not self.config.rc_equivariant:
            return self._encode(ids, mask)  # (batch, L, d_model)
        hidden, hidden_rc = self.strands(ids, mask)
        # The RC strand's position L-1-t is this strand's position t: one flip of the output aligns them.
        return (hidden + hidden_rc.flip(1)) * 0.5

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """Mean-pooled embeddings (batch, d_model); strand-symmetric with RC equivariance.

        The two strands are pooled separately and then averaged, so the result is exactly the same
        (bit for bit, a + b == b + a) for a sequence and its reverse complement.
        """
        if self.config.rc_strand_swap:
            hidden, hidden_rc = self.strands(ids)
            return (hidden.mean(1) + hidden_rc.mean(1)) * 0.5
        pooled = self._encode(ids).mean(1)  # (batch, d_model)
        if not self.config.rc_equivariant:
            return pooled
        pooled_rc = self._encode(reverse_complement(ids, self.complement)).mean(1)  # (batch, d_model)
        return (pooled + pooled_rc) * 0.5

    def save_pretrained(self, directory: str | os.PathLike) -> None:
        """Write ``config.json`` + ``model.safetensors`` into ``directory`` (atomically, no pickle)."""
        ckpt.save_pretrained(self, directory, self.config)

    @classmethod
    def from_pretrained(
        cls, directory: str | os.PathLike, device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> DNAEncoder:
        """Load a model written by `save_pretrained`, in eval mode.

        A Caduceus checkpoint loads too: a directory in the Hugging Face layout (``config.json`` with
        ``model_type: caduceus``) or a hub id such as ``kuleshov-group/caduceus-ps_seqlen-131k_d_model-256_n_layer-16``
        (needs ``pip install 'seqmamba[hub]'``); see `seqmamba.caduceus`.
        """
        from . import caduceus

        if not caduceus.is_caduceus_source(directory):
            return ckpt.from_pretrained(cls, directory, device=device, dtype=dtype)
        spec, state, _ = caduceus.load_caduceus_parts(directory, cls.state_shapes)
        encoder = cls(spec.config)
        encoder.load_state_dict(state)
        if device is not None or dtype is not None:
            encoder = encoder.to(device=device, dtype=dtype)
        return encoder.eval()

    @classmethod
    def state_shapes(cls, config: MambaConfig) -> dict[str, tuple[int, ...]]:
        """The shape of every tensor of ``cls(config)``'s state dict, computed without allocating it."""
        with torch.device("meta"):
            return {k: tuple(v.shape) for k, v in cls(config).state_dict().items()}
