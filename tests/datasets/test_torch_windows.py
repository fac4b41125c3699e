"""Torch datasets of windows: tensors, padding, DataLoader workers share the windows exactly."""

import pytest
import torch
from torch.utils.data import DataLoader

from seqmamba.datasets.torch_data import WindowDataset, WindowIterableDataset, collate_windows
from seqmamba.errors import InputError


@pytest.fixture
def genome(tmp_path):
    path = tmp_path / "g.fa"
    path.write_text(">a\n" + "ACGTTGCA" * 5 + "AC\n>b\nGGGNN\n")  # 42 and 5 bp
    return path


def test_iterable_items_and_padding(genome):
    items = list(WindowIterableDataset(genome, 10, partial="pad"))
    assert [(i["chrom"], i["start"], i["end"]) for i in items][-2:] == [("a", 40, 42), ("b", 0, 5)]
    assert all(i["input_ids"].shape == (10,) and i["input_ids"].dtype == torch.long for i in items)
    assert items[0]["input_ids"][:4].tolist() == [1, 2, 3, 4]
    assert items[-1]["input_ids"].tolist() == [3, 3, 3, 5, 5, 0, 0, 0, 0, 0]
    assert items[-1]["attention_mask"].tolist() == [1] * 5 + [0] * 5


def test_workers_and_ranks_split_windows_exactly_once(genome):
    data = WindowIterableDataset(genome, 4, 2, strand="both")
    alone = sorted((i["chrom"], i["start"], i["strand"]) for i in data)
    loader = DataLoader(data, batch_size=3, num_workers=2, collate_fn=collate_windows)
    together = sorted((c, int(s), st) for b in loader for c, s, st in zip(b["chrom"], b["start"], b["strand"],
                                                                          strict=True))
    assert together == alone and len(alone) == 2 * (20 + 2)
    ranks = [(i["chrom"], i["start"], i["strand"]) for r in range(3)
             for i in WindowIterableDataset(genome, 4, 2, strand="both", rank=r, world_size=3)]
    assert sorted(ranks) == alone


def test_map_style_matches_iterable(genome):
    mapped = WindowDataset(genome, 10, 7, strand="-")
    streamed = list(WindowIterableDataset(genome, 10, 7, strand="-"))
    assert len(mapped) == len(streamed)
    for i, item in enumerate(streamed):
        assert torch.equal(mapped[i]["input_ids"], item["input_ids"])
    batch = next(iter(DataLoader(mapped, batch_size=len(mapped), num_workers=1, collate_fn=collate_windows)))
    assert batch["input_ids"].shape == (len(mapped), 10)
    assert batch["attention_mask"][-1].tolist() == [1] * 5 + [0] * 5


def test_map_style_refuses_plain_gzip(tmp_path):
    import gzip

    path = tmp_path / "g.fa.gz"
    path.write_bytes(gzip.compress(b">a\nACGT\n"))
    with pytest.raises(InputError, match="plain gzip"):
        WindowDataset(path, 2)
