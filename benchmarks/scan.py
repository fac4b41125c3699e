"""Selective-scan benchmark: time and memory of each backend, forward and forward+backward.

GPU (default when CUDA is present): shapes S1-S3 of the scan issue, N=16, B/C shared, D, z and a
delta bias with softplus, as the Mamba block calls it; triton and torch backends in bf16 and fp32,
timed with triton.testing.do_bench (median), plus a correctness check of triton against torch on
each shape.

CPU (`--cpu`): batch 1, dim 128, N 16, L 2048, float32, 2 threads: the torch backend against the
step-by-step loop (the reference backend) and mamba.py's Blelloch `pscan` (PyPI `mambapy`).

`--deterministic` (GPU): the cost of the deterministic backward (`selective_scan(..., deterministic=True)`: a
partial buffer per block of channels instead of atomic adds into dB and dC) at S1-S3 and two short shapes of
issue 22, bf16 and fp32: forward+backward ms and peak memory of each, and whether two backward passes on the
same inputs give the same bits.

    python benchmarks/scan.py --cpu --out docs/benchmarks/scan_cpu.md
    python benchmarks/scan.py --out docs/benchmarks/scan.md        # on a GPU machine
    python benchmarks/scan.py --deterministic --out docs/benchmarks/scan_deterministic.md   # GPU
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import statistics
import sys
import time
from functools import partial

import torch

from seqmamba.kernels import ScanDirection, selective_scan, selective_scan_bidirectional
from seqmamba.kernels.scan_tuning import ScanTuning, preset

GPU_SHAPES = {
    "S1": (2, 512, 131_072),
    "S2": (1, 256, 1_048_576),
    "S3": (32, 1024, 2_048),
}


def make_inputs(batch, dim, length, d_state, dtype, device, seed=0):
    g = torch.Generator(device="cpu").manual_seed(seed)

    def r(*s, scale=1.0):
        return (torch.randn(*s, generator=g) * scale).to(device=device, dtype=dtype)

    return dict(
        u=r(batch, dim, length), delta=r(batch, dim, length, scale=0.5),
        A=(-torch.rand(dim, d_state, generator=g) * 2 - 0.1).to(device=device, dtype=torch.float32),
        B=r(batch, d_state, length), C=r(batch, d_state, length),
        D=torch.ones(dim, device=device), z=r(batch, dim, length),
        delta_bias=torch.full((dim,), -2.0, device=device),
    )


def timed(fn, device) -> float:
    """Median milliseconds: do_bench on a GPU for fast calls, wall clock for slow ones and on CPU."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    fn()
    sync()
    start = time.perf_counter()
    fn()
    sync()
    once = (time.perf_counter() - start) * 1e3
    if device.type == "cuda" and once < 2000:
        from triton.testing import do_bench

        return float(do_bench(fn, warmup=max(25, once), rep=max(100, 5 * once), return_mode="median"))
    runs = []
    for _ in range(3 if once > 500 else max(15, int(2000 / max(once, 1e-3)))):
        start = time.perf_counter()
        fn()
        sync()
        runs.append((time.perf_counter() - start) * 1e3)
    return statistics.median(runs)


# The Triton scan's knobs as settings name them: ScanTuning's fields in upper case, as the tune log writes them.
KNOBS = tuple(field.name.upper() for field in dataclasses.fields(ScanTuning))


def parse_setting(text: str, program: str) -> dict[str, int]:
    """'KNOB=value,...' -> {KNOB: value}; a misspelt knob would otherwise set nothing and measure the preset."""
    setting = {}
    for item in filter(None, text.split(",")):
        name, _, value = item.partition("=")
        if name not in KNOBS or not value.lstrip("-").isdigit():
            sys.exit(f"{program}: setting {text!r}: {item!r} is not KNOB=integer with a knob of "
                     f"kernels/scan_tuning.py ({', '.join(KNOBS)})")
        setting[name] = int(value)
    return setting


def tuned(setting: dict[str, int], device: torch.device) -> ScanTuning:
    """The preset of `device` with the knobs of `setting` ({KNOB: value}) replaced."""
    return dataclasses.replace(preset(device), **{name.lower(): value for name, value in setting.items()})


def scan_fns(inputs, backend, reverse=False, scan=selective_scan):
    grads = {k: v.detach().clone().requires_grad_() for k, v in inputs.items()}

    def forward():
        with torch.no_grad():
            scan(**inputs, delta_softplus=True, reverse=reverse, backend=backend)

    def forward_backward():
        for v in grads.values():
            v.grad = None
        y = scan(**grads, delta_softplus=True, reverse=reverse, backend=backend)
        y.backward(torch.ones_like(y))

    return forward, forward_backward


def peak_memory(fn, device) -> float:
    if device.type != "cuda":
        return float("nan")
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    fn()
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - base) / 2**30


def minimal_gb(batch, dim, length, d_state, dtype) -> float:
    """Bytes a scan must move at least: read u, delta, z, B, C once and write y once."""
    size = torch.tensor([], dtype=dtype).element_size()
    return size * (4 * batch * dim * length + 2 * batch * d_state * length) / 1e9


def copy_gbs(device) -> float:
    """Device-to-device copy bandwidth (read + write bytes per second) of a 2 GiB buffer."""
    src = torch.empty(2**30, dtype=torch.int16, device=device)
    dst = torch.empty_like(src)
    ms = timed(lambda: dst.copy_(src), device)
    return 2 * src.numel() * src.element_size() / (ms / 1e3) / 1e9


SWEEP_LENGTHS = [2**k for k in range(12, 21)]


def length_sweep(backends, device, path) -> list[str]:
    """Batch 1, dim 256, bf16: forward and forward+backward ms against L, as CSV for the plot."""
    rows = ["backend,length,forward_ms,fwd_bwd_ms"]
    for length in SWEEP_LENGTHS:
        inputs = make_inputs(1, 256, length, 16, torch.bfloat16, device)
        for label, (backend, scan) in backends.items():
            fwd, fwd_bwd = scan_fns(inputs, backend, scan=scan)
            rows.append(f"{label},{length},{timed(fwd, device):.4f},{timed(fwd_bwd, device):.4f}")
            print(rows[-1], flush=True)
        del inputs
    with open(path, "w") as handle:
        handle.write("\n".join(rows) + "\n")
    return rows


def gpu_tables(args) -> str:
    device = torch.device("cuda")
    if args.copy_gbs is None:
        args.copy_gbs = copy_gbs(device)
    backends = {name: (name, selective_scan) for name in args.backends}
    if args.compare:
        from mamba_ssm_ref import load_extension, mamba_ssm_scan

        backends["mamba_ssm"] = ("mamba_ssm", partial(mamba_ssm_scan, load_extension(args.compare)))
    lines = [
        f"Device: {torch.cuda.get_device_name()}; torch {torch.__version__}; "
        f"triton {__import__('triton').__version__}; N=16, B/C shared, D, z, delta_bias, softplus.",
        "",
        f"Copy bandwidth for the % column: {args.copy_gbs:.0f} GB/s (device-to-device, read + write, measured"
        " in this run unless --copy-gbs was given).",
        "",
        "| shape | batch x dim x L | backend | dtype | forward ms | fwd GB/s (% of copy) | fwd+bwd ms "
        "| fwd+bwd peak GiB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    times = {}
    for name, (batch, dim, length) in GPU_SHAPES.items():
        for dtype in (torch.bfloat16, torch.float32):
            inputs = make_inputs(batch, dim, length, 16, dtype, device)
            for label, (backend, scan) in backends.items():
                fwd, fwd_bwd = scan_fns(inputs, backend, scan=scan)
                t_f, t_fb = timed(fwd, device), timed(fwd_bwd, device)
                times[name, str(dtype)[6:], label] = (t_f, t_fb)
                mem = peak_memory(fwd_bwd, device)
                gbs = minimal_gb(batch, dim, length, 16, dtype) / (t_f / 1e3)
                row = (f"| {name} | {batch} x {dim} x {length:,} | {label} | {str(dtype)[6:]} | {t_f:.2f} | "
                       f"{gbs:.0f} ({100 * gbs / args.copy_gbs:.0f}%) | {t_fb:.2f} | {mem:.2f} |")
                print(row, flush=True)
                lines.append(row)
            del inputs
            torch.cuda.empty_cache()
    if "mamba_ssm" in backends and "triton" in backends:
        lines += ["", "Ratio: mamba_ssm time / triton time (above 1: triton is faster).", "",
                  "| shape | dtype | forward | fwd+bwd |", "|---|---|---|---|"]
        for (name, dtype, label), (t_f, t_fb) in times.items():
            if label == "triton":
                m_f, m_fb = times[name, dtype, "mamba_ssm"]
                lines.append(f"| {name} | {dtype} | {m_f / t_f:.2f} | {m_fb / t_fb:.2f} |")
                print(lines[-1], flush=True)
    if args.sweep_csv:
        length_sweep(backends, device, args.sweep_csv)
    lines += ["", "Correctness on the benchmark shapes, float32 inputs: triton against the torch backend",
              "(itself tested against the step-by-step reference), max |diff| / max |value|.", "",
              "| shape | reverse | y | du | ddelta | dA | dB | dC |", "|---|---|---|---|---|---|---|---|"]
    for name, (batch, dim, length) in GPU_SHAPES.items():
        for reverse in (False, True):
            inputs = make_inputs(batch, dim, length, 16, torch.float32, device, seed=1)
            results = {}
            for backend in ("torch", "triton"):
                x = {k: v.detach().clone().requires_grad_() for k, v in inputs.items()}
                y = selective_scan(**x, delta_softplus=True, reverse=reverse, backend=backend)
                w = torch.randn(y.shape, generator=torch.Generator(device=device).manual_seed(2), device=device)
                (y * w).sum().backward()
                results[backend] = [y.detach()] + [x[k].grad for k in ("u", "delta", "A", "B", "C")]
                del x, y
            errs = [((a - b).abs().max() / a.abs().max()).item() for a, b in zip(results["torch"], results["triton"])]
            row = f"| {name} | {reverse} | " + " | ".join(f"{e:.1e}" for e in errs) + " |"
            print(row, flush=True)
            lines.append(row)
            del results, inputs
            torch.cuda.empty_cache()
    return "\n".join(lines)


# The deterministic backward's table: S1-S3 and the short shapes where host time and the extra sum weigh most.
DETERMINISM_SHAPES = {**GPU_SHAPES, "b64 L256": (64, 512, 256), "b1 L4096": (1, 256, 4_096)}
GRAD_NAMES = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")


def scan_call(deterministic: bool, **x) -> tuple[torch.Tensor, ...]:
    return (selective_scan(**x, delta_softplus=True, backend="triton", deterministic=deterministic),)


def bidirectional_call(deterministic: bool, **x) -> tuple[torch.Tensor, ...]:
    """Both directions of a bidirectional block over the same inputs, in one launch per pass."""
    fwd = ScanDirection(*(x[k] for k in ScanDirection._fields))
    return selective_scan_bidirectional(fwd, fwd, x["z"], delta_softplus=True, backend="triton",
                                        deterministic=deterministic)


def leaves(inputs: dict) -> dict:
    return {k: v.detach().clone().requires_grad_() for k, v in inputs.items()}


def backward_once(x: dict, call, deterministic: bool, dys=None) -> dict:
    """The gradients of every leaf in x from one forward+backward (output gradients `dys`, default ones)."""
    for v in x.values():
        v.grad = None
    ys = call(deterministic, **x)
    torch.autograd.backward(ys, dys or [torch.ones_like(y) for y in ys])
    return {k: x[k].grad for k in GRAD_NAMES}


def repeats(inputs: dict, call, deterministic: bool) -> tuple[str, dict]:
    """Two backward passes on the same inputs and random output gradients: the gradients that differ in any bit
    (or 'same bits'), and the first pass's gradients."""
    with torch.no_grad():
        shapes = [y.shape for y in call(deterministic, **inputs)]
    device = inputs["u"].device
    g = torch.Generator(device=device).manual_seed(3)
    dys = [torch.randn(s, generator=g, device=device).to(inputs["u"].dtype) for s in shapes]
    first, second = (backward_once(leaves(inputs), call, deterministic, dys) for _ in range(2))
    differ = [k for k in GRAD_NAMES if not torch.equal(first[k], second[k])]
    return (", ".join(differ) + " differ") if differ else "same bits", first


def determinism_table(args, device=None, shapes=DETERMINISM_SHAPES) -> str:
    """Default (atomic) against deterministic backward: ms, peak GiB, repeats, and how far apart they are.
    (device and shapes: a test's small run on a CPU under TRITON_INTERPRET=1.)"""
    from seqmamba.kernels.scan_bidirectional import fuses

    device = device or torch.device("cuda")
    name = torch.cuda.get_device_name() if device.type == "cuda" else "CPU (Triton interpreter)"
    calls = {"scan": scan_call, "bidirectional": bidirectional_call}
    lines = [
        f"Device: {name}; torch {torch.__version__}; "
        f"triton {__import__('triton').__version__}; N=16, B/C shared, D, z, delta_bias, softplus. Forward+backward"
        " ms (median) and peak GiB of the default backward (atomic adds into dB, dC) and of deterministic=True;"
        " 'twice': two backward passes on the same inputs, bit for bit; the last column: how far the two"
        " backwards' dB are apart (summation order only).",
        "",
        "| shape | batch x dim x L | call | dtype | default ms | deterministic ms | cost | default GiB "
        "| deterministic GiB | default twice | deterministic twice | max dB gap / max dB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, (batch, dim, length) in shapes.items():
        for dtype in (torch.bfloat16, torch.float32):
            inputs = make_inputs(batch, dim, length, 16, dtype, device)
            for label in args.calls:
                call = calls[label]
                if label == "bidirectional" and not fuses(inputs["u"], "triton"):
                    continue  # two scan calls there: the scan's row says it
                cells = []
                for deterministic in (False, True):
                    step = partial(backward_once, leaves(inputs), call, deterministic)
                    cells.append((timed(step, device), peak_memory(step, device)))
                (t_def, m_def), (t_det, m_det) = cells
                rep_def, g_def = repeats(inputs, call, False)
                rep_det, g_det = repeats(inputs, call, True)
                ref = g_def["B"].double()
                gap = ((ref - g_det["B"].double()).abs().max() / ref.abs().max()).item()
                row = (f"| {name} | {batch} x {dim} x {length:,} | {label} | {str(dtype)[6:]} | {t_def:.2f} | "
                       f"{t_det:.2f} | {100 * (t_det / t_def - 1):+.0f}% | {m_def:.2f} | {m_det:.2f} | {rep_def} | "
                       f"{rep_det} | {gap:.1e} |")
                print(row, flush=True)
                lines.append(row)
                del g_def, g_det, ref
            del inputs
            if device.type == "cuda":
                torch.cuda.empty_cache()
    return "\n".join(lines)


def sequential_loop(u, delta, A, B, C, D, delta_bias):
    """The recurrence as a plain PyTorch loop over L (precomputed decays, unbind for a lean backward)."""
    import torch.nn.functional as F

    dt = F.softplus(delta + delta_bias[:, None])  # (batch, dim, L)
    decay = torch.exp(dt.unsqueeze(-1) * A[:, None, :])  # (batch, dim, L, N)
    inp = (dt * u).unsqueeze(-1) * B.transpose(1, 2).unsqueeze(1)  # (batch, dim, L, N)
    h = u.new_zeros(u.shape[0], u.shape[1], A.shape[1])
    ys = []
    for a_t, x_t, c_t in zip(decay.unbind(2), inp.unbind(2), C.unbind(-1)):
        h = a_t * h + x_t
        ys.append(torch.einsum("bdn,bn->bd", h, c_t))
    return torch.stack(ys, -1) + D[:, None] * u


def mambapy_scan(x, delta, A, B, C, D):
    """The selective scan as mamba.py writes it around its Blelloch pscan; inputs in its (B, L, D) layout."""
    from mambapy.pscan import pscan

    delta_a = torch.exp(delta.unsqueeze(-1) * A)  # (batch, L, dim, N)
    bx = delta.unsqueeze(-1) * B.unsqueeze(2) * x.unsqueeze(-1)  # (batch, L, dim, N)
    hs = pscan(delta_a, bx)
    return (hs @ C.unsqueeze(-1)).squeeze(3) + D * x


def cpu_table(args) -> str:
    """Each cell is the median over `--repeat` rounds of each implementation's median time."""
    rounds = [cpu_round(args) for _ in range(args.repeat)]
    rows = {key: tuple(statistics.median(r[key][i] for r in rounds) for i in range(2)) for key in rounds[0]}
    return cpu_markdown(rows, args)


def cpu_round(args) -> dict:
    torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    batch, dim, length, n = 1, 128, 2048, 16
    inputs = make_inputs(batch, dim, length, n, torch.float32, device)
    del inputs["z"]  # mamba.py's scan has no gate: compare like with like
    rows = {}
    fwd, fwd_bwd = scan_fns(inputs, "torch")
    rows["torch"] = (timed(fwd, device), timed(fwd_bwd, device))
    loop_grads = {k: v.clone().requires_grad_() for k, v in inputs.items()}

    def loop_fwd():
        with torch.no_grad():
            sequential_loop(**inputs)

    def loop_fwd_bwd():
        for v in loop_grads.values():
            v.grad = None
        sequential_loop(**loop_grads).sum().backward()

    rows["loop"] = (timed(loop_fwd, device), timed(loop_fwd_bwd, device))
    fwd, fwd_bwd = scan_fns(inputs, "reference")
    rows["reference"] = (timed(fwd, device), timed(fwd_bwd, device))
    try:
        import torch.nn.functional as F

        layout = dict(
            x=inputs["u"].transpose(1, 2).contiguous(),
            delta=F.softplus(inputs["delta"] + inputs["delta_bias"][:, None]).transpose(1, 2).contiguous(),
            A=inputs["A"], B=inputs["B"].transpose(1, 2).contiguous(), C=inputs["C"].transpose(1, 2).contiguous(),
            D=inputs["D"],
        )
        grads = {k: v.clone().requires_grad_() for k, v in layout.items()}

        def mp_fwd():
            with torch.no_grad():
                mambapy_scan(**layout)

        def mp_fwd_bwd():
            for v in grads.values():
                v.grad = None
            mambapy_scan(**grads).sum().backward()

        rows["mambapy pscan"] = (timed(mp_fwd, device), timed(mp_fwd_bwd, device))
    except ImportError:
        print("mambapy is not installed: pip install mambapy", file=sys.stderr)
    return rows


def cpu_markdown(rows: dict, args) -> str:
    batch, dim, length, n = 1, 128, 2048, 16
    ref_f, ref_fb = rows["loop"]
    lines = [
        f"CPU: {platform.processor() or platform.machine()}, {args.threads} threads, torch {torch.__version__}; "
        f"batch {batch}, dim {dim}, N {n}, L {length}, float32, delta_bias + softplus, D; "
        f"median of {args.repeat} rounds of medians.",
        "",
        "| implementation | forward ms | fwd+bwd ms | forward speed-up vs loop | fwd+bwd speed-up vs loop |",
        "|---|---|---|---|---|",
    ]
    labels = {
        "torch": "seqmamba torch backend (chunked)",
        "loop": "sequential PyTorch loop (precomputed decays, unbind)",
        "reference": "seqmamba reference backend (readable step-by-step loop)",
    }
    for key, (t_f, t_fb) in rows.items():
        row = f"| {labels.get(key, key)} | {t_f:.1f} | {t_fb:.1f} | {ref_f / t_f:.1f}x | {ref_fb / t_fb:.1f}x |"
        print(row, flush=True)
        lines.append(row)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cpu", action="store_true", help="the CPU comparison instead of the GPU shapes")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3, help="CPU: rounds of the whole comparison")
    parser.add_argument("--backends", nargs="+", default=["triton", "torch"])
    parser.add_argument("--out", help="write the markdown table here as well")
    parser.add_argument("--compare", metavar="SDIST",
                        help="also time mamba_ssm's CUDA scan, compiled from this mamba_ssm sdist (.tar.gz)")
    parser.add_argument("--copy-gbs", type=float, default=None,
                        help="device-to-device copy bandwidth, GB/s, for the %% column (default: measured)")
    parser.add_argument("--deterministic", action="store_true",
                        help="GPU: the deterministic backward's cost and repeatability instead of the backend table")
    parser.add_argument("--calls", nargs="+", default=["scan", "bidirectional"], choices=["scan", "bidirectional"],
                        help="--deterministic: which calls to measure (default both)")
    parser.add_argument("--sweep-csv", help="also time batch 1, dim 256, bf16 at L = 4k..1M; write CSV here"
                        " (plot it with benchmarks/scan_plot.py)")
    args = parser.parse_args()
    if not args.cpu and not torch.cuda.is_available():
        parser.error("no CUDA device: run with --cpu")
    table = cpu_table(args) if args.cpu else determinism_table(args) if args.deterministic else gpu_tables(args)
    if args.out:
        with open(args.out, "w") as handle:
            handle.write(table + "\n")


if __name__ == "__main__":
    main()
