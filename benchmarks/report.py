"""A benchmark's markdown table, printed row by row and rewritten to ``--out`` after each row, so that a run cut
short (a device call's time limit) keeps the rows it measured.

Example:
    >>> table = MarkdownTable(None, "Device: CPU.", ["what", "ms"], "|---|---:|")
    Device: CPU.
    <BLANKLINE>
    | what | ms |
    |---|---:|
    >>> table.add("forward", "1.25")
    | forward | 1.25 |
"""

from __future__ import annotations

from pathlib import Path


class MarkdownTable:
    def __init__(self, out: str | Path | None, preamble: str, header: list[str], align: str) -> None:
        self.out = Path(out) if out else None
        self.lines = [preamble, "", "| " + " | ".join(header) + " |", align]
        print("\n".join(self.lines), flush=True)
        self._write()

    def add(self, *cells: object) -> None:
        line = "| " + " | ".join(str(c) for c in cells) + " |"
        self.lines.append(line)
        print(line, flush=True)
        self._write()

    def _write(self) -> None:
        if self.out is not None:
            self.out.write_text("\n".join(self.lines) + "\n")
