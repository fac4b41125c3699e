"""CPU thread selection for training on a shared machine."""

import pytest
import torch

from seqmamba.training import threads


def test_threads_are_set_inside_and_restored_after():
    before = torch.get_num_threads()
    with threads.cpu_threads(1, torch.device("cpu")) as n:
        assert n == 1 and torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with threads.cpu_threads(1, torch.device("cuda", 0)) as n:  # not the CPU: left alone
        assert n == before and torch.get_num_threads() == before
    with pytest.raises(ValueError, match="n_threads"):
        with threads.cpu_threads(0, torch.device("cpu")):
            pass
    assert torch.get_num_threads() == before


@pytest.mark.parametrize(("others", "expected"), [(0, 2), (1, 1), (5, 1)])
def test_auto_leaves_the_cores_others_are_running_on(monkeypatch, others, expected):
    monkeypatch.setattr(threads, "running_elsewhere", lambda: others)
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    assert threads.auto_threads() == expected


def test_running_elsewhere_reads_the_kernels_count():
    count = threads.running_elsewhere(samples=2, interval=0.0)
    assert count is None or count >= 0
