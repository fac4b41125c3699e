"""Labelled tables (sequence, label): read from a file or from a pipe (`--train <(zcat train.csv.gz)`), once."""

import os
import threading

import pytest

from seqmamba.datasets.labelled import read_labelled_table
from seqmamba.errors import InputError

TABLE = "sequence,label\nACGTACGT,a\nGGCCGGCC,b\n"


def test_a_pipe_reads_as_the_file_does(tmp_path):
    (tmp_path / "t.csv").write_text(TABLE)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_text(TABLE))  # blocks until the reader opens the pipe
    writer.start()
    try:
        from_pipe = read_labelled_table(fifo)
    finally:
        writer.join(timeout=30)
    assert from_pipe == read_labelled_table(tmp_path / "t.csv") == (["ACGTACGT", "GGCCGGCC"], ["a", "b"])


def test_a_pipe_with_a_bad_base_names_its_line_and_column(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_text("sequence\tlabel\nACGT\ta\nAC1T\tb\n"))
    writer.start()
    try:
        with pytest.raises(InputError, match=r"pipe: line 3, column 3"):
            read_labelled_table(fifo)
    finally:
        writer.join(timeout=30)


def test_a_directory_or_a_missing_path_is_one_line(tmp_path):
    with pytest.raises(InputError, match="is a directory"):
        read_labelled_table(tmp_path)
    with pytest.raises(InputError, match="no such file"):
        read_labelled_table(tmp_path / "nope.csv")
