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
