"""BED regions in (0-based, half-open), read with the line of each for error messages."""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError


@dataclass(frozen=True)
class Region:
    """``[start, end)`` on ``chrom``; ``source`` and ``line`` say where it came from (for errors)."""

    chrom: str
    start: int
    end: int
    line: int = 0
    source: str = "regions"

    @property
    def where(self) -> str:
        return f"{self.source}: line {self.line}" if self.line else self.source


def read_bed(path: str | os.PathLike) -> list[Region]:
    """Regions of a BED file (3 or more tab-separated columns; gzip allowed).

    ``track``/``browser``/``#`` lines and blank lines are skipped; extra columns are ignored.
    """
    path = Path(path)
    opener = gzip.open if path.read_bytes()[:2] == b"\x1f\x8b" else open
    regions = []
    with opener(path, "rt") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip() or line.startswith(("#", "track", "browser")):
                continue
            fields = line.rstrip("\r\n").split("\t")
            if len(fields) < 3:
                raise InputError(f"{path}: line {number}: BED needs chrom, start and end separated by tabs")
            try:
                start, end = int(fields[1]), int(fields[2])
            except ValueError:
                raise InputError(f"{path}: line {number}: start and end must be integers, "
                                 f"got {fields[1]!r} and {fields[2]!r}") from None
            if start < 0 or end <= start:
                raise InputError(f"{path}: line {number}: need 0 <= start < end, got {start} and {end}")
            regions.append(Region(fields[0], start, end, number, str(path)))
    if not regions:
        raise InputError(f"{path}: no regions")
    return regions
