"""CPU threads for training and running small models on a machine that others share.

`cpu_threads` is the one place that picks them: the forecaster, the DNA estimators (fit and inference)
and every command's ``--threads`` go through it.

A forecaster's training step is hundreds of tiny tensor ops. With torch's default of one OpenMP
thread per core, every op ends in a barrier where the threads spin-wait for each other; when another
process holds one of the cores, each barrier waits for a time slice. Measured on this project's
2-core machine (VariateMamba, d_model 128, batch 32, the chunked scan): 47 ms per step with 2 threads
and nothing else running, 1,919 ms with 2 threads beside one busy process, 67 ms with 1 thread
beside it (docs/forecasting.md, "CPU speed", has more).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator

import torch


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def running_elsewhere(samples: int = 5, interval: float = 0.02) -> int | None:
    """How many other tasks are running right now: the kernel's count of runnable tasks
    (``/proc/loadavg``) less this reader, the fewest over a few samples (a process that keeps
    a core busy shows in all of them; our own pool threads finishing a spin do not). None where
    the count cannot be read (not Linux)."""
    counts = []
    for i in range(samples):
        try:
            with open("/proc/loadavg", encoding="ascii") as handle:
                counts.append(int(handle.read().split()[3].split("/")[0]) - 1)
        except (OSError, ValueError, IndexError):
            return None
        if i + 1 < samples:
            time.sleep(interval)
    return max(0, min(counts))


_measured: tuple[float, int | None] | None = None  # (time.monotonic(), others) of the last measurement
# Inference runs once per chunk of records or per predict call: a count this recent is used again.
INFERENCE_REUSE_S = 10.0


def auto_threads(reuse_seconds: float = 0.0) -> int:
    """torch's thread count, lowered to the cores other running tasks leave idle (at least 1).

    The count is taken once, when training starts: a process that starts later is not seen. The
    1-minute load average stands in where the runnable count cannot be read; it lags and counts
    this process's own recent work, so it errs towards fewer threads (at most ~1.5x slower on an
    idle machine, against many times slower with a thread waiting on a busy core).
    ``reuse_seconds``: a count taken less than this long ago is used again (taking one sleeps ~80 ms,
    too long to repeat for every chunk of an inference run).
    """
    global _measured
    now = time.monotonic()
    if reuse_seconds > 0 and _measured is not None and now - _measured[0] < reuse_seconds:
        others = _measured[1]
    else:
        others = running_elsewhere()
        if others is None:
            try:
                others = round(os.getloadavg()[0])
            except (AttributeError, OSError):
                others = None
        _measured = (now, others)
    if others is None:
        return torch.get_num_threads()
    return max(1, min(torch.get_num_threads(), usable_cores() - others))


@contextlib.contextmanager
def cpu_threads(n_threads: int | None, device: torch.device, reuse_seconds: float = 0.0) -> Iterator[int]:
    """Run the block with ``n_threads`` torch threads (None: :func:`auto_threads`, with ``reuse_seconds``)
    when ``device`` is the CPU; the previous count comes back afterwards. Yields the count in force."""
    before = torch.get_num_threads()
    if device.type != "cpu":
        yield before
        return
    if n_threads is not None and (isinstance(n_threads, bool) or not isinstance(n_threads, int) or n_threads < 1):
        raise ValueError(f"n_threads must be a positive integer or None, got {n_threads!r}")
    wanted = auto_threads(reuse_seconds) if n_threads is None else n_threads
    torch.set_num_threads(wanted)
    try:
        yield wanted
    finally:
        torch.set_num_threads(before)
