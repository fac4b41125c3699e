"""Padding never reaches a real position: a window's outputs do not depend on what it is batched with."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from dna_estimator_helpers import at_gc_task, tiny_classifier

from seqmamba.config import MambaConfig
from seqmamba.encoder import MambaEncoder
from seqmamba.estimators._heads import MaskedLMModel, SequenceHeadModel

COMPLEMENT = [0, 4, 3, 2, 1, 5, 6, 7, 8, 9]  # DNATokenizer's ids


def padded_batch(short: torch.Tensor, long: torch.Tensor, pad_at_start: bool = False):
    """Rows short (n,) and long (m > n,) as one (2, m) batch with its mask, the short row padded with 0."""
    ids = torch.zeros(2, len(long), dtype=torch.long)
    mask = torch.zeros(2, len(long), dtype=torch.long)
    where = slice(len(long) - len(short), None) if pad_at_start else slice(0, len(short))
    ids[0, where], mask[0, where] = short, 1
    ids[1], mask[1] = long, 1
    return ids, mask, where


@pytest.mark.parametrize("rc_equivariant", [False, True])
def test_a_padded_row_equals_the_row_alone(rc_equivariant):
    cfg = MambaConfig(d_model=16, n_layers=2, d_state=4, bidirectional=True, vocab_size=10,
                      rc_equivariant=rc_equivariant, complement_map=COMPLEMENT)
    torch.manual_seed(0)
    short, long = torch.randint(1, 5, (30,)), torch.randint(1, 5, (50,))
    ids, mask, where = padded_batch(short, long)
    classifier = SequenceHeadModel(cfg, n_outputs=3).double().eval()
    alone = classifier(short[None], torch.ones(1, 30, dtype=torch.long))
    torch.testing.assert_close(classifier(ids, mask)[:1], alone, rtol=1e-12, atol=1e-12)
    lm = MaskedLMModel(cfg).double().eval()
    per_position = lm(short[None], torch.ones(1, 30, dtype=torch.long))  # (1, 30, vocab)
    torch.testing.assert_close(lm(ids, mask)[:1, where], per_position, rtol=1e-12, atol=1e-12)
    # Without the mask the padding leaks into the reverse scan: the check above is not vacuous.
    assert (classifier.head(classifier.encoder(ids).mean(1))[:1] - alone).abs().max() > 1e-6


@pytest.mark.parametrize("checkpointing", [False, True])
def test_a_causal_encoder_ignores_padding_at_the_start(checkpointing):
    torch.manual_seed(0)
    encoder = MambaEncoder(MambaConfig(d_model=16, n_layers=2, d_state=4)).double()
    encoder.gradient_checkpointing = checkpointing
    x = torch.randn(2, 40, 16, dtype=torch.float64)
    mask = torch.ones(2, 40, dtype=torch.long)
    mask[0, :15] = 0  # row 0: 15 padded steps, then 25 real ones
    alone = encoder(x[:1, 15:])
    torch.testing.assert_close(encoder(x, mask)[:1, 15:], alone, rtol=1e-12, atol=1e-12)


def test_predictions_do_not_depend_on_batch_mates():
    X, y = at_gc_task()
    clf = tiny_classifier(max_epochs=2).fit(X, y)
    short = X[0][:23]
    alone = clf.predict_proba([short])
    with_longer = clf.predict_proba([short, X[1] + X[2]])  # a 80-base mate pads the short window
    np.testing.assert_allclose(with_longer[:1], alone, rtol=0, atol=1e-6)
