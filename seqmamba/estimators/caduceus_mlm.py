"""Caduceus checkpoints as seqmamba's masked-LM module: `load_caduceus` and `save_caduceus`.

The conversion itself (config, tensor names, vocabulary, hub downloads) is `seqmamba.caduceus`'s; this module
puts an MLM head on the encoder, as ``CaduceusForMaskedLM`` has one, and wraps the result for `MambaEmbedder`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ..caduceus import load_caduceus_parts, write_caduceus
from ..dna import DNAEncoder
from ..tokenizers.dna import DNATokenizer
from ._heads import MaskedLMModel


def load_caduceus(
    source: str | os.PathLike, device: torch.device | str | None = None, dtype: torch.dtype | None = None,
    revision: str | None = None,
) -> tuple[MaskedLMModel, DNATokenizer]:
    """A Caduceus checkpoint as (`MaskedLMModel`, `DNATokenizer`), in eval mode.

    ``source``: a local directory in the Hugging Face layout (``config.json`` with ``model_type: caduceus``,
    ``model.safetensors`` or ``pytorch_model.bin``) or a hub id such as
    ``kuleshov-group/caduceus-ps_seqlen-131k_d_model-256_n_layer-16`` (``pip install 'seqmamba[hub]'``;
    ``revision`` pins a commit). The model takes DNATokenizer ids: ``model(ids, mask)`` gives the MLM logits
    (batch, L, 10) over DNATokenizer's tokens, ``model.encoder(ids, mask)`` per-position embeddings and
    ``model.embed(ids, mask)`` pooled ones (both strand-averaged for Caduceus-PS). The head is tied to the
    embedding, as Caduceus ties it, with a zero bias.

    Example:
        >>> import tempfile
        >>> from seqmamba import DNAEncoder, MambaConfig, load_caduceus, save_caduceus
        >>> cfg = MambaConfig(d_model=16, n_layers=2, d_state=4, bidirectional=True, vocab_size=10)
        >>> with tempfile.TemporaryDirectory() as tmp:  # or "kuleshov-group/caduceus-ph_seqlen-131k_..."
        ...     _ = save_caduceus(DNAEncoder(cfg), tmp)  # a Caduceus-Ph checkpoint directory
        ...     model, tokenizer = load_caduceus(tmp)
        >>> batch = tokenizer.encode_batch(["ACGTNACGT", "GGCA"])
        >>> ids, mask = torch.as_tensor(batch["input_ids"]), torch.as_tensor(batch["attention_mask"])
        >>> model(ids, mask).shape, model.embed(ids, mask).shape
        (torch.Size([2, 9, 10]), torch.Size([2, 16]))
    """
    spec, state, head = load_caduceus_parts(source, DNAEncoder.state_shapes, revision)
    model = MaskedLMModel(spec.config)
    model.encoder.load_state_dict(state)
    with torch.no_grad():
        model.head.bias.zero_()
        if head is None or spec.tie_word_embeddings:
            model.head.weight = model.encoder.embedding.weight  # tied, as Caduceus ties them on load
        else:
            model.head.weight.copy_(head)
    if device is not None or dtype is not None:
        model = model.to(device=device, dtype=dtype)
    return model.eval(), DNATokenizer()


def save_caduceus(model: Any, directory: str | os.PathLike) -> Path:
    """Write ``model`` as a Caduceus checkpoint directory that Caduceus's ``CaduceusForMaskedLM.from_pretrained``
    loads: ``config.json`` (``model_type: caduceus``) and ``model.safetensors`` in its tensor names and
    vocabulary order.

    ``model``: a `MaskedLMModel` (encoder and MLM head), a `DNAEncoder` (the head is then the embedding, as
    Caduceus ties it) or a fitted `MambaEmbedder` holding either. The encoder must be bidirectional with
    ``bidirectional_combine="add"`` over DNATokenizer ids; an RC-equivariant one becomes Caduceus-PS
    (``fused_add_norm`` from ``rc_strand_swap``). See `seqmamba.caduceus.write_caduceus` for what cannot be
    written (a head with a bias, an untied Caduceus-PS head).

    Example:
        >>> import json, tempfile
        >>> from pathlib import Path
        >>> from seqmamba import MambaConfig, save_caduceus
        >>> cfg = MambaConfig(d_model=16, n_layers=2, d_state=4, bidirectional=True, vocab_size=10)
        >>> model = MaskedLMModel(cfg)
        >>> model.head.weight = model.encoder.embedding.weight  # Caduceus ties its head...
        >>> _ = torch.nn.init.zeros_(model.head.bias)  # ...and it has no bias
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     written = save_caduceus(model, tmp)
        ...     config = json.loads(Path(tmp, "config.json").read_text())
        >>> config["model_type"], config["rcps"], config["vocab_size"]
        ('caduceus', False, 16)
    """
    module = getattr(model, "model_", model)  # a fitted estimator holds its module in model_
    if isinstance(module, DNAEncoder):
        return write_caduceus(directory, module)
    if isinstance(module, MaskedLMModel):
        return write_caduceus(directory, module.encoder, module.head)
    raise TypeError(f"save_caduceus: expected a MaskedLMModel, a DNAEncoder or an embedder holding one, got"
                    f" {type(module).__name__}")
