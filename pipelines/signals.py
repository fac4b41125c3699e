"""SIGINT and SIGTERM as a clean stop: an exception in the main thread, so every ``finally`` runs.

Python turns SIGINT into KeyboardInterrupt but lets SIGTERM (what ``kill``, batch schedulers and
container runtimes send) end the process at once, skipping the clean-up that removes temporary
files. Here both raise a `Stopped` (a KeyboardInterrupt), so the atomic writers delete their
temporary files and a training run keeps its last complete checkpoint to resume from.
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


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within the block, SIGINT raises `Stopped` and SIGTERM `Terminated` in the main thread.

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
        raise Terminated() if signum == signal.SIGTERM else Stopped()

    # A signal ignored by whoever started us (`cmd &` in a script ignores SIGINT) stays ignored.
    wanted = [s for s in (signal.SIGINT, signal.SIGTERM) if signal.getsignal(s) is not signal.SIG_IGN]
    previous = {signum: signal.signal(signum, handler) for signum in wanted}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, signal.SIG_DFL if old is None else old)  # None: set outside Python
