"""`seqmamba selfcheck`: every scan backend against the reference on a small random problem."""

from __future__ import annotations

import click
import torch

from ..kernels import selective_scan, selective_state_update, selective_state_update_ref
from ..kernels.scan import triton_usable


def _problem(device: torch.device, seed: int):
    generator = torch.Generator().manual_seed(seed)
    batch, dim, length, d_state, groups = 2, 8, 67, 4, 2

    def rand(*shape, scale=1.0):
        return (torch.randn(*shape, generator=generator, dtype=torch.float64) * scale).to(device)

    inputs = dict(
        u=rand(batch, dim, length),
        delta=rand(batch, dim, length, scale=0.5),
        A=-torch.rand(dim, d_state, generator=generator, dtype=torch.float64).to(device) * 2,
        B=rand(batch, groups, d_state, length),
        C=rand(batch, groups, d_state, length),
        D=rand(dim),
        z=rand(batch, dim, length),
        delta_bias=rand(dim),
        initial_state=rand(batch, dim, d_state),
    )
    return {k: v.requires_grad_() for k, v in inputs.items()}


def check_backend(backend: str, device: torch.device, dtype: torch.dtype, seed: int = 0) -> float:
    """Largest absolute difference to the float64 reference over outputs, last state and gradients."""
    worst = 0.0
    for reverse in (False, True):
        ref_in = _problem(device, seed)
        test_in = {k: v.detach().to(dtype).requires_grad_() for k, v in ref_in.items()}
        results = []
        for inputs, name in ((ref_in, "reference"), (test_in, backend)):
            y, last = selective_scan(
                **inputs, delta_softplus=True, return_last_state=True, reverse=reverse, backend=name
            )
            weights = torch.linspace(-1, 1, y.numel(), device=device, dtype=torch.float64).view_as(y)
            loss = (y.double() * weights).sum() + last.double().square().sum()
            grads = torch.autograd.grad(loss, list(inputs.values()))
            results.append([y.double(), last.double(), *[g.double() for g in grads]])
        for expected, got in zip(*results):
            scale = expected.abs().max().clamp_min(1.0)
            worst = max(worst, ((expected - got).abs().max() / scale).item())
    return worst


def check_state_update(device: torch.device) -> float:
    """One recurrent step against the torch one."""
    generator = torch.Generator().manual_seed(1)
    batch, dim, d_state = 3, 8, 4
    state = torch.randn(batch, dim, d_state, generator=generator).to(device)
    args = [torch.randn(*s, generator=generator).to(device) for s in
            ((batch, dim), (batch, dim), (dim, d_state), (batch, d_state), (batch, d_state))]
    args[2] = -args[2].abs()
    expected_state = state.clone()
    expected = selective_state_update_ref(expected_state, *args, dt_softplus=True)
    got = selective_state_update(state, *args, dt_softplus=True)
    return max((expected - got).abs().max().item(), (expected_state - state).abs().max().item())


@click.command()
@click.option("--device", default="auto", show_default=True, help="cpu, cuda, cuda:N or auto.")
def selfcheck(device: str) -> None:
    """Check every scan backend against the reference scan on a small random problem.

    \b
    Examples:
      seqmamba selfcheck
      seqmamba selfcheck --device cuda
    """
    dev = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else
                       ("cpu" if device == "auto" else device))
    rows = [("torch", torch.float64, 1e-9), ("torch", torch.float32, 1e-4)]
    if triton_usable(dev):
        rows += [("triton", torch.float32, 1e-4), ("triton", torch.bfloat16, 5e-2)]
    failed = False
    click.echo(f"{'backend':<10}{'dtype':<10}{'max rel. error':>16}  status   (device {dev})")
    for backend, dtype, tolerance in rows:
        error = check_backend(backend, dev, dtype)
        ok = error <= tolerance
        failed |= not ok
        click.echo(f"{backend:<10}{str(dtype).removeprefix('torch.'):<10}{error:>16.2e}  {'ok' if ok else 'FAIL'}")
    error = check_state_update(dev)
    ok = error <= 1e-5
    failed |= not ok
    click.echo(f"{'step':<10}{'float32':<10}{error:>16.2e}  {'ok' if ok else 'FAIL'}")
    if failed:
        raise click.ClickException("a scan backend disagrees with the reference")
