"""Progress on stderr for people: a bar on a terminal, periodic lines in logs, nothing with --quiet."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator

from tqdm import tqdm

from ..datasets.fasta_scan import input_name, is_stream


@contextlib.contextmanager
def file_progress(
    path: str | os.PathLike, quiet: bool, what: str = "reading"
) -> Iterator[Callable[[int], None]]:
    """Yields a callback taking the bytes read so far; the bar closes on exit (no total for a stream)."""
    disable = quiet or not sys.stderr.isatty()
    total = None if is_stream(path) else os.path.getsize(path)
    with tqdm(total=total, unit="B", unit_scale=True, desc=f"{what} {os.path.basename(input_name(path))}",
              file=sys.stderr, disable=disable, leave=False) as bar:
        def update(done: int) -> None:
            bar.update(done - bar.n)

        yield update


class RecordProgress:
    """Records and bases done of a known total (None: streamed input, counted without a total), on stderr.

    On a terminal: a tqdm bar over bases. Elsewhere (a log file, a batch job): one line every
    ``interval`` seconds, e.g. ``classifying: 3,000/10,000 records, 3.3/11.0 Mbp (30%), 12 s``, since a
    redrawn bar would fill a log with carriage returns. Nothing with ``quiet``.

    Example:
        >>> import io
        >>> out = io.StringIO()
        >>> progress = RecordProgress("classifying", 2, 1_000, quiet=False, interval=0, stream=out, tty=False)
        >>> progress.bases(600); progress.records(1); progress.close()
        >>> out.getvalue().splitlines()[-1].split(", ")[:2]
        ['classifying: 1/2 records', '0.0006/0.001 Mbp (60%)']
    """

    def __init__(self, what: str, total_records: int | None, total_bases: int | None, quiet: bool,
                 interval: float = 30.0,
                 stream=None, tty: bool | None = None) -> None:
        self.what, self.total_records, self.total_bases = what, total_records, total_bases
        self.stream = stream if stream is not None else sys.stderr
        self.quiet, self.interval = quiet, interval
        self.tty = self.stream.isatty() if tty is None else tty
        self.done_records = self.done_bases = 0
        self.started = self.last_line = time.monotonic()
        self.bar = None
        if not quiet and self.tty:
            self.bar = tqdm(total=total_bases, unit="bp", unit_scale=True, desc=what, file=self.stream, leave=False)

    def bases(self, n: int) -> None:
        self.done_bases += n
        if self.bar is not None:
            self.bar.update(n)

    def records(self, n: int) -> None:
        self.done_records += n
        if self.bar is not None:
            self.bar.set_postfix_str(f"{self.done_records:,}{self._of(self.total_records)} records", refresh=False)
        elif not self.quiet and time.monotonic() - self.last_line >= self.interval:
            self._line()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def _line(self) -> None:
        self.last_line = time.monotonic()
        if self.total_bases is None:
            bases = f"{self.done_bases / 1e6:.3g} Mbp"
        else:
            share = self.done_bases / self.total_bases if self.total_bases else 1.0
            bases = f"{self.done_bases / 1e6:.3g}/{self.total_bases / 1e6:.3g} Mbp ({share:.0%})"
        self.stream.write(f"{self.what}: {self.done_records:,}{self._of(self.total_records)} records, {bases}, "
                          f"{self.last_line - self.started:.0f} s\n")
        self.stream.flush()

    @staticmethod
    def _of(total: int | None) -> str:
        return "" if total is None else f"/{total:,}"
