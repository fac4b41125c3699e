"""SIGINT, SIGTERM and SIGHUP as a clean stop: an exception in the main thread, so every ``finally`` runs.

Python turns SIGINT into KeyboardInterrupt but lets SIGTERM (what ``kill``, batch schedulers and
container runtimes send) and SIGHUP (a closed terminal or ssh session) end the process at once,
skipping the clean-up that removes temporary files. Here all three raise a `Stopped` (a
KeyboardInterrupt), so the atomic writers delete their temporary files and a training run keeps its
last complete checkpoint to resume from.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator


class Stopped(KeyboardInterrupt):
    """The run was stopped by a signal; ``exit_code`` follows the shell's 128 + signal number."""

    message = "Interrupted"
    exit_code = 128 + signal.SIGINT  # 130


class Terminated(Stopped):
    message = "Terminated"
    exit_code = 128 + signal.SIGTERM  # 143


class HungUp(Stopped):
    message = "Hangup"
    exit_code = 129  # 128 + SIGHUP (1), which Windows lacks


# The signals handled, and what each raises (SIGHUP only where the platform has it).
_RAISES = {signal.SIGINT: Stopped, signal.SIGTERM: Terminated}
if hasattr(signal, "SIGHUP"):
    _RAISES[signal.SIGHUP] = HungUp


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within the block, SIGINT raises `Stopped`, SIGTERM `Terminated` and SIGHUP `HungUp` in the main thread.

    Only the first signal raises: a second one, while ``finally`` blocks clean up, is ignored so that
    the clean-up itself is not cut short (SIGKILL still ends the process at once). The previous
    handlers come back on exit; a signal that was ignored when the block began stays ignored.
    Outside the main thread (where Python allows no handlers) it does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    stopping = False

    def handler(signum: int, frame: object) -> None:
        nonlocal stopping
        if stopping:
            return
        stopping = True
        raise _RAISES[signum]()

    # A signal ignored by whoever started us (`cmd &` in a script ignores SIGINT) stays ignored.
    wanted = [s for s in _RAISES if signal.getsignal(s) is not signal.SIG_IGN]
    previous = {signum: signal.signal(signum, handler) for signum in wanted}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, signal.SIG_DFL if old is None else old)  # None: set outside Python
