"""Small JSON state files (tokenizer, scaler, estimator records): atomic writes, located read errors."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .datasets.atomic import atomic_output
from .errors import InputError


def write_json(path: str | os.PathLike, state: Any) -> None:
    """Write ``state`` as indented JSON; a half-written file never replaces a good one."""
    with atomic_output(path) as handle:
        handle.write(json.dumps(state, indent=2) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    """The JSON in ``path``; InputError naming the file (and line, column) if it is missing or invalid."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(f"{path}: line {error.lineno}, column {error.colno}: invalid JSON: {error.msg}") from None
