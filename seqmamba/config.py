"""`MambaConfig`: every hyperparameter of a Mamba encoder, as plain JSON-able data."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

# Bump when a field changes meaning; from_dict refuses configs written by a newer format.
CONFIG_VERSION = 1

COMBINE_MODES = ("add", "gate")


@dataclass
class MambaConfig:
    """Hyperparameters of `MambaEncoder` (and of `DNAEncoder`, which adds a token embedding).

    Args:
        d_model: width of the residual stream.
        n_layers: number of pre-norm residual Mamba blocks.
        d_state: SSM state size N per channel.
        d_conv: kernel of the depthwise (causal) convolution.
        expand: inner width d_inner = expand * d_model.
        dt_rank: rank of the dt projection; "auto" is ceil(d_model / 16).
        dt_min, dt_max, dt_init_floor: dt is initialised log-uniform in [dt_min, dt_max], at least
            dt_init_floor.
        conv_bias: bias on the convolution; bias: bias on the in/out projections.
        norm_eps: RMSNorm epsilon.
        bidirectional: a forward and a reverse scan per block (shared in/out projections), so every
            position sees the whole sequence; False gives a causal encoder.
        bidirectional_combine: "add" (sum of both directions) or "gate" (a learned per-token,
            per-channel sigmoid mix, starting at the average).
        rc_equivariant: DNA only (`DNAEncoder`): run the encoder on the sequence and on its reverse
            complement with shared weights and combine, so pooled embeddings are strand-symmetric.
        rc_strand_swap: with rc_equivariant, the two strands trade residual streams before every layer,
            each reversed along L and along channels: what the published Caduceus-PS checkpoints compute
            (their ``fused_add_norm`` path; see `seqmamba.rcps`). False runs the strands apart.
        gradient_checkpointing: recompute each block in the backward pass (long inputs).
        vocab_size: size of the token vocabulary for `DNAEncoder`; None for `MambaEncoder`, which
            takes embeddings.
        complement_map: for rc_equivariant, token id -> id of its complement (length vocab_size).
        version: format version of this config (`CONFIG_VERSION`).

    Example:
        >>> cfg = MambaConfig(d_model=64, n_layers=2, bidirectional=True)
        >>> cfg.d_inner, cfg.resolved_dt_rank
        (128, 4)
        >>> MambaConfig.from_dict(cfg.to_dict()) == cfg
        True
    """

    d_model: int
    n_layers: int
    d_state: int = 16
    d_conv: int = 4
    expand: int = 2
    dt_rank: int | str = "auto"
    dt_min: float = 1e-3
    dt_max: float = 1e-1
    dt_init_floor: float = 1e-4
    conv_bias: bool = True
    bias: bool = False
    norm_eps: float = 1e-5
    bidirectional: bool = False
    bidirectional_combine: str = "add"
    rc_equivariant: bool = False
    rc_strand_swap: bool = False
    gradient_checkpointing: bool = False
    vocab_size: int | None = None
    complement_map: list[int] | None = field(default=None)
    version: int = CONFIG_VERSION

    def __post_init__(self) -> None:
        for name in ("d_model", "n_layers", "d_state", "d_conv", "expand"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"MambaConfig: {name} must be a positive integer, got {value!r}")
        if self.dt_rank != "auto" and (
            isinstance(self.dt_rank, bool) or not isinstance(self.dt_rank, int) or self.dt_rank < 1
        ):
            raise ValueError(
                f"MambaConfig: dt_rank must be 'auto' or a positive integer, got {self.dt_rank!r}"
            )
        if not 0 < self.dt_min <= self.dt_max:
            raise ValueError(f"MambaConfig: need 0 < dt_min <= dt_max, got {self.dt_min} and {self.dt_max}")
        if self.bidirectional_combine not in COMBINE_MODES:
            raise ValueError(
                f"MambaConfig: bidirectional_combine must be one of {COMBINE_MODES},"
                f" got {self.bidirectional_combine!r}"
            )
        if self.rc_strand_swap and not self.rc_equivariant:
            raise ValueError("MambaConfig: rc_strand_swap needs rc_equivariant (it swaps the two strands' streams)")
        if self.vocab_size is not None and (isinstance(self.vocab_size, bool) or self.vocab_size < 1):
            raise ValueError(
                f"MambaConfig: vocab_size must be a positive integer or None, got {self.vocab_size!r}"
            )
        if self.complement_map is not None:
            self.complement_map = [int(i) for i in self.complement_map]
        if self.version != CONFIG_VERSION:
            raise ValueError(
                f"MambaConfig: config version {self.version} is not supported by this seqmamba"
                f" (it reads version {CONFIG_VERSION})"
            )

    @property
    def d_inner(self) -> int:
        return self.expand * self.d_model

    @property
    def resolved_dt_rank(self) -> int:
        return math.ceil(self.d_model / 16) if self.dt_rank == "auto" else int(self.dt_rank)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict of every field (version included)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MambaConfig:
        """Inverse of `to_dict`; unknown keys or another version raise a ValueError naming them."""
        if not isinstance(data, dict):
            raise ValueError(f"MambaConfig: expected a dict, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"MambaConfig: unknown keys {unknown} (known: {sorted(known)})")
        required = [f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING]
        missing = [name for name in required if name not in data]
        if missing:
            raise ValueError(f"MambaConfig: missing required keys {missing}")
        version = data.get("version", CONFIG_VERSION)
        if version != CONFIG_VERSION:
            raise ValueError(
                f"MambaConfig: config version {version!r} is not supported by this seqmamba"
                f" (it reads version {CONFIG_VERSION}); upgrade seqmamba or re-save the model"
            )
        return cls(**data)
