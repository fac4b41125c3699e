"""Tiny DNA classification data and models shared by the estimator and CLI tests."""

import numpy as np

from seqmamba import MambaSequenceClassifier

TINY = {"d_model": 8, "n_layers": 1, "d_state": 4, "device": "cpu", "random_state": 0, "batch_size": 8}


def at_gc_task(n=24, length=40, seed=0):
    """Class 'AT' is A/T only, class 'GC' is G/C only: learnable in a few steps."""
    rng = np.random.default_rng(seed)
    y = ["AT" if i % 2 else "GC" for i in range(n)]
    X = ["".join(rng.choice(list(label), length)) for label in y]
    return X, y


def tiny_classifier(**params):
    return MambaSequenceClassifier(**{**TINY, "max_len": 64, "max_epochs": 12, "lr": 1e-2, **params})


def tiny_cli_workdir(root, model_name: str, n_records: int) -> None:
    """A tiny saved classifier (root/model_name, batches of 64 windows), root/in.fa with n_records
    random 40-60 bp records, and root/train.csv (the 16 sequences it was trained on)."""
    rng = np.random.default_rng(0)
    X = ["".join(rng.choice(list("AT" if i % 2 else "GC"), 40)) for i in range(16)]
    y = ["AT" if i % 2 else "GC" for i in range(16)]
    MambaSequenceClassifier(d_model=8, n_layers=1, d_state=4, max_len=64, max_epochs=1, batch_size=64,
                            device="cpu", random_state=0).fit(X, y).save(root / model_name)
    with open(root / "in.fa", "w") as handle:
        for i in range(n_records):
            handle.write(f">r{i}\n{''.join(rng.choice(list('ACGT'), int(rng.integers(40, 61))))}\n")
    with open(root / "train.csv", "w") as handle:
        handle.write("sequence,label\n" + "".join(f"{x},{label}\n" for x, label in zip(X, y)))
