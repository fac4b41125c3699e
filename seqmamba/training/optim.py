"""AdamW with weight-decay groups, and a linear warm-up + cosine learning-rate schedule."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

# Modules whose weights are scales or lookup tables: decaying them towards 0 fights what they model.
_NO_DECAY_MODULES: tuple[type[nn.Module], ...] = (
    nn.Embedding, nn.EmbeddingBag, nn.LayerNorm, nn.GroupNorm, nn.modules.batchnorm._BatchNorm,
)


def _module_no_decay_names(model: nn.Module) -> set[str]:
    """Names of parameters that should not decay, by module type or by the module's own say."""
    names: set[str] = set()
    for prefix, module in model.named_modules():
        dot = f"{prefix}." if prefix else ""
        is_norm = isinstance(module, _NO_DECAY_MODULES) or type(module).__name__.endswith("Norm")
        if is_norm:
            names.update(dot + n for n, _ in module.named_parameters(recurse=False))
        # timm's convention: a module lists its own parameters that must not decay.
        hook = getattr(module, "no_weight_decay", None)
        if callable(hook):
            names.update(dot + n for n in hook())
    return names


def param_groups(model: nn.Module, weight_decay: float, lr: float | None = None) -> list[dict]:
    """AdamW groups: decayed matrices, and undecayed biases, norms, embeddings and flagged tensors.

    A parameter skips weight decay when it has fewer than 2 dimensions (biases, norm scales, D),
    belongs to an embedding or a norm, carries ``_no_weight_decay = True`` (as Mamba's ``A_log`` and
    ``D`` do) or is named by a module's ``no_weight_decay()``. Frozen parameters are left out.
    A parameter carrying ``_lr_scale = s`` (s != 1) goes into groups of its own whose learning rate
    is ``s * lr`` (a part that starts fitted, such as a closed-form linear path, moves more slowly);
    the schedule then scales every group alike. Groups keep `named_parameters` order, so the same
    model always gives the same groups (resume).

    Example:
        >>> groups = param_groups(nn.Linear(4, 2), weight_decay=0.1)
        >>> [(g["weight_decay"], g["param_names"]) for g in groups]
        [(0.1, ['weight']), (0.0, ['bias'])]
    """
    skip = _module_no_decay_names(model)
    members: dict[tuple[float, bool], list[tuple[str, nn.Parameter]]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        flagged = getattr(param, "_no_weight_decay", False)
        decays = not (param.ndim < 2 or flagged or name in skip)
        scale = float(getattr(param, "_lr_scale", 1.0))
        members.setdefault((scale, decays), []).append((name, param))
    groups = []
    # Unscaled groups first (decay, then no decay): models without _lr_scale get the groups they always had.
    for scale, decays in sorted(members, key=lambda key: (key[0] != 1.0, key[0], not key[1])):
        group = members[scale, decays]
        entry = {"params": [p for _, p in group], "param_names": [n for n, _ in group],
                 "weight_decay": weight_decay if decays else 0.0}
        if scale != 1.0:
            if lr is None:
                raise ValueError(f"param_groups: {group[0][0]} has _lr_scale={scale}; pass the base lr")
            entry["lr"] = scale * lr
        groups.append(entry)
    return groups


def build_optimizer(
    model: nn.Module,
    lr: float,
    weight_decay: float = 0.01,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    capturable: bool = False,
) -> torch.optim.AdamW:
    """AdamW over `param_groups(model, weight_decay)`; ``capturable``: one whose step a CUDA graph can hold
    (its learning rates then need `lr_tensors`)."""
    groups = param_groups(model, weight_decay, lr)
    if not groups:
        raise ValueError("build_optimizer: the model has no trainable parameters")
    return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=eps, capturable=capturable)


def lr_tensors(optimizer: torch.optim.Optimizer) -> None:
    """Each group's learning rate as a 0-d tensor on its parameters' device, in place: a CUDA graph of the step
    reads it there, and the schedule fills it in place (LRScheduler does for tensors). Call after the scheduler
    is built, and again after `load_state_dict` (which puts numbers back).

    Example:
        >>> opt = build_optimizer(nn.Linear(2, 1), lr=1e-3)
        >>> lr_tensors(opt)
        >>> opt.param_groups[0]["lr"].ndim
        0
    """
    for group in optimizer.param_groups:
        if not torch.is_tensor(group["lr"]):
            group["lr"] = torch.tensor(float(group["lr"]), device=group["params"][0].device)


class WarmupCosine:
    """LR multiplier: linear warm-up to 1 over ``warmup_steps``, then cosine down to ``min_ratio``.

    A plain object (not a lambda) so LambdaLR's state_dict keeps its numbers and a resumed run follows
    the same curve even if the run's step budget is changed.

    Example:
        >>> f = WarmupCosine(warmup_steps=10, total_steps=110, min_ratio=0.1)
        >>> round(f(0), 3), f(9), round(f(60), 3), round(f(110), 3)
        (0.1, 1.0, 0.55, 0.1)
    """

    def __init__(self, warmup_steps: int, total_steps: int | None, min_ratio: float = 0.0) -> None:
        if warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps}")
        if not 0.0 <= min_ratio <= 1.0:
            raise ValueError(f"min_lr_ratio must be in [0, 1], got {min_ratio}")
        self.warmup_steps = int(warmup_steps)
        self.total_steps = None if total_steps is None else int(total_steps)
        self.min_ratio = float(min_ratio)

    def __call__(self, step: int) -> float:
        # LambdaLR asks for step s before optimizer step s+1 runs: the first step gets 1/warmup, not 0.
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        if self.total_steps is None:
            return 1.0
        span = max(1, self.total_steps - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / span)
        return self.min_ratio + (1.0 - self.min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_scheduler(
    optimizer: torch.optim.Optimizer,
    warmup_steps: int,
    total_steps: int | None,
    schedule: str = "cosine",
    min_lr_ratio: float = 0.0,
) -> LambdaLR:
    """``schedule="cosine"`` (warm-up + cosine) or ``"constant"`` (warm-up, then flat); stepped per optimizer step."""
    if schedule == "cosine":
        if total_steps is None:
            raise ValueError("a cosine schedule needs a known number of steps: set max_steps, or use a "
                             "dataset with a length, or schedule='constant'")
        fn = WarmupCosine(warmup_steps, total_steps, min_lr_ratio)
    elif schedule == "constant":
        fn = WarmupCosine(warmup_steps, None)
    else:
        raise ValueError(f"schedule must be 'cosine' or 'constant', got {schedule!r}")
    return LambdaLR(optimizer, fn)


def parameter_count(params: Iterable[nn.Parameter]) -> int:
    return sum(p.numel() for p in params)
