"""The training progress bar: tqdm on stderr with loss, learning rate, throughput and ETA."""

from __future__ import annotations

import sys
import time

from tqdm import tqdm


class TrainProgress:
    """One bar over optimizer steps for the whole run; silent when ``disable`` (quiet, or not rank 0).

    Example:
        >>> bar = TrainProgress(total=10, initial=0, disable=True)
        >>> bar.step(loss=0.5, lr=1e-3, tokens=512)
        >>> bar.close()
    """

    def __init__(self, total: int | None, initial: int = 0, disable: bool = False) -> None:
        # Away from a terminal (batch job logs) every refresh is a new line: refresh rarely there.
        interactive = sys.stderr.isatty()
        self.bar = tqdm(total=total, initial=initial, desc="train", unit="step", file=sys.stderr,
                        disable=disable, dynamic_ncols=True, mininterval=0.1 if interactive else 30.0)
        self._tokens = 0
        self._since = time.perf_counter()

    def set_epoch(self, epoch: int) -> None:
        self.bar.set_description(f"epoch {epoch}", refresh=False)

    def step(self, loss: float, lr: float, tokens: int) -> None:
        self._tokens += tokens
        elapsed = time.perf_counter() - self._since
        rate = self._tokens / elapsed if elapsed > 0 else 0.0
        self.bar.set_postfix(loss=f"{loss:.4g}", lr=f"{lr:.2e}", tok_s=f"{rate:,.0f}", refresh=False)
        self.bar.update(1)

    def write(self, message: str) -> None:
        """A line above the bar (evaluation results)."""
        if not self.bar.disable:
            self.bar.write(message, file=sys.stderr)

    def close(self) -> None:
        self.bar.close()
