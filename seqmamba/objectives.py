"""Self-supervised objectives on DNA token ids, as training-engine `Task` objects.

- `MaskedNucleotideTask`: masked-nucleotide modelling for bidirectional encoders (BERT's recipe: 15 % of
  the bases chosen; of those 80 % become [MASK], 10 % a random base, 10 % stay; cross-entropy on them).
  `MambaEmbedder.fit` and `seqmamba pretrain` both train with it.
- `NextBaseTask`: next-base prediction for causal encoders (position t predicts the base at t + 1).

Both take batches ``{"input_ids": (b, L), "attention_mask": (b, L)}`` (no mask: every position is real)
and models ``model(ids, mask) -> (b, L, vocab)`` logits (`MaskedLMModel`, `CausalLMModel`). Only bases
(A, C, G, T) are ever targets: N, padding and special tokens are not predicted.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from .tokenizers.dna import MASK, A, T
from .training import Task

BASES = (A, T + 1)  # token ids A..T; only bases are masked and predicted
IGNORE = -100  # target of positions that are not predicted (cross_entropy's ignore_index)


def mask_nucleotides(ids: torch.Tensor, fraction: float,
                     generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(corrupted ids, targets) for masked-nucleotide modelling; targets are ``-100`` where not chosen.

    Each base is chosen with probability ``fraction``; a chosen base becomes [MASK] (80 %), a random
    base (10 %) or stays (10 %). ``generator`` (on ``ids``'s device) makes the draws reproducible
    whatever else draws random numbers; None uses torch's global generator.

    Example:
        >>> ids = torch.tensor([[1, 2, 3, 4, 5] * 40])
        >>> corrupted, targets = mask_nucleotides(ids, 0.5, torch.Generator().manual_seed(0))
        >>> bool(((targets == -100) | (targets == ids)).all()), bool((targets[ids == 5] == -100).all())
        (True, True)
    """
    is_base = (ids >= BASES[0]) & (ids < BASES[1])
    chosen = is_base & (torch.rand(ids.shape, device=ids.device, generator=generator) < fraction)
    targets = torch.where(chosen, ids, torch.full_like(ids, IGNORE))
    roll = torch.rand(ids.shape, device=ids.device, generator=generator)
    random_bases = torch.randint(BASES[0], BASES[1], ids.shape, device=ids.device, generator=generator)
    corrupted = torch.where(chosen & (roll < 0.8), torch.full_like(ids, MASK), ids)
    corrupted = torch.where(chosen & (roll >= 0.9), random_bases, corrupted)
    return corrupted, targets


def _reduce(logits: torch.Tensor, targets: torch.Tensor, per_window: bool,
            accuracy: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(cross-entropy, accuracy or None) over the targets of (b, L, vocab) logits.

    Token means over the batch, or (``per_window``) each window's token mean averaged over the windows:
    then the value of a batch is the mean of its windows' values, so a batch split over DDP ranks or
    accumulation steps gives the same loss and gradients as the whole batch.
    """
    logits = logits.float()
    valid = targets != IGNORE
    if not per_window:
        if not valid.any():
            zero = logits.sum() * 0.0  # nothing to predict in this batch (tiny inputs)
            return zero, zero.detach() if accuracy else None
        ce = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=IGNORE)
        if not accuracy:
            return ce, None
        return ce, (logits.argmax(-1) == targets)[valid].float().mean()
    ce = F.cross_entropy(logits.transpose(1, 2), targets, ignore_index=IGNORE, reduction="none")  # (b, L)
    counts = valid.sum(1).clamp_min(1).float()  # (b,)
    loss = ((ce * valid).sum(1) / counts).mean()
    if not accuracy:
        return loss, None
    correct = ((logits.argmax(-1) == targets) & valid).sum(1).float()
    return loss, (correct / counts).mean()


class MaskedNucleotideTask(Task):
    """Masked-nucleotide modelling: predict the bases hidden behind [MASK] (BERT's 15 %, 80/10/10).

    A batch with ``"labels"`` comes already masked (``input_ids`` corrupted, ``labels`` the targets,
    ``-100`` elsewhere: see `mask_nucleotides`), e.g. by a loader that masks each window with its own
    seeded generator; otherwise the task masks ``input_ids`` itself with torch's global generator.
    Metrics: ``loss`` and ``accuracy`` (of the masked bases).

    Args:
        mask_fraction: share of the bases chosen.
        per_window: average each window's loss first, then the windows (see `_reduce`); False: one
            token mean over the batch.

    Example:
        >>> from seqmamba.config import MambaConfig
        >>> from seqmamba.estimators._heads import MaskedLMModel
        >>> cfg = MambaConfig(d_model=8, n_layers=1, d_state=4, bidirectional=True, vocab_size=10)
        >>> batch = {"input_ids": torch.randint(1, 5, (2, 64)), "attention_mask": torch.ones(2, 64)}
        >>> metrics = MaskedNucleotideTask().metrics(MaskedLMModel(cfg), batch)
        >>> sorted(metrics), 0.0 <= float(metrics["accuracy"]) <= 1.0
        (['accuracy', 'loss'], True)
    """

    def __init__(self, mask_fraction: float = 0.15, per_window: bool = False) -> None:
        if not 0 < mask_fraction < 1:
            raise ValueError(f"mask_fraction must be in (0, 1), got {mask_fraction!r}")
        self.mask_fraction = mask_fraction
        self.per_window = per_window

    def _inputs(self, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        if "labels" in batch:
            return batch["input_ids"], batch["labels"]
        return mask_nucleotides(batch["input_ids"], self.mask_fraction)

    def _forward(self, model: nn.Module, batch: Mapping[str, torch.Tensor],
                 accuracy: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        corrupted, targets = self._inputs(batch)
        logits = model(corrupted, batch.get("attention_mask"))  # (b, L, vocab)
        return _reduce(logits, targets, self.per_window, accuracy)

    def loss(self, model: nn.Module, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self._forward(model, batch, accuracy=False)[0]

    def metrics(self, model: nn.Module, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        loss, accuracy = self._forward(model, batch, accuracy=True)
        return {"loss": loss, "accuracy": accuracy}


class NextBaseTask(Task):
    """Next-base prediction for causal encoders: the output at position t predicts the base at t + 1.

    Targets are the bases (A, C, G, T) of positions 1..L-1 under the attention mask; N and padding are
    not predicted. Metrics: ``loss`` and ``accuracy``. A bidirectional encoder sees the answer, so this
    task is for causal ones (`CausalLMModel` refuses others).

    Args:
        per_window: as in `MaskedNucleotideTask`.

    Example:
        >>> from seqmamba.config import MambaConfig
        >>> from seqmamba.estimators._heads import CausalLMModel
        >>> cfg = MambaConfig(d_model=8, n_layers=1, d_state=4, bidirectional=False, vocab_size=10)
        >>> batch = {"input_ids": torch.randint(1, 5, (2, 64)), "attention_mask": torch.ones(2, 64)}
        >>> sorted(NextBaseTask().metrics(CausalLMModel(cfg), batch))
        ['accuracy', 'loss']
    """

    def __init__(self, per_window: bool = False) -> None:
        self.per_window = per_window

    @staticmethod
    def targets(ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """(b, L - 1) targets: the next position's base, ``-100`` where it is not a real base."""
        following = ids[:, 1:]
        is_base = (following >= BASES[0]) & (following < BASES[1])
        if attention_mask is not None:
            is_base &= attention_mask[:, 1:] != 0
        return torch.where(is_base, following, torch.full_like(following, IGNORE))

    def _forward(self, model: nn.Module, batch: Mapping[str, torch.Tensor],
                 accuracy: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        ids, mask = batch["input_ids"], batch.get("attention_mask")
        logits = model(ids, mask)[:, :-1]  # (b, L - 1, vocab): position t predicts t + 1
        return _reduce(logits, self.targets(ids, mask), self.per_window, accuracy)

    def loss(self, model: nn.Module, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self._forward(model, batch, accuracy=False)[0]

    def metrics(self, model: nn.Module, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        loss, accuracy = self._forward(model, batch, accuracy=True)
        return {"loss": loss, "accuracy": accuracy}
