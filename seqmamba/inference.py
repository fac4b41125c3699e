"""Recurrent inference state for causal encoders: one (conv, SSM) state pair per layer.

The same cache serves `MambaEncoder.step` (one token at a time, O(1) per token) and
`MambaEncoder.forward_chunked` (a long input chunk by chunk), so a prompt can be consumed by chunks and
then continued token by token.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class InferenceCache:
    """Per-layer states of a causal encoder after ``seqlen_offset`` tokens.

    conv_states[i]: (batch, d_inner, d_conv), the last d_conv inputs of layer i's convolution.
    ssm_states[i]: (batch, d_inner, d_state), float32 (float64 for a float64 model).

    Example:
        >>> from seqmamba import MambaConfig, MambaEncoder
        >>> enc = MambaEncoder(MambaConfig(d_model=16, n_layers=2, d_state=4))
        >>> cache = enc.allocate_inference_cache(batch_size=3)
        >>> enc.step(torch.randn(3, 16), cache).shape, cache.seqlen_offset
        (torch.Size([3, 16]), 1)
    """

    conv_states: list[torch.Tensor] = field(default_factory=list)
    ssm_states: list[torch.Tensor] = field(default_factory=list)
    seqlen_offset: int = 0

    @property
    def batch_size(self) -> int:
        return self.conv_states[0].shape[0] if self.conv_states else 0

    def layer(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.conv_states[i], self.ssm_states[i]

    def set_layer(self, i: int, state: tuple[torch.Tensor, torch.Tensor]) -> None:
        """Store layer i's new states.

        Without autograd they are copied in place, so tensors a captured CUDA graph reads stay valid;
        with autograd they replace the old ones (an in-place write would corrupt saved tensors).
        """
        conv, ssm = state
        if torch.is_grad_enabled() and (conv.requires_grad or ssm.requires_grad):
            self.conv_states[i], self.ssm_states[i] = conv, ssm
        else:
            self.conv_states[i].copy_(conv)
            self.ssm_states[i].copy_(ssm)

    def reset(self) -> None:
        """Zero every state (a new sequence) without reallocating."""
        for t in (*self.conv_states, *self.ssm_states):
            t.zero_()
        self.seqlen_offset = 0
