"""Atomic outputs under faults: a full disk mid-write, at fsync or at close; devices and pipes as targets.

Every failure must be an `OutputError` naming the output, leave no temporary file, and leave a file the
user already had under that name byte for byte as it was.
"""

import errno
import os
import stat
import threading

import pytest
import torch
from fault_helpers import full_disk_after, require_dev_full

from seqmamba.checkpoint import save_tensors
from seqmamba.datasets import atomic
from seqmamba.datasets.atomic import atomic_output, atomic_path
from seqmamba.errors import InputError, OutputError
from seqmamba.training.metrics import MetricsWriter

PRECIOUS = b"the user's file, which must survive\n"


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp") or p.name.startswith("."))


def test_full_disk_mid_write_keeps_the_old_file(tmp_path, monkeypatch):
    out = tmp_path / "out.tsv"
    out.write_bytes(PRECIOUS)
    monkeypatch.setattr(atomic, "open", full_disk_after(100), raising=False)
    with pytest.raises(OutputError) as caught, atomic_output(out) as handle:
        for i in range(1000):
            handle.write(f"row {i}\t{'x' * 20}\n")
    error = caught.value
    assert error.errno == errno.ENOSPC and error.path == str(out)
    assert str(error).startswith(f"{out}: no space left on device")
    assert out.read_bytes() == PRECIOUS
    assert leftovers(tmp_path) == []


def test_full_disk_at_close_is_reported_too(tmp_path, monkeypatch):
    # Small writes sit in the buffer; the disk is found full only when close() flushes it.
    monkeypatch.setattr(atomic, "open", full_disk_after(0), raising=False)
    out = tmp_path / "out.txt"
    with pytest.raises(OutputError, match="no space left"), atomic_output(out) as handle:
        handle.write("ab")
    assert not out.exists() and leftovers(tmp_path) == []


def test_full_disk_at_fsync_of_a_tool_written_file(tmp_path, monkeypatch):
    out = tmp_path / "model.safetensors"
    out.write_bytes(PRECIOUS)

    def no_space(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(OutputError, match="no space left") as caught, atomic_path(out) as tmp:
        save_tensors({"w": torch.zeros(4)}, tmp)
    assert caught.value.path == str(out)
    assert out.read_bytes() == PRECIOUS
    assert leftovers(tmp_path) == []


def test_errors_of_the_block_itself_pass_unchanged(tmp_path):
    # Reading an input inside the block: its errors are not output errors.
    with pytest.raises(FileNotFoundError), atomic_output(tmp_path / "out.txt") as handle:
        handle.write("x")
        open(tmp_path / "missing-input.fa").close()
    with pytest.raises(InputError), atomic_output(tmp_path / "out.txt"):
        raise InputError("in.fa: line 3: bad")
    assert leftovers(tmp_path) == [] and not (tmp_path / "out.txt").exists()


def test_missing_directory_is_one_clear_error(tmp_path):
    with pytest.raises(OutputError, match="no such directory") as caught, \
            atomic_output(tmp_path / "nodir" / "out.tsv") as handle:
        handle.write("x")
    assert caught.value.errno == errno.ENOENT


def test_a_symbolic_link_keeps_pointing_at_the_new_file(tmp_path):
    real = tmp_path / "real.txt"
    real.write_text("old\n")
    link = tmp_path / "link.txt"
    link.symlink_to(real)
    with atomic_output(link) as handle:
        handle.write("new\n")
    assert link.is_symlink() and real.read_text() == "new\n"


def read_fifo(path, into):
    with open(path, "rb") as fifo:
        into.append(fifo.read())


@pytest.mark.parametrize("use_path", [False, True], ids=["atomic_output", "atomic_path+safetensors"])
def test_a_named_pipe_is_written_in_place_not_replaced(tmp_path, use_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=read_fifo, args=(fifo, got), daemon=True)
    reader.start()
    try:
        if use_path:
            # safetensors renames its own temporary file over the path it is given: never the pipe.
            with atomic_path(fifo) as tmp:
                save_tensors({"w": torch.ones(3)}, tmp)
        else:
            with atomic_output(fifo) as handle:
                handle.write("through the pipe\n")
    finally:
        reader.join(timeout=30)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode), "the pipe was replaced by a regular file"
    if use_path:
        assert len(got) == 1 and got[0][8:9] == b"{"  # a safetensors file: header length, then its JSON
    else:
        assert got == [b"through the pipe\n"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]


@pytest.mark.parametrize("use_path", [False, True], ids=["atomic_output", "atomic_path"])
def test_dev_full_gives_no_space_and_stays_a_device(use_path):
    require_dev_full()
    with pytest.raises(OutputError, match=r"^/dev/full: no space left on device") as caught:
        if use_path:
            with atomic_path("/dev/full") as tmp:
                tmp.write_bytes(b"x" * 10_000)
        else:
            with atomic_output("/dev/full") as handle:
                handle.write("x" * 10_000)
    assert caught.value.errno == errno.ENOSPC
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


def test_metrics_line_is_rolled_back_on_a_full_disk(tmp_path, monkeypatch):
    writer = MetricsWriter(tmp_path / "metrics.jsonl")
    writer.write({"event": "epoch", "epoch": 0})
    good = (tmp_path / "metrics.jsonl").read_bytes()

    def no_space(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(OutputError, match=r"metrics\.jsonl: no space left"):
        writer.write({"event": "epoch", "epoch": 1})
    assert (tmp_path / "metrics.jsonl").read_bytes() == good


def test_output_error_pickles_with_its_path():
    import pickle

    error = OutputError("/x/out.tsv", errno.ENOSPC, "no space left on device")
    again = pickle.loads(pickle.dumps(error))
    assert (again.path, again.errno, str(again)) == ("/x/out.tsv", errno.ENOSPC, str(error))


def test_atomic_directory_replaces_whole_or_not_at_all(tmp_path, monkeypatch):
    final = tmp_path / "model"
    final.mkdir()
    (final / "old.txt").write_text("old")
    with atomic.atomic_directory(final) as staged:
        (staged / "new.txt").write_text("new")
    assert sorted(p.name for p in final.iterdir()) == ["new.txt"]  # the old directory is gone, not merged
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no staging or .old left

    with pytest.raises(RuntimeError), atomic.atomic_directory(final) as staged:  # a failure while writing
        (staged / "half.txt").write_text("half")
        raise RuntimeError("stopped")
    assert sorted(p.name for p in final.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]

    real_replace, calls = os.replace, []

    def stop_at_second_rename(src, dst):  # stopped between moving the old one aside and the new one in
        calls.append((src, dst))
        if len(calls) == 2:
            raise KeyboardInterrupt
        real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", stop_at_second_rename)
    with pytest.raises(KeyboardInterrupt), atomic.atomic_directory(final) as staged:
        (staged / "newer.txt").write_text("newer")
    monkeypatch.undo()
    assert sorted(p.name for p in final.iterdir()) == ["new.txt"]  # the old directory went back
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
