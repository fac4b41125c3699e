"""Writing FASTA test files: plain, gzip or bgzip."""

import gzip
from pathlib import Path

from Bio import bgzf


def write(path: Path, data: bytes | str, compression: str = "plain") -> Path:
    """data at path, compressed as asked ("plain", "gzip" or "bgzip")."""
    data = data.encode() if isinstance(data, str) else data
    if compression == "gzip":
        path.write_bytes(gzip.compress(data))
    elif compression == "bgzip":
        with bgzf.BgzfWriter(str(path), "wb") as handle:
            handle.write(data)
    else:
        path.write_bytes(data)
    return path
