"""Reverse-complement parameter sharing (RCPS, Caduceus-PS) over seqmamba's layers.

An RCPS model carries two strands through the same layers. Caduceus stores them side by side in one
``(batch, L, 2*d_model)`` tensor: the first half is the forward strand, the second half the reverse-complement
(RC) strand, reversed along L *and* along channels, so that reverse-complementing the whole tensor (flipping L
and channels) swaps the strands. Every module then acts on each strand in that strand's own order:
``[f(first half), rc(f(rc(second half)))]`` with ``rc(x) = x.flip(L, channels)``.

Two layer orders exist, and they compute different functions:

- strands apart (``rc_strand_swap=False``; Caduceus's ``RCPSAddNormWrapper``, ``fused_add_norm: false``):
  each strand's residual stream goes through the layers on its own, exactly the two passes of
  ``DNAEncoder(rc_equivariant=True)``;
- strands swapped (``rc_strand_swap=True``; Caduceus's ``RCPSMambaBlock`` with ``fused_add_norm: true``, the
  setting of every published Caduceus-PS checkpoint): its fused branch hands the *second* half to the norm as
  the forward strand and the reversed *first* half as the RC strand, so before every layer the two strands
  trade streams, each reversed along L and channels. The unfused branch does not swap. The published weights
  were trained with the swap, so this is what loading them must reproduce; the final norm swaps nothing.

Both keep RC equivariance (the layer is symmetric in the two strands). `rcps_reference` is the readable form,
in Caduceus's ``(batch, L, 2*d_model)`` layout, one strand after the other; `rcps_strands` is what
`DNAEncoder` runs: the strands stacked along the batch, one call per layer, the swap one flip and roll.
"""

from __future__ import annotations

import torch

from .encoder import MambaEncoder


def rc_channels(x: torch.Tensor) -> torch.Tensor:
    """Reverse-complement a (batch, L, channels) representation: positions and channels reversed."""
    return x.flip(1, 2)


def rcps_reference(
    encoder: MambaEncoder, emb_fwd: torch.Tensor, emb_rc: torch.Tensor, strand_swap: bool
) -> torch.Tensor:
    """The RCPS stack written out as Caduceus lays it out: (batch, L, 2*d_model).

    ``emb_fwd`` (batch, L, d_model): the token embeddings of the sequence; ``emb_rc``: those of its reverse
    complement, in the RC strand's own order. Each layer of ``encoder`` is ``h + mixer(norm(h))``, taken here
    in mamba_ssm's order (add the residual, then norm, then mixer). No padding mask: the reference of the
    numbers, not a production path.
    """
    d = encoder.config.d_model

    def per_strand(module, x: torch.Tensor) -> torch.Tensor:  # (batch, L, 2*d_model) -> same
        return torch.cat([module(x[..., :d]), rc_channels(module(rc_channels(x[..., d:])))], dim=-1)

    hidden = torch.cat([emb_fwd, rc_channels(emb_rc)], dim=-1)  # (batch, L, 2*d_model)
    residual = None
    for layer in encoder.layers:
        residual = hidden if residual is None else hidden + residual  # (batch, L, 2*d_model)
        if strand_swap:
            # fused_add_norm: the first half is normed as the second's RC and vice versa; the residual passed on
            # is taken in the same order, so the halves trade places.
            residual = torch.cat([residual[..., d:], residual[..., :d]], dim=-1)
        hidden = per_strand(layer.mixer, per_strand(layer.norm, residual))  # (batch, L, 2*d_model)
    return per_strand(encoder.norm_f, hidden + residual)  # (batch, L, 2*d_model)


def rcps_strands(
    encoder: MambaEncoder,
    emb_fwd: torch.Tensor,
    emb_rc: torch.Tensor,
    mask_fwd: torch.Tensor | None = None,
    mask_rc: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The strand-swapping RCPS stack, both strands in one batch: (forward strand, RC strand), each (batch, L, d).

    Same numbers as ``rcps_reference(..., strand_swap=True)`` split into its halves (the second half read back
    in the RC strand's order, ``rc_channels(out[..., d:])``). Rows 0..batch-1 of the stacked stream hold the
    forward strand's stream in the sequence's order, rows batch..2*batch-1 the RC strand's in its own order;
    the swap (each takes the other's stream, reversed along L and channels) keeps that, so each strand keeps
    its padding mask: ``mask_rc`` is ``mask_fwd`` reversed.

    Example:
        >>> from seqmamba import MambaConfig, MambaEncoder
        >>> encoder = MambaEncoder(MambaConfig(d_model=8, n_layers=2, d_state=4, bidirectional=True)).double()
        >>> emb_fwd, emb_rc = torch.randn(2, 30, 8, dtype=torch.float64), torch.randn(2, 30, 8, dtype=torch.float64)
        >>> fwd, rc = rcps_strands(encoder, emb_fwd, emb_rc)
        >>> stacked = torch.cat([fwd, rc_channels(rc)], dim=-1)  # (batch, L, 2*d_model), Caduceus's layout
        >>> torch.allclose(stacked, rcps_reference(encoder, emb_fwd, emb_rc, strand_swap=True))
        True
    """
    batch = emb_fwd.shape[0]
    stream = torch.cat([emb_fwd, emb_rc])  # (2*batch, L, d_model)
    mask = None if mask_fwd is None else torch.cat([mask_fwd, mask_rc])  # (2*batch, L)
    for layer in encoder.layers:
        stream = rc_channels(stream).roll(batch, dims=0)  # the strands trade streams
        stream = encoder.run_layer(layer, stream, mask)
    out = encoder.norm_f(stream)  # (2*batch, L, d_model)
    return out[:batch], out[batch:]
