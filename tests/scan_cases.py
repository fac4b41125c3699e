"""Random selective-scan problems shared by the kernel tests."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
INPUT_NAMES = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias", "initial_state")


@dataclass(frozen=True)
class Case:
    batch: int = 2
    dim: int = 6
    length: int = 37
    d_state: int = 5
    groups: int | None = None  # None: B and C shared, (batch, N, L)
    has_D: bool = True
    has_z: bool = True
    has_bias: bool = True
    softplus: bool = True
    reverse: bool = False
    has_h0: bool = True

    def inputs(self, seed: int = 0, dtype=torch.float64, device=DEVICE) -> dict[str, torch.Tensor | None]:
        g = torch.Generator().manual_seed(seed)

        def rand(*shape, scale=1.0):
            return torch.randn(*shape, generator=g, dtype=torch.float64) * scale

        b, d, L, N = self.batch, self.dim, self.length, self.d_state
        bc = (b, N, L) if self.groups is None else (b, self.groups, N, L)
        values = dict(
            u=rand(b, d, L),
            # Without softplus delta must stay positive for a decaying state.
            delta=rand(b, d, L, scale=0.5) if self.softplus else torch.rand(b, d, L, generator=g, dtype=torch.float64),
            A=-torch.rand(d, N, generator=g, dtype=torch.float64) * 2 - 0.1,
            B=rand(*bc),
            C=rand(*bc),
            D=rand(d) if self.has_D else None,
            z=rand(b, d, L) if self.has_z else None,
            delta_bias=rand(d, scale=0.5) if self.has_bias else None,
            initial_state=rand(b, d, N) if self.has_h0 else None,
        )
        return {k: (v.to(device=device, dtype=dtype).requires_grad_() if v is not None else None)
                for k, v in values.items()}


def run(case: Case, inputs: dict, backend: str, **extra):
    """Outputs, last state and the gradient of a fixed random loss w.r.t. every given input."""
    y, last = __import__("seqmamba.kernels", fromlist=["selective_scan"]).selective_scan(
        **inputs, delta_softplus=case.softplus, return_last_state=True, reverse=case.reverse,
        backend=backend, **extra,
    )
    g = torch.Generator().manual_seed(123)
    wy = torch.randn(y.shape, generator=g, dtype=torch.float64).to(y.device)
    ws = torch.randn(last.shape, generator=g, dtype=torch.float64).to(y.device)
    loss = (y.double() * wy).sum() + (last.double() * ws).sum()
    names = [k for k, v in inputs.items() if v is not None]
    grads = torch.autograd.grad(loss, [inputs[k] for k in names])
    return {"y": y, "last": last, **{f"d{k}": gr for k, gr in zip(names, grads)}}


def assert_close(expected: dict, got: dict, rtol: float, atol: float, label: str = "") -> None:
    assert expected.keys() == got.keys()
    for key in expected:
        e, o = expected[key].double(), got[key].double()
        assert e.shape == o.shape, f"{label} {key}: shape {tuple(o.shape)} != {tuple(e.shape)}"
        scale = e.abs().max().clamp_min(1.0).item()
        err = (e - o).abs().max().item() if e.numel() else 0.0
        assert err <= atol * scale + rtol * scale, f"{label} {key}: max error {err:.3e} (scale {scale:.2e})"


def tuning(**knobs):
    """The tuning a Triton call on DEVICE takes by default, with these knobs changed."""
    from seqmamba.kernels.scan_tuning import preset

    return dataclasses.replace(preset(DEVICE), **knobs)
