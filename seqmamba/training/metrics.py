"""``metrics.jsonl``: one JSON object per line, appended as training goes."""

from __future__ import annotations

import contextlib
import json
import math
import os
from pathlib import Path
from typing import Any

from ..errors import naming_output


def _clean(value: Any) -> Any:
    # JSON has no NaN or infinity; null keeps the line readable by every JSON parser.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class MetricsWriter:
    """Appends records to ``path`` (one JSON object per line), flushed and fsynced per record.

    ``truncate(offset)`` drops lines written after a checkpoint, so a resumed run does not repeat them.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "metrics.jsonl"
        >>> writer = MetricsWriter(path)
        >>> writer.write({"event": "epoch", "epoch": 0, "train_loss": 0.5})
        >>> path.read_text()
        '{"event": "epoch", "epoch": 0, "train_loss": 0.5}\\n'
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def offset(self) -> int:
        """Bytes written so far."""
        return self.path.stat().st_size if self.path.exists() else 0

    def write(self, record: dict[str, Any]) -> None:
        """Append one line; on a failure (a full disk) the file is cut back to its last whole line."""
        line = json.dumps({k: _clean(v) for k, v in record.items()}, allow_nan=False)
        before = self.offset()
        with naming_output(self.path):
            try:
                with open(self.path, "a", encoding="utf-8") as f:
                    f.write(line + "\n")
                    f.flush()
                    os.fsync(f.fileno())
            except OSError:
                with contextlib.suppress(OSError):  # truncating frees space: it works on a full disk
                    self.truncate(before)
                raise

    def truncate(self, offset: int) -> None:
        if self.path.exists() and self.path.stat().st_size > offset:
            with open(self.path, "r+b") as f:
                f.truncate(offset)


def read_metrics(path: str | os.PathLike) -> list[dict[str, Any]]:
    """All records of a ``metrics.jsonl``."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
