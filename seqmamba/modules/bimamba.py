"""`BiMambaMixer`: the bidirectional mixer of Caduceus (BiMamba), without flipped copies."""

from __future__ import annotations

import math

import torch
from torch import nn

from ..config import COMBINE_MODES, MambaConfig
from ..kernels import selective_scan_bidirectional
from ..kernels.scan_bidirectional import fuses
from .block import project_in, ssm_kwargs
from .channels import channels_first_linear, channels_last_linear, gemm_input
from .ssm import SelectiveSSM


class BiMambaMixer(nn.Module):
    """A forward and a reverse selective SSM sharing in_proj and out_proj, (batch, L, d) -> (batch, L, d).

    Both directions read the same (x, z) from the shared in_proj; each has its own conv, x_proj,
    dt_proj, A and D (as Caduceus's weight-tied BiMamba). The reverse branch uses an anti-causal conv
    and the scan's ``reverse=True``, so position t of its output summarises t..L-1. The two gated
    outputs are combined before the shared out_proj (linear, so this equals combining after it):

    - ``"add"``: y = y_fwd + y_rev;
    - ``"gate"``: y = g * y_fwd + (1 - g) * y_rev, g = sigmoid(gate_proj(hidden)) per token and channel,
      initialised to g = 0.5.

    Example:
        >>> mixer = BiMambaMixer(MambaConfig(d_model=16, n_layers=1, d_state=4, bidirectional=True))
        >>> mixer(torch.randn(2, 10, 16)).shape
        torch.Size([2, 10, 16])
    """

    def __init__(self, config: MambaConfig) -> None:
        super().__init__()
        if config.bidirectional_combine not in COMBINE_MODES:
            raise ValueError(f"BiMambaMixer: combine must be one of {COMBINE_MODES}")
        self.combine = config.bidirectional_combine
        d_inner = config.d_inner
        self.in_proj = nn.Linear(config.d_model, 2 * d_inner, bias=config.bias)
        self.ssm_fwd = SelectiveSSM(**ssm_kwargs(config), reverse=False)
        self.ssm_rev = SelectiveSSM(**ssm_kwargs(config), reverse=True)
        self.gate_proj = None
        if self.combine == "gate":
            self.gate_proj = nn.Linear(config.d_model, d_inner, bias=True)
            nn.init.zeros_(self.gate_proj.weight)  # start as the plain average of both directions
            nn.init.zeros_(self.gate_proj.bias)
        self.out_proj = nn.Linear(d_inner, config.d_model, bias=config.bias)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """hidden (batch, L, d_model) -> (batch, L, d_model); every position sees the whole sequence.

        ``mask`` (batch, L): 1 on real tokens; padded positions do not reach the real ones (see
        `SelectiveSSM.forward`).
        """
        hidden = gemm_input(hidden)  # under autocast one cast, read by in_proj's GEMMs and gate_proj alike
        x, z = project_in(self.in_proj, hidden)  # (batch, d_inner, L) each
        if fuses(x):  # both directions in one launch per pass, gated by the shared z
            y_fwd, y_rev = selective_scan_bidirectional(
                self.ssm_fwd.scan_inputs(x, mask), self.ssm_rev.scan_inputs(x, mask), z=z, delta_softplus=True,
            )
        else:  # one direction's inputs at a time: at 2^20 tokens a second set costs about 2 GB more
            y_fwd = self.ssm_fwd(x, z, mask=mask)
            y_rev = self.ssm_rev(x, z, mask=mask)
        # y_fwd, y_rev: (batch, d_inner, L), summaries of 0..t and of t..L-1
        if self.gate_proj is None:
            y = y_fwd + y_rev
        else:
            g = torch.sigmoid(project_gate(self.gate_proj, hidden))  # (batch, d_inner, L)
            y = torch.lerp(y_rev, y_fwd, g.to(y_fwd.dtype))
        return channels_last_linear(self.out_proj.weight, y, self.out_proj.bias)  # (batch, L, d_model)

    def rescale_out_proj(self, n_layers: int) -> None:
        """GPT-2 style: shrink out_proj by 1/sqrt(n_layers) so the residual stream's variance stays put."""
        with torch.no_grad():
            self.out_proj.weight.div_(math.sqrt(n_layers))


def project_gate(linear: nn.Linear, hidden: torch.Tensor) -> torch.Tensor:
    """hidden (batch, L, d_model) -> gate logits (batch, d_inner, L), channels-first."""
    return channels_first_linear(linear.weight, hidden.transpose(1, 2), linear.bias)  # (batch, d_inner, L)
