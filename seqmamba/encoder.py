"""`MambaEncoder`: a stack of pre-norm residual Mamba layers and a final norm, causal or bidirectional."""

from __future__ import annotations

import os

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from . import checkpoint as ckpt
from .config import MambaConfig
from .inference import InferenceCache
from .modules.bimamba import BiMambaMixer
from .modules.block import MambaBlock
from .modules.norm import RMSNorm
from .modules.recompute import ScanInputRecompute

# A layer over fewer tokens (batch x L) keeps its scan inputs: they are small there, and the hooks' host time
# is what a short step waits on.
RECOMPUTE_MIN_TOKENS = 1 << 16


class ResidualLayer(nn.Module):
    """h + mixer(norm(h)): (batch, L, d_model) -> (batch, L, d_model)."""

    def __init__(self, config: MambaConfig) -> None:
        super().__init__()
        self.norm = RMSNorm(config.d_model, eps=config.norm_eps)
        self.mixer = BiMambaMixer(config) if config.bidirectional else MambaBlock.from_config(config)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return hidden + self.mixer(self.norm(hidden), mask=mask)


class MambaEncoder(nn.Module):
    """Mamba encoder over embeddings: (batch, L, d_model) -> (batch, L, d_model).

    ``config.bidirectional=False`` gives a causal encoder (output t depends on inputs <= t) with exact
    recurrent inference (`allocate_inference_cache` + `step`) and chunked inference
    (`forward_chunked`). ``bidirectional=True`` gives Caduceus-style BiMamba layers where every
    output depends on the whole sequence. For token ids and reverse-complement equivariance, see
    `seqmamba.dna.DNAEncoder`.

    Example:
        >>> import torch
        >>> from seqmamba import MambaConfig, MambaEncoder
        >>> enc = MambaEncoder(MambaConfig(d_model=16, n_layers=2, d_state=4, bidirectional=True))
        >>> enc(torch.randn(2, 100, 16)).shape
        torch.Size([2, 100, 16])
    """

    def __init__(self, config: MambaConfig) -> None:
        super().__init__()
        if config.rc_equivariant:
            raise ValueError(
                "MambaEncoder: rc_equivariant needs to know how to complement the input, which embeddings"
                " do not say; use seqmamba.dna.DNAEncoder (token ids) for a reverse-complement"
                " equivariant model"
            )
        self.config = config
        self.layers = nn.ModuleList(ResidualLayer(config) for _ in range(config.n_layers))
        self.norm_f = RMSNorm(config.d_model, eps=config.norm_eps)
        for layer in self.layers:
            layer.mixer.rescale_out_proj(config.n_layers)

    @property
    def gradient_checkpointing(self) -> bool:
        return self.config.gradient_checkpointing

    @gradient_checkpointing.setter
    def gradient_checkpointing(self, value: bool) -> None:
        self.config.gradient_checkpointing = bool(value)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """x (batch, L, d_model) -> (batch, L, d_model).

        ``mask`` (batch, L), 1 on real tokens and 0 on padding: a padded row's real positions then come
        out as the row alone would give them (the padded positions' own outputs mean nothing).
        """
        if x.dim() != 3 or x.shape[-1] != self.config.d_model:
            raise ValueError(
                f"MambaEncoder: input must be (batch, L, d_model={self.config.d_model}), got {tuple(x.shape)}"
            )
        hidden = x  # (batch, L, d_model)
        for layer in self.layers:
            hidden = self.run_layer(layer, hidden, mask)
        return self.norm_f(hidden)

    def run_layer(self, layer: nn.Module, hidden: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """One of ``self.layers`` on hidden (batch, L, d_model), keeping for the backward what the settings say:

        - ``gradient_checkpointing``: only the layer's input; its inside is recomputed in the backward;
        - else, on ``RECOMPUTE_MIN_TOKENS`` tokens or more: all but the scan's inputs (each branch's conv output
          and delta), which the backward recomputes from the conv's input (`ScanInputRecompute`);
        - else (and for inference) whatever autograd keeps.
        """
        if not torch.is_grad_enabled():
            return layer(hidden, mask)
        if self.config.gradient_checkpointing:
            return checkpoint(layer, hidden, mask, use_reentrant=False)
        if hidden.shape[0] * hidden.shape[1] >= RECOMPUTE_MIN_TOKENS:
            with ScanInputRecompute():
                return layer(hidden, mask)
        return layer(hidden, mask)

    # Recurrent and chunked inference (causal only).

    def _require_causal(self, what: str) -> None:
        if self.config.bidirectional:
            raise ValueError(
                f"MambaEncoder.{what}: needs a causal encoder; a bidirectional one looks at future tokens"
            )

    def allocate_inference_cache(
        self, batch_size: int, dtype: torch.dtype | None = None, device: torch.device | str | None = None
    ) -> InferenceCache:
        """Zero states for `step` / `forward_chunked`, on the model's device unless told otherwise."""
        self._require_causal("allocate_inference_cache")
        cache = InferenceCache()
        for layer in self.layers:
            conv, ssm = layer.mixer.allocate_state(batch_size, dtype=dtype, device=device)
            cache.conv_states.append(conv)
            cache.ssm_states.append(ssm)
        return cache

    def step(self, x_t: torch.Tensor, cache: InferenceCache) -> torch.Tensor:
        """One token x_t (batch, d_model) -> output (batch, d_model), advancing ``cache`` in place.

        Stepping through x[:, 0], x[:, 1], ... gives forward(x)[:, 0], forward(x)[:, 1], ...
        No host synchronisation and no new long-lived tensors: it can be captured in a CUDA graph.
        """
        self._require_causal("step")
        hidden = x_t  # (batch, d_model)
        for i, layer in enumerate(self.layers):
            hidden = hidden + layer.mixer.step(layer.norm(hidden), cache.layer(i))
        cache.seqlen_offset += 1
        return self.norm_f(hidden)

    def forward_chunked(
        self, x: torch.Tensor, chunk_len: int, cache: InferenceCache | None = None
    ) -> torch.Tensor:
        """forward(x) computed chunk by chunk with carried conv and SSM states (causal only).

        Working memory scales with ``chunk_len``, not with L (run under ``torch.inference_mode()`` to
        keep no activations for autograd). x (batch, L, d_model) -> (batch, L, d_model). With a
        ``cache``, x continues the tokens already in it and the cache is advanced, so `step` can follow.
        """
        self._require_causal("forward_chunked")
        if chunk_len < 1:
            raise ValueError(f"MambaEncoder.forward_chunked: chunk_len must be >= 1, got {chunk_len}")
        if cache is None:
            cache = self.allocate_inference_cache(x.shape[0], dtype=x.dtype, device=x.device)
        outputs = []
        for start in range(0, x.shape[1], chunk_len):
            hidden = x[:, start : start + chunk_len]  # (batch, chunk, d_model)
            for i, layer in enumerate(self.layers):
                out, state = layer.mixer(layer.norm(hidden), cache.layer(i))
                cache.set_layer(i, state)
                hidden = hidden + out
            cache.seqlen_offset += hidden.shape[1]
            outputs.append(self.norm_f(hidden))
        return torch.cat(outputs, dim=1) if outputs else self.norm_f(x)

    # Checkpoints.

    def save_pretrained(self, directory: str | os.PathLike) -> None:
        """Write ``config.json`` + ``model.safetensors`` into ``directory`` (atomically, no pickle)."""
        ckpt.save_pretrained(self, directory, self.config)

    @classmethod
    def from_pretrained(
        cls, directory: str | os.PathLike, device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> MambaEncoder:
        """Load a model written by `save_pretrained`, in eval mode."""
        return ckpt.from_pretrained(cls, directory, device=device, dtype=dtype)
