"""The selective SSM branch of a Mamba block: conv1d -> SiLU -> x_proj -> dt_proj -> selective scan.

One branch runs in one direction. A causal block has one; a bidirectional (BiMamba) block has a forward
and a reverse one sharing the block's in/out projections. The reverse branch uses an anti-causal
convolution and the scan's ``reverse=True``, so no activation is ever flipped.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..kernels import ScanDirection, depthwise_conv1d, selective_scan, selective_state_update
from .channels import channels_first_linear
from .recompute import active


def _inverse_softplus(x: torch.Tensor) -> torch.Tensor:
    return x + torch.log(-torch.expm1(-x))


class SelectiveSSM(nn.Module):
    """The S6 branch: (x, z) (batch, d_inner, L) from the block's in_proj -> gated y (batch, d_inner, L).

    Parameters follow the Mamba paper: S4D-real A = -(1..N) stored as ``A_log``; ``D`` = 1; dt_proj's
    bias set so that softplus(bias) is log-uniform in [dt_min, dt_max]. ``A_log`` and ``D`` carry
    ``_no_weight_decay = True`` for optimisers that group parameters.

    Example:
        >>> ssm = SelectiveSSM(d_inner=16, d_state=4, dt_rank=1)
        >>> x, z = torch.randn(2, 16, 10), torch.randn(2, 16, 10)
        >>> ssm(x, z).shape
        torch.Size([2, 16, 10])
    """

    def __init__(
        self,
        d_inner: int,
        d_state: int = 16,
        dt_rank: int = 1,
        d_conv: int = 4,
        conv_bias: bool = True,
        reverse: bool = False,
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
        dt_init_floor: float = 1e-4,
    ) -> None:
        super().__init__()
        self.d_inner, self.d_state, self.dt_rank, self.d_conv = d_inner, d_state, dt_rank, d_conv
        self.reverse = reverse
        # Padding is done in `depthwise_conv1d`, so the same module serves both directions and the cache.
        self.conv1d = nn.Conv1d(d_inner, d_inner, d_conv, groups=d_inner, bias=conv_bias)
        self.x_proj = nn.Linear(d_inner, dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(dt_rank, d_inner, bias=True)

        std = dt_rank**-0.5
        nn.init.uniform_(self.dt_proj.weight, -std, std)
        log_dt = torch.rand(d_inner) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)
        dt = torch.exp(log_dt).clamp(min=dt_init_floor)
        with torch.no_grad():
            self.dt_proj.bias.copy_(_inverse_softplus(dt))
        self.dt_proj.bias._no_reinit = True  # type: ignore[attr-defined]

        a = torch.arange(1, d_state + 1, dtype=torch.float32).repeat(d_inner, 1)  # (d_inner, N)
        self.A_log = nn.Parameter(torch.log(a))
        self.D = nn.Parameter(torch.ones(d_inner))
        self.A_log._no_weight_decay = True  # type: ignore[attr-defined]
        self.D._no_weight_decay = True  # type: ignore[attr-defined]

    def _A(self) -> torch.Tensor:
        # float32 at least: exp of a bf16 A_log would round the decay rates.
        return -torch.exp(self.A_log.to(torch.promote_types(self.A_log.dtype, torch.float32)))  # (d_inner, N)

    def _project(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (batch, d_inner, L) after conv+SiLU -> dt (batch, d_inner, L), B, C (batch, N, L)."""
        x_dbl = channels_first_linear(self.x_proj.weight, x)  # (batch, dt_rank + 2N, L)
        dt_low, B, C = torch.split(x_dbl, [self.dt_rank, self.d_state, self.d_state], dim=1)
        dt = channels_first_linear(self.dt_proj.weight, dt_low)  # (batch, d_inner, L); bias goes to the scan
        return dt, B, C  # views of x_dbl: the scan reads them where they lie, no copies

    def scan_inputs(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> ScanDirection:
        """The scan's inputs for a whole sequence x (batch, d_inner, L): conv, SiLU and the projections
        (see `forward` for ``mask``). A bidirectional block hands both branches' to one fused scan."""
        keep = None if mask is None else mask.to(x.dtype)[:, None, :]  # (batch, 1, L)
        if keep is not None:
            x = x * keep
        xc = self._conv(x, keep)  # (batch, d_inner, L)
        recompute = active()
        if recompute is None:
            dt, B, C = self._project(xc)
        else:  # xc and dt are not kept for the backward, which makes them again from x (kept by the conv)
            x_kept = x.detach()

            def again() -> tuple[torch.Tensor, torch.Tensor]:
                xc = self._conv(x_kept, keep)
                return xc, self._project(xc)[0]

            recompute.register(again, xc)  # registered before x_proj's GEMM saves it
            dt, B, C = self._project(xc)
            recompute.register(again, xc, dt)
        return ScanDirection(xc, dt, self._A(), B, C, D=self.D, delta_bias=self.dt_proj.bias)

    def _conv(self, x: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
        """conv + SiLU in one pass on a GPU; causal, or anti-causal for the reverse branch; padding kept zero."""
        xc = depthwise_conv1d(x, self.conv1d.weight, self.conv1d.bias, self.reverse, "silu")  # (batch, d_inner, L)
        return xc if keep is None else xc * keep  # the conv's bias alone would make a padded input non-zero

    def forward(
        self,
        x: torch.Tensor,
        z: torch.Tensor,
        state: tuple[torch.Tensor, torch.Tensor] | None = None,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Run the branch over a whole sequence (x, z: (batch, d_inner, L)).

        With ``state`` = (conv_state (batch, d_inner, d_conv), ssm_state (batch, d_inner, N)) from
        earlier tokens (causal branch only), the sequence continues from there and the states after its
        last token are returned too: ``(y, (conv_state, ssm_state))``.

        ``mask`` (batch, L), 1 on real tokens, 0 on padding (at either end of a row): padded positions
        then feed nothing to the conv or the scan, so real positions get exactly what the row alone would
        give them. With a zero input the state passes a padded run as zero (or only decays), and the
        conv sees zeros there, as it does beyond the sequence's ends.
        """
        if state is None:
            return selective_scan(**self.scan_inputs(x, mask)._asdict(), z=z, delta_softplus=True,
                                  reverse=self.reverse)
        if self.reverse:
            raise ValueError("SelectiveSSM: a carried state only makes sense for the causal direction")
        if mask is not None:
            raise ValueError("SelectiveSSM: a padding mask with a carried state is not supported")
        conv_state, ssm_state = state
        full = torch.cat([conv_state.to(x.dtype), x], dim=-1)  # (batch, d_inner, d_conv + L)
        # The cache keeps the last d_conv inputs (what `step` needs); the conv reads the last d_conv - 1.
        xc = F.conv1d(full[..., 1:], self.conv1d.weight, self.conv1d.bias, groups=self.d_inner)
        xc = F.silu(xc)  # (batch, d_inner, L)
        dt, B, C = self._project(xc)
        y, last = selective_scan(
            xc, dt, self._A(), B, C, D=self.D, z=z, delta_bias=self.dt_proj.bias, delta_softplus=True,
            return_last_state=True, initial_state=ssm_state,
        )
        return y, (full[..., -self.d_conv :].to(conv_state.dtype), last)

    def step(
        self, x: torch.Tensor, z: torch.Tensor, conv_state: torch.Tensor, ssm_state: torch.Tensor
    ) -> torch.Tensor:
        """One token (x, z: (batch, d_inner)); updates conv_state and ssm_state in place, returns y."""
        if self.reverse:
            raise ValueError("SelectiveSSM: the reverse direction cannot run one token at a time")
        conv_state.copy_(torch.roll(conv_state, shifts=-1, dims=-1))
        conv_state[:, :, -1] = x
        xc = (conv_state * self.conv1d.weight[:, 0, :]).sum(-1)  # (batch, d_inner)
        if self.conv1d.bias is not None:
            xc = xc + self.conv1d.bias
        xc = F.silu(xc).to(x.dtype)
        x_dbl = F.linear(xc, self.x_proj.weight)  # (batch, dt_rank + 2N)
        dt_low, B, C = torch.split(x_dbl, [self.dt_rank, self.d_state, self.d_state], dim=-1)
        dt = F.linear(dt_low, self.dt_proj.weight)  # (batch, d_inner)
        return selective_state_update(
            ssm_state, xc, dt, self._A(), B, C, D=self.D, z=z, dt_bias=self.dt_proj.bias, dt_softplus=True
        )
