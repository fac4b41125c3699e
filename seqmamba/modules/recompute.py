"""The scan's inputs recomputed in the backward instead of kept, as mamba_ssm's ``checkpoint_lvl=1`` does.

A branch's conv output ``xc`` and its delta ``dt`` are each d_inner wide per token; the scan and x_proj's
GEMM keep them for the backward. Recomputing them from the conv's input (which the conv keeps anyway) costs
one conv and two thin GEMMs per branch in the backward, and frees 4 of the 7 d_inner-wide activations a
bidirectional layer keeps (both branches' ``xc`` and ``dt``).

`ScanInputRecompute` is a ``saved_tensors_hooks`` context around one layer's forward (as
``torch.utils.checkpoint`` is one around a whole layer): tensors registered with it are packed as a recipe
instead of kept, and the first unpack in the backward runs the recipe (once per branch, shared by every
node that saved one of its tensors). Every other saved tensor is kept as usual. `SelectiveSSM.scan_inputs`
registers its tensors when a context is active; `MambaEncoder.run_layer` decides when one is.

Example:
    >>> lin = torch.nn.Linear(4, 4)
    >>> x = torch.randn(3, 4, requires_grad=True)
    >>> with ScanInputRecompute() as recompute:
    ...     h = torch.tanh(x)
    ...     recompute.register(lambda: (torch.tanh(x.detach()),), h)  # h is not kept: tanh again when needed
    ...     loss = lin(h).sum()
    >>> loss.backward()
    >>> x.grad.shape
    torch.Size([3, 4])
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar

import torch

_ACTIVE: ContextVar[ScanInputRecompute | None] = ContextVar("seqmamba_scan_input_recompute", default=None)


def active() -> ScanInputRecompute | None:
    """The innermost `ScanInputRecompute` context, if a forward runs inside one."""
    return _ACTIVE.get()


def _key(t: torch.Tensor) -> tuple:
    """Same buffer, same view: the same values (a registered tensor is alive while the context is, so no other
    tensor can take its address)."""
    return t.data_ptr(), t.shape, t.stride(), t.dtype, t.device


class _Recipe:
    """make() -> the registered tensors again, made on the first unpack and dropped after the last."""

    def __init__(self, make: Callable[[], tuple[torch.Tensor, ...]], device_type: str) -> None:
        self.make, self.values = make, None
        self.packs = self.taken = 0  # saves of these tensors; unpacks since the set was made
        # the backward runs outside autocast: make() runs in the forward's, so its casts and GEMMs are the same
        self.autocast = dict(device_type=device_type, dtype=torch.get_autocast_dtype(device_type),
                             enabled=torch.is_autocast_enabled(device_type),
                             cache_enabled=torch.is_autocast_cache_enabled())  # off while a CUDA graph captures

    def take(self, index: int) -> torch.Tensor:
        if self.values is None:
            with torch.no_grad(), torch.autocast(**self.autocast):
                self.values = self.make()
        value = self.values[index]
        self.taken += 1
        if self.taken == self.packs:  # every node that saved one of them has it: free the set (a second backward,
            self.values, self.taken = None, 0  # retain_graph=True, makes it again)
        return value


class ScanInputRecompute(torch.autograd.graph.saved_tensors_hooks):
    """Around a forward: tensors registered with `register` are recomputed in the backward, not kept."""

    def __init__(self) -> None:
        self._registered: dict[tuple, tuple[_Recipe, int, torch.Tensor]] = {}
        self._recipes: dict[Callable, _Recipe] = {}
        self._token = None
        super().__init__(self.pack, self.unpack)

    def __enter__(self) -> ScanInputRecompute:
        super().__enter__()
        self._token = _ACTIVE.set(self)
        return self

    def __exit__(self, *exc) -> None:
        _ACTIVE.reset(self._token)
        self._registered.clear()
        self._recipes.clear()  # later saves do not pass through these hooks; keep nothing alive
        super().__exit__(*exc)

    def register(self, make: Callable[[], tuple[torch.Tensor, ...]], *tensors: torch.Tensor) -> None:
        """``make()`` returns ``tensors`` again (same values, in this order); it runs under ``no_grad`` in the
        backward and must read only what the forward keeps anyway (the conv's input, parameters). Registering
        the same ``make`` again extends its list: register a tensor before the first node saves it."""
        recipe = self._recipes.get(make)
        if recipe is None:
            recipe = self._recipes[make] = _Recipe(make, tensors[0].device.type)
        for index, t in enumerate(tensors):
            self._registered[_key(t)] = (recipe, index, t)

    def pack(self, t: torch.Tensor) -> torch.Tensor | tuple[_Recipe, int]:
        found = self._registered.get(_key(t))
        if found is None:
            return t
        recipe, index, _ = found
        recipe.packs += 1
        return recipe, index

    @staticmethod
    def unpack(packed: torch.Tensor | tuple[_Recipe, int]) -> torch.Tensor:
        if isinstance(packed, torch.Tensor):
            return packed
        recipe, index = packed
        return recipe.take(index)
