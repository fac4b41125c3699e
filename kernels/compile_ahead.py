"""Compiling the Triton kernels a run will launch, in parallel, before it launches them.

Triton compiles a kernel variant at its first launch, in the launching process, one variant after another. On
a fresh H100 machine a classifier's first fit compiled 20 variants for 34 s and a new sequence length 6 more
for 26 s (docs/benchmarks/cold_start.md). The fused bidirectional scan forward is the slow one: 14-19 s for
bf16, about 60 s for float32 with two tiles a trip (an sm_90 compile on a CPU), 80 % of it in one Triton pass
(TritonGPUCoalesce) that grows with the square of the unrolled kernel.

`compile_ahead(run)` calls `run()` with every launch recorded instead of made (`recording_launches`), then
compiles each distinct variant it saw in worker processes with Triton's own `warmup` (compile, do not
launch) into Triton's on-disk cache, where the real launches that follow find them. `run` is a dry run: the
kernels leave their outputs unwritten, so what it computes is garbage and is thrown away. Each variant
compiled ahead leaves a marker beside Triton's cache, so that a warm machine starts no worker at all.

A worker is ``python -m seqmamba.kernels.compile_ahead`` reading variants as JSON lines on stdin and
answering one line each; not a multiprocessing start, which would re-run a user's script that lacks a
``__main__`` guard. Set SEQMAMBA_COMPILE_AHEAD=0 to compile at first launch only, as Triton does.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import dataclasses
import hashlib
import importlib
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import torch

from ._fast_launch import interpreting, jit_function, recording_launches, triton_cache_dir

AHEAD_ENV = "SEQMAMBA_COMPILE_AHEAD"
MAX_WORKERS = 8  # each worker holds torch and Triton (about 1 GB of host memory) and a CUDA runtime
log = logging.getLogger("seqmamba.kernels")


# -- what Triton compiles: a launch's specialization --------------------------------------------------------


def _unspecialized(kernel) -> set[int]:
    """Positions of the parameters the kernel does not specialize on (do_not_specialize)."""
    jit = jit_function(kernel)
    if hasattr(jit, "params"):  # a JITFunction
        return {i for i, p in enumerate(jit.params) if p.do_not_specialize}
    names = set(jit.kwargs.get("do_not_specialize") or ())  # TRITON_INTERPRET=1: an InterpretedFunction
    return {i for i, name in enumerate(jit.arg_names) if name in names or i in names}


def _int_class(value: int) -> tuple[int, bool, bool]:
    bits = 32 if -(2**31) <= value < 2**31 else 64
    return bits, value == 1, value % 16 == 0


def specialization(kernel, args: tuple, constexprs: dict) -> tuple:
    """What Triton compiles a launch for (Triton 3.x's rules): each tensor's dtype and 16-byte alignment, each
    integer's class (32 or 64 bits; equal to 1; divisible by 16) unless the kernel does not specialize it, the
    constexprs and launch options. Two launches with equal specializations share one compiled kernel.

    Example:
        >>> class Kernel:  # stands in for a @triton.jit function
        ...     params = [type("P", (), {"do_not_specialize": False})()] * 2
        >>> x = torch.zeros(8)
        >>> specialization(Kernel(), (x, 32), {"BLOCK": 64}) == specialization(Kernel(), (x, 48), {"BLOCK": 64})
        True
    """
    skip = _unspecialized(kernel)
    key: list = []
    for i, arg in enumerate(args):
        if isinstance(arg, torch.Tensor):
            key.append((arg.dtype, arg.data_ptr() % 16 == 0))
        elif isinstance(arg, bool):
            key.append(arg)
        elif isinstance(arg, int):
            key.append(_int_class(arg)[0] if i in skip else _int_class(arg))
        else:
            key.append(type(arg).__name__)
    return (*key, *sorted((k, str(v)) for k, v in constexprs.items()))


# -- one compile, as a worker receives it --------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Variant:
    """One kernel variant to compile: the kernel by module and name, its grid, its arguments (a tensor as
    ``{"tensor": dtype name, "aligned": bool}``, other values as they are), its constexprs, the CUDA device.

    Example:
        >>> v = Variant("m", "k", (4, 1, 1), ({"tensor": "bfloat16", "aligned": True}, 1000), (("BLOCK", 8),), 0)
        >>> Variant.from_json(v.to_json()) == v
        True
    """

    module: str
    name: str
    grid: tuple[int, ...]
    args: tuple
    constexprs: tuple[tuple[str, object], ...]
    device: int

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Variant:
        d = json.loads(text)
        return cls(d["module"], d["name"], tuple(d["grid"]), tuple(d["args"]),
                   tuple((k, v) for k, v in d["constexprs"]), d["device"])


def _constexpr(value) -> object:
    """A constexpr as JSON carries it: a Triton dtype (tl.float32) as {"tl_dtype": "fp32"}; None where it cannot."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    name = getattr(value, "name", None)
    if type(value).__name__ == "dtype" and type(value).__module__.startswith("triton") and isinstance(name, str):
        return {"tl_dtype": name}
    return None


def _constexpr_value(value) -> object:
    if isinstance(value, dict):
        import triton.language as tl

        return tl.dtype(value["tl_dtype"])
    return value


def variant_of(kernel, grid: tuple, args: tuple, constexprs: dict) -> Variant | None:
    """The Variant of a recorded launch; None where a worker could not rebuild it (a kernel not reachable by
    its module and name, a CPU tensor, a value JSON cannot carry)."""
    fn = getattr(jit_function(kernel), "fn", None)
    module, name = getattr(fn, "__module__", None), getattr(fn, "__name__", None)
    if module is None or name is None or getattr(sys.modules.get(module), name, None) is not kernel:
        return None
    encoded, device = [], None
    for arg in args:
        if isinstance(arg, torch.Tensor):
            if not arg.is_cuda:
                return None
            device = arg.device.index if device is None else device
            encoded.append({"tensor": str(arg.dtype).removeprefix("torch."), "aligned": arg.data_ptr() % 16 == 0})
        elif arg is None or isinstance(arg, (bool, int, float, str)):
            encoded.append(arg)
        else:
            return None
    carried = {k: _constexpr(v) for k, v in constexprs.items()}
    if device is None or any(c is None and v is not None for c, v in zip(carried.values(), constexprs.values())):
        return None
    return Variant(module, name, tuple(int(g) for g in grid), tuple(encoded), tuple(sorted(carried.items())),
                   device)


def compile_variant(variant: Variant) -> float:
    """Compile one variant into Triton's cache without launching it (Triton's warmup); seconds taken."""
    kernel = getattr(importlib.import_module(variant.module), variant.name)
    # On the variant's device, and only while compiling: the caller's own process may compile small ones.
    on_device = torch.cuda.device(variant.device) if torch.cuda.is_available() else contextlib.nullcontext()

    def argument(a):
        if not isinstance(a, dict):
            return a
        dtype = getattr(torch, a["tensor"])
        if a["aligned"]:
            return dtype  # warmup stands a dtype in for an aligned tensor of it: nothing is allocated
        return torch.empty(2, dtype=dtype, device=f"cuda:{variant.device}")[1:]  # past a 16-byte boundary

    start = time.perf_counter()
    constexprs = {k: _constexpr_value(v) for k, v in variant.constexprs}
    with on_device:
        kernel.warmup(*map(argument, variant.args), grid=variant.grid, **constexprs)
    return time.perf_counter() - start


def _worker() -> None:
    """A worker's loop: one Variant per stdin line, one JSON answer per stdout line. The kernels' modules are
    imported first, before any variant comes (a worker may be started ahead of need)."""
    for name in ("scan_triton", "conv1d_triton"):
        try:
            importlib.import_module(f"{__package__}.{name}")
        except ImportError:  # a variant's own import will say what is missing
            pass
    for line in sys.stdin:
        try:
            answer = {"ok": True, "seconds": compile_variant(Variant.from_json(line))}
        except Exception as error:  # reported, not raised: the run compiles this one at its launch
            answer = {"ok": False, "error": f"{type(error).__name__}: {error}"}
        print(json.dumps(answer), flush=True)


# -- the parent's side ----------------------------------------------------------------------------------------


def enabled() -> bool:
    """Whether compile_ahead does anything here: a CUDA GPU, Triton, not its interpreter, not switched off."""
    if os.environ.get(AHEAD_ENV, "1") == "0" or interpreting():
        return False
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return torch.cuda.is_available()


def _marker(kernel, variant: Variant, args: tuple, constexprs: dict) -> Path:
    """A file beside Triton's cache that says this variant was compiled ahead: named by everything Triton's
    cache key depends on (the kernel's source hash, the specialization, Triton's version and TRITON_* settings,
    the GPU's architecture)."""
    import triton

    parts = (variant.module, variant.name, repr(specialization(kernel, args, constexprs)), triton.__version__,
             getattr(jit_function(kernel), "cache_key", ""), torch.cuda.get_device_capability(variant.device),
             sorted((k, v) for k, v in os.environ.items() if k.startswith("TRITON_") and k != "TRITON_CACHE_DIR"))
    digest = hashlib.sha256(repr(parts).encode()).hexdigest()[:32]
    return triton_cache_dir() / "seqmamba_ahead" / digest


def _worker_env() -> dict[str, str]:
    """The parent's environment, with its import path, so that a worker imports the same seqmamba."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p and Path(p).exists())
    return env


_started: list[subprocess.Popen] = []  # workers started ahead of need (start_workers), not yet given work


def _spawn(command: list[str] | None = None) -> subprocess.Popen | None:
    try:
        return subprocess.Popen(command or [sys.executable, "-m", __name__], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=_worker_env())
    except OSError as error:
        log.debug("compile ahead: no worker (%s)", error)
        return None


def _close(proc: subprocess.Popen) -> None:
    try:
        assert proc.stdin is not None
        proc.stdin.close()  # the worker's loop ends, and so does the worker
    except OSError:
        pass
    proc.wait()


def start_workers(workers: int | None = None) -> int:
    """Start the compile workers now, where nothing was compiled ahead on this machine yet (a fresh machine):
    a worker spends about 4 s importing torch and Triton, which then overlaps the caller's own start (CUDA,
    the model, the data) instead of delaying the first compile. The next `compile_ahead` uses them; unused
    ones end with the process. Returns how many were started.

    Example:
        >>> start_workers() if not enabled() else 0  # no GPU here: nothing to start
        0
    """
    if not enabled() or _started or (triton_cache_dir() / "seqmamba_ahead").exists():
        return 0
    for _ in range(workers or _default_workers(MAX_WORKERS)):
        proc = _spawn()
        if proc is not None:
            _started.append(proc)
    if _started:
        atexit.register(stop_workers)
    return len(_started)


def stop_workers() -> None:
    """End the workers start_workers started that no compile_ahead took (nothing to compile after all)."""
    while _started:
        _close(_started.pop())


def _default_workers(variants: int) -> int:
    """Half the CPU cores, shared among the processes of this machine under torchrun, at most MAX_WORKERS."""
    local_processes = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1))
    return max(1, min(variants, MAX_WORKERS, (os.cpu_count() or 2) // 2 // local_processes))


def compile_in_workers(variants: list[Variant], workers: int, command: list[str] | None = None) -> list[bool]:
    """Compile every variant in `workers` processes (those start_workers started first), each taking the next
    variant as it finishes one; the slow scan kernels go first. Returns, per variant, whether it compiled. A
    worker that dies loses only its current variant (compiled later at its launch)."""
    slow_first = sorted(range(len(variants)), key=lambda i: ("scan_fwd" not in variants[i].name,
                                                             "scan" not in variants[i].name))
    order = collections.deque(slow_first)
    done = [False] * len(variants)
    lock = threading.Lock()
    ready = [] if command else [_started.pop() for _ in range(min(len(_started), workers))]

    def serve(proc: subprocess.Popen | None) -> None:
        proc = proc or _spawn(command)
        if proc is None:
            return
        assert proc.stdin is not None and proc.stdout is not None
        try:
            while True:
                with lock:
                    if not order:
                        break
                    i = order.popleft()
                proc.stdin.write(variants[i].to_json() + "\n")
                proc.stdin.flush()
                answer = proc.stdout.readline()
                if not answer:
                    break  # the worker died
                reply = json.loads(answer)
                done[i] = bool(reply.get("ok"))
                if not done[i]:
                    log.debug("compile ahead: %s.%s: %s", variants[i].module, variants[i].name, reply.get("error"))
        except Exception as error:  # a lost worker costs only speed: its variants compile at their launch
            log.debug("compile ahead: worker lost (%s: %s)", type(error).__name__, error)
        finally:
            _close(proc)

    procs = ready + [None] * (max(1, workers) - len(ready))
    threads = [threading.Thread(target=serve, args=(proc,), daemon=True) for proc in procs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stop_workers()  # more were started than this needed
    return done


HEAVY_KERNELS = ("scan_fwd", "scan_bwd")  # the scan's full passes: 3-22 s a variant on the H100, the rest under 1 s


def heavy(variant: Variant) -> bool:
    """Whether a variant is one of the slow compiles that parallel workers are for."""
    return any(name in variant.name for name in HEAVY_KERNELS)


def _compile_here(variant: Variant) -> bool:
    """Compile one variant in this process; whether it compiled (a failure compiles again at its launch)."""
    try:
        compile_variant(variant)
    except Exception as error:  # reported, never raised: the launch compiles it then
        log.debug("compile ahead: %s.%s: %s", variant.module, variant.name, error)
        return False
    return True


def compile_ahead(run: Callable[[], object], workers: int | None = None) -> int:
    """Dry-run `run` with its kernel launches recorded, and compile the variants not compiled ahead before in
    parallel worker processes (small kernels alone, with no worker started yet: in this process); returns how
    many were compiled. Does nothing (and does not call run) where `enabled()` is false. An error inside the dry
    run ends it there: what it recorded is still compiled.

    Example:
        >>> compile_ahead(lambda: None)  # nothing launched: nothing to compile
        0
    """
    if not enabled():
        return 0
    with recording_launches() as launches:
        try:
            run()
        except Exception as error:  # garbage inputs may trip a check: keep what was recorded so far
            log.debug("compile ahead: the dry run stopped early (%s: %s)", type(error).__name__, error)
    todo: dict[Path, Variant] = {}
    for kernel, grid, args, constexprs in launches:
        variant = variant_of(kernel, grid, args, constexprs)
        if variant is None:
            continue
        marker = _marker(kernel, variant, args, constexprs)
        if marker not in todo and not marker.exists():
            todo[marker] = variant
    # The records hold the dry run's tensors, and the list is held by every autograd node whose backward records
    # where its forward did (ctx.recorded): emptied, those tensors and the dry run's autograd graph go now. Kept,
    # the graph's AccumulateGrad nodes (made on the default stream) outlived the dry run, and the Trainer's first
    # CUDA graph capture on its side stream failed on them (H100).
    launches.clear()
    if not todo:
        stop_workers()
        return 0
    start = time.perf_counter()
    if not _started and not any(heavy(v) for v in todo.values()):
        # Small kernels only (each well under a second): new workers (about 4 s of imports each, in parallel)
        # would cost more than compiling them here, one after another. On the H100 3 of them took 6.7 s in
        # workers, where compiled at their launches they had taken 1.9 s.
        log.info("compiling %d small GPU kernels before the first launch", len(todo))
        done = [_compile_here(v) for v in todo.values()]
    else:
        n = workers or _default_workers(len(todo))
        log.info("compiling %d GPU kernels in %d processes before the first launch (first use on this machine)",
                 len(todo), n)
        done = compile_in_workers(list(todo.values()), n)
    for marker, ok in zip(todo, done):
        if ok:
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
    log.info("compiled %d of %d GPU kernels ahead in %.1f s", sum(done), len(done), time.perf_counter() - start)
    return sum(done)


if __name__ == "__main__":
    _worker()
