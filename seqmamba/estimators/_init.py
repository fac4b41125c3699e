"""Where a classifier's encoder can start from: any model directory that holds a DNA encoder.

``MambaSequenceClassifier(init=...)`` and ``seqmamba train dna --init`` take:

- an estimator directory of seqmamba (a classifier, an embedder, or the output of ``seqmamba pretrain``):
  its ``estimator.json`` says which module the weights belong to, and the module's ``encoder`` is kept;
- a Caduceus checkpoint (a local directory in the Hugging Face layout, or a hub id), converted at load.

Only the encoder is taken: the embedding and every Mamba layer, with the source's architecture (its
``d_model``, ``n_layers``, ``d_state``, direction and strand handling). The task head is new.
"""

from __future__ import annotations

import os
from pathlib import Path

from torch import nn

from ..dna import DNAEncoder
from ..errors import InputError
from ._base import ESTIMATOR_NAME, read_estimator_record, read_module


def pretrained_encoder(source: str | os.PathLike) -> nn.Module:
    """The DNA encoder (a `seqmamba.dna.DNAEncoder` or a module with its interface) held by ``source``.

    ``source`` is a seqmamba model directory or a Caduceus checkpoint (directory or hub id). The
    encoder is returned on the CPU, in eval mode; InputError names the path when it holds none.

    Example:
        >>> encoder = pretrained_encoder("pretrained/")  # doctest: +SKIP
        >>> encoder.config.d_model  # doctest: +SKIP
        256
    """
    path = Path(source)
    if (path / ESTIMATOR_NAME).is_file():
        return read_module(path, read_estimator_record(path)["head"]).encoder.eval()
    from ..caduceus import is_caduceus_source

    if is_caduceus_source(source):
        return DNAEncoder.from_pretrained(source)
    raise InputError(f"{source}: holds no DNA encoder to start from (expected a seqmamba model directory with "
                     f"{ESTIMATOR_NAME}, a Caduceus checkpoint directory, or a Hugging Face hub id)")
