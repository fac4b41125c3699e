"""Disk faults for the tests of atomic outputs (tests/datasets) and of full disks through the commands
(tests/pipelines): an ``open`` whose files fill up, and the /dev/full guard."""

import errno
import io
import os
import stat

import pytest

from seqmamba.datasets.atomic import is_special


def full_disk_after(limit: int):
    """An ``open`` for atomic.py whose files raise ENOSPC once ``limit`` bytes have been written."""
    real_open = open

    class Full(io.RawIOBase):
        def __init__(self, path, mode):
            self.raw = real_open(path, mode.replace("b", "") + "b")
            self.written = 0

        def writable(self):
            return True

        def write(self, data):
            room = limit - self.written
            if room <= 0:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            n = self.raw.write(bytes(data[:room]))
            self.written += n
            return n

        def close(self):
            self.raw.close()
            super().close()

    def fake_open(path, mode="r", *args, **kwargs):
        if "w" not in mode:
            return real_open(path, mode, *args, **kwargs)
        raw = Full(path, mode)
        buffered = io.BufferedWriter(raw, buffer_size=64)
        return buffered if "b" in mode else io.TextIOWrapper(buffered, encoding="utf-8")

    return fake_open


def require_dev_full():
    """/dev/full must be the device: a broken atomic_path would replace it (as root) for everyone."""
    if not os.path.exists("/dev/full") or not stat.S_ISCHR(os.stat("/dev/full").st_mode):
        pytest.skip("/dev/full is not a character device here")
    assert is_special("/dev/full"), "atomic.is_special must recognise /dev/full before anything writes to it"
