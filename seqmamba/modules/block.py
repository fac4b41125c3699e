"""`MambaBlock`: the Mamba mixer (in_proj -> conv -> SiLU -> selective SSM -> gate -> out_proj), causal."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..config import MambaConfig
from .channels import channels_first_linear, channels_last_linear, gemm_input
from .ssm import SelectiveSSM


def ssm_kwargs(config: MambaConfig) -> dict:
    """The `SelectiveSSM` arguments a config implies."""
    return dict(
        d_inner=config.d_inner,
        d_state=config.d_state,
        dt_rank=config.resolved_dt_rank,
        d_conv=config.d_conv,
        conv_bias=config.conv_bias,
        dt_min=config.dt_min,
        dt_max=config.dt_max,
        dt_init_floor=config.dt_init_floor,
    )


def project_in(linear: nn.Linear, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """hidden (batch, L, d_model) -> x, z (batch, d_inner, L), channels-first as the conv and scan want.

    Two batched GEMMs write x and z each contiguous, with no copy of hidden or of the result (see
    `channels_first_linear`); one GEMM into (batch, 2*d_inner, L) would leave z strided over the batch.
    Under autocast hidden is cast once for both (one cast kept for the backward, not two).
    """
    w_x, w_z = linear.weight.chunk(2, dim=0)  # (d_inner, d_model) each
    b_x, b_z = linear.bias.chunk(2) if linear.bias is not None else (None, None)
    hidden_t = gemm_input(hidden).transpose(1, 2)  # (batch, d_model, L), a view
    return channels_first_linear(w_x, hidden_t, b_x), channels_first_linear(w_z, hidden_t, b_z)


class MambaBlock(nn.Module):
    """The causal Mamba mixer of the Mamba paper, (batch, L, d_model) -> (batch, L, d_model).

    in_proj to (x, z) with d_inner = expand * d_model; depthwise causal conv1d; SiLU; x_proj to
    (dt, B, C); dt_proj with softplus; selective scan; gate with SiLU(z); out_proj. It has no norm and
    no residual: `MambaEncoder` wraps it in pre-norm residual layers.

    Example:
        >>> block = MambaBlock(d_model=16, d_state=4)
        >>> block(torch.randn(2, 10, 16)).shape
        torch.Size([2, 10, 16])
    """

    def __init__(
        self,
        d_model: int,
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 2,
        dt_rank: int | str = "auto",
        bias: bool = False,
        conv_bias: bool = True,
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
        dt_init_floor: float = 1e-4,
    ) -> None:
        super().__init__()
        config = MambaConfig(
            d_model=d_model, n_layers=1, d_state=d_state, d_conv=d_conv, expand=expand, dt_rank=dt_rank,
            bias=bias, conv_bias=conv_bias, dt_min=dt_min, dt_max=dt_max, dt_init_floor=dt_init_floor,
        )
        self.d_model, self.d_inner, self.d_state, self.d_conv = d_model, config.d_inner, d_state, d_conv
        self.in_proj = nn.Linear(d_model, 2 * config.d_inner, bias=bias)
        self.ssm = SelectiveSSM(**ssm_kwargs(config))
        self.out_proj = nn.Linear(config.d_inner, d_model, bias=bias)

    @classmethod
    def from_config(cls, config: MambaConfig) -> MambaBlock:
        return cls(
            config.d_model, config.d_state, config.d_conv, config.expand, config.dt_rank, config.bias,
            config.conv_bias, config.dt_min, config.dt_max, config.dt_init_floor,
        )

    def forward(
        self, hidden: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """hidden (batch, L, d_model) -> (batch, L, d_model).

        With ``state`` = (conv_state, ssm_state) the sequence continues earlier tokens and the new states
        are returned as well (chunked inference). ``mask`` (batch, L): 1 on real tokens; padded
        positions do not reach the real ones (see `SelectiveSSM.forward`).
        """
        x, z = project_in(self.in_proj, hidden)  # (batch, d_inner, L) each
        if state is None:
            y = self.ssm(x, z, mask=mask)  # (batch, d_inner, L)
            return channels_last_linear(self.out_proj.weight, y, self.out_proj.bias)  # (batch, L, d_model)
        y, state = self.ssm(x, z, state, mask=mask)
        return channels_last_linear(self.out_proj.weight, y, self.out_proj.bias), state

    def allocate_state(
        self, batch_size: int, dtype: torch.dtype | None = None, device: torch.device | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Zero (conv_state (batch, d_inner, d_conv), ssm_state (batch, d_inner, d_state)).

        The conv state has the weights' dtype unless ``dtype`` is given; the SSM state is float32
        (float64 for a float64 model), as the scan keeps it.
        """
        weight = self.in_proj.weight
        dtype = dtype or weight.dtype
        device = device or weight.device
        state_dtype = torch.float64 if torch.float64 in (dtype, weight.dtype) else torch.float32
        conv = torch.zeros(batch_size, self.d_inner, self.d_conv, dtype=dtype, device=device)
        ssm = torch.zeros(batch_size, self.d_inner, self.d_state, dtype=state_dtype, device=device)
        return conv, ssm

    def step(self, hidden: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """One token, hidden (batch, d_model) -> (batch, d_model); updates ``state`` in place."""
        xz = F.linear(hidden, self.in_proj.weight, self.in_proj.bias)  # (batch, 2*d_inner)
        x, z = xz.chunk(2, dim=-1)
        y = self.ssm.step(x, z, *state)  # (batch, d_inner)
        return F.linear(y, self.out_proj.weight, self.out_proj.bias)

    def rescale_out_proj(self, n_layers: int) -> None:
        """GPT-2 style: shrink out_proj by 1/sqrt(n_layers) so the residual stream's variance stays put."""
        with torch.no_grad():
            self.out_proj.weight.div_(math.sqrt(n_layers))
