"""What each column of a forecaster's input is: a target (forecast), a past-observed or a future-known covariate.

Covariates are named by the estimator's ``past_covariates`` and ``future_covariates``; every other value column
is a target. Tables keep their own column order (``feature_names_in_``, checked as before); the network reads
the columns as targets, then past covariates, then future covariates (`Roles.index`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import InputError


@dataclass(frozen=True)
class Roles:
    """The columns by role, and where the network's order takes them from in the table's order.

    Example:
        >>> roles = column_roles(("hour", "load", "temp"), past=["temp"], future=["hour"], where="X")
        >>> roles.targets, roles.index, roles.order
        (('load',), (1, 2, 0), ('load', 'temp', 'hour'))
    """

    targets: tuple[str, ...]
    past: tuple[str, ...]
    future: tuple[str, ...]
    index: tuple[int, ...]

    @property
    def order(self) -> tuple[str, ...]:
        return self.targets + self.past + self.future

    @property
    def has_covariates(self) -> bool:
        return bool(self.past or self.future)


def covariate_names(value: Any, name: str) -> tuple[str, ...]:
    """A ``past_covariates`` / ``future_covariates`` parameter as a tuple of column names (None: none)."""
    if value is None:
        return ()
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ValueError(f"{name} must be a list of column names, got {value!r}")
    names = tuple(str(v) for v in value)
    if len(set(names)) != len(names):
        raise ValueError(f"{name} names a column twice: {list(names)}")
    return names


def check_covariate_params(past: Any, future: Any, id_col: str | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The two covariate parameters, checked against each other and the id column (ValueError)."""
    past_names, future_names = covariate_names(past, "past_covariates"), covariate_names(future, "future_covariates")
    both = sorted(set(past_names) & set(future_names))
    if both:
        raise ValueError(f"columns {both} are named in both past_covariates and future_covariates")
    if id_col is not None and id_col in past_names + future_names:
        raise ValueError(f"the id column {id_col!r} cannot be a covariate")
    return past_names, future_names


def column_roles(columns: Sequence[str], past: Sequence[str], future: Sequence[str], where: str) -> Roles:
    """The roles of a table's value ``columns``; an InputError names covariates the table lacks."""
    columns = tuple(columns)
    for kind, names in (("past_covariates", past), ("future_covariates", future)):
        missing = [c for c in names if c not in columns]
        if missing:
            raise InputError(f"{where}: {kind} names columns not in the data: {missing} (its columns: "
                             f"{list(columns)})")
    covariates = set(past) | set(future)
    targets = tuple(c for c in columns if c not in covariates)
    if not targets:
        raise InputError(f"{where}: every column is a covariate; at least one column must be a target to forecast")
    order = targets + tuple(past) + tuple(future)
    return Roles(targets, tuple(past), tuple(future), tuple(columns.index(c) for c in order))


__all__ = ["Roles", "check_covariate_params", "column_roles", "covariate_names"]
