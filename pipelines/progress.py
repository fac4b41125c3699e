"""A byte progress bar on stderr, shown only to people (a TTY) and not with --quiet."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator

from tqdm import tqdm


@contextlib.contextmanager
def file_progress(
    path: str | os.PathLike, quiet: bool, what: str = "reading"
) -> Iterator[Callable[[int], None]]:
    """Yields a callback taking the bytes read so far; the bar closes on exit."""
    disable = quiet or not sys.stderr.isatty()
    total = os.path.getsize(path)
    with tqdm(total=total, unit="B", unit_scale=True, desc=f"{what} {os.path.basename(path)}",
              file=sys.stderr, disable=disable, leave=False) as bar:
        def update(done: int) -> None:
            bar.update(done - bar.n)

        yield update
