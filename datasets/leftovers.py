"""Temporary files and folders named after the process that made them, so a later run can sweep up
what a killed one (SIGKILL, the OOM killer, a power cut) left behind.

A temporary beside an output is named ``.<output>.<host>-<pid>.<random><suffix>``. Before writing the
same output again, `sweep` removes the ones whose process is gone: same host, and no process with that
pid. Another host's, or a live process's (a run writing the same output right now), are left alone.
POSIX only: elsewhere nothing is swept (Windows has no harmless "is this pid alive" probe). It trusts
a host name to stand for one process namespace: containers that share a file system *and* a host name
could see each other's live temporaries as dead.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
from pathlib import Path


def owner_tag() -> str:
    """``<host>-<pid>`` of this process, in characters safe for any file name."""
    host = re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:32] or "host"
    return f"{host}-{os.getpid()}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    return True


def sweep(directory: Path, prefix: str, suffix: str = "") -> list[Path]:
    """Remove ``<prefix><host>-<pid>.*<suffix>`` entries of ``directory`` left by dead processes of this
    host; returns what was removed. Errors (a vanished entry, no permission) skip the entry."""
    if os.name != "posix":
        return []
    host, _ = owner_tag().rsplit("-", 1)
    owned = re.compile(re.escape(prefix + host + "-") + r"(\d+)\.")
    removed = []
    try:
        entries = list(directory.iterdir())
    except OSError:
        return []
    for entry in entries:
        match = owned.match(entry.name)
        if not match or not entry.name.endswith(suffix) or _alive(int(match.group(1))):
            continue
        try:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        except OSError:
            continue
        removed.append(entry)
    return removed
