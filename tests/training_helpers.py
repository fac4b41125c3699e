"""Shared helpers of the training tests."""

import torch

from seqmamba.training import Callback


def weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_same_weights(a: dict, b: dict, atol: float = 0.0) -> None:
    assert a.keys() == b.keys()
    for name in a:
        if atol == 0.0:
            assert torch.equal(a[name], b[name]), f"{name} differs by {(a[name] - b[name]).abs().max()}"
        else:
            torch.testing.assert_close(a[name], b[name], atol=atol, rtol=0, msg=name)


class Crash(RuntimeError):
    pass


class CrashAt(Callback):
    """Raises after optimizer step ``step``: a kill at that moment, as far as the run directory knows."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, trainer) -> None:
        if trainer.state.global_step == self.step:
            raise Crash(f"killed after step {self.step}")


# Wall-clock fields differ between any two runs.
CLOCK = ("time", "seconds", "samples_per_s", "tokens_per_s")


def without_clock(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in CLOCK} for r in records]


def step_seeing_fusion():
    """A GraphedStep of a linear model whose loss notes, each step, whether a bidirectional scan would fuse its
    two directions there (`kernels.scan_bidirectional.fuses` on the Triton backend): (step, the notes)."""
    import contextlib

    from seqmamba.kernels.scan_bidirectional import fuses
    from seqmamba.training.graphs import GraphedStep

    seen: list[bool] = []

    def loss(m, b):
        seen.append(fuses(b, "triton"))
        return m(b).square().mean()

    model = torch.nn.Linear(2, 1)
    return GraphedStep(model, loss, torch.optim.AdamW(model.parameters(), lr=0.1), 1.0, contextlib.nullcontext), seen

