"""Every fast backend against the reference scan: values, last state and all gradients."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scan_cases import DEVICE, Case, assert_close, run, tuning

from seqmamba.kernels import selective_scan
from seqmamba.kernels.scan import triton_usable

BACKENDS = ["torch"] + (["triton"] if triton_usable(DEVICE) else [])


CASES = {
    "default": Case(),
    "L=1": Case(length=1),
    "odd-L-many-tiles": Case(length=101, dim=4, d_state=3),
    "tile-boundary": Case(length=64, dim=3),
    "three-chunks": Case(length=200, dim=3, d_state=3, batch=1),
    "three-chunks-reverse": Case(length=200, dim=3, d_state=3, batch=1, reverse=True, groups=3),
    "groups": Case(dim=8, groups=2, length=45),
    "groups=dim": Case(dim=4, groups=4, length=19),
    "reverse": Case(reverse=True, length=70),
    "reverse-groups": Case(reverse=True, groups=3, length=33),
    "bare": Case(has_D=False, has_z=False, has_bias=False, softplus=False, has_h0=False),
    "bare-reverse": Case(has_D=False, has_z=False, has_bias=False, softplus=False, has_h0=False, reverse=True),
    "N=1": Case(d_state=1, length=20),
    "N=16-batch1": Case(batch=1, d_state=16, dim=3, length=40),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", list(CASES))
def test_backend_matches_reference_float64(backend, name):
    case = CASES[name]
    expected = run(case, case.inputs(), "reference")
    got = run(case, case.inputs(), backend)
    assert_close(expected, got, rtol=1e-10, atol=1e-10, label=f"{backend}/{name}")


@pytest.mark.parametrize("chunks", [(1, 1), (3, 2), (5, 1), (2, 7), (16, 4)])
@pytest.mark.parametrize("reverse", [False, True])
def test_torch_backend_across_chunks_and_segments(chunks, reverse):
    """Values and gradients whatever the chunk length c and chunks per segment n."""
    from seqmamba.kernels import scan_torch

    case = Case(length=41, groups=2, dim=4, reverse=reverse)
    expected = run(case, case.inputs(seed=3), "reference")
    real = scan_torch.selective_scan_torch

    def with_plan(*args, **kwargs):
        return real(*args, **kwargs, chunk_len=chunks[0], chunks_per_segment=chunks[1])

    import seqmamba.kernels.scan as scan_module

    original = scan_module.selective_scan_torch
    scan_module.selective_scan_torch = with_plan
    try:
        got = run(case, case.inputs(seed=3), "torch")
    finally:
        scan_module.selective_scan_torch = original
    assert_close(expected, got, rtol=1e-10, atol=1e-10, label=f"c,n={chunks}")


LOW_PRECISION = {torch.float32: 1e-4, torch.float16: 3e-2, torch.bfloat16: 6e-2}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", list(LOW_PRECISION), ids=str)
def test_low_precision_inputs(backend, dtype):
    case = Case(length=50, groups=2, dim=4)
    expected = run(case, case.inputs(), "reference")
    got = run(case, case.inputs(dtype=dtype), backend)
    assert got["y"].dtype == dtype
    assert got["last"].dtype == torch.float32  # the state is float32 whatever the inputs
    for key, value in got.items():
        if key.startswith("d"):
            assert value.dtype == dtype, f"{key} should keep its input's dtype"
    assert_close(expected, got, rtol=LOW_PRECISION[dtype], atol=LOW_PRECISION[dtype], label=f"{backend}/{dtype}")


@pytest.mark.parametrize("backend", BACKENDS)
def test_only_some_inputs_need_grad(backend):
    case = Case(length=23)
    full = case.inputs()
    partial = {k: (v.detach().requires_grad_(k in ("u", "B")) if v is not None else None) for k, v in full.items()}
    y = selective_scan(**partial, delta_softplus=True, backend=backend)
    du, dB = torch.autograd.grad(y.sum(), [partial["u"], partial["B"]])
    y_ref = selective_scan(**full, delta_softplus=True, backend="reference")
    du_ref, dB_ref = torch.autograd.grad(y_ref.sum(), [full["u"], full["B"]])
    torch.testing.assert_close(du, du_ref)
    torch.testing.assert_close(dB, dB_ref)


@pytest.mark.parametrize("backend", BACKENDS)
def test_no_grad_inference(backend):
    case = Case(length=30)
    with torch.no_grad():
        y = selective_scan(**case.inputs(), delta_softplus=True, backend=backend)
        y_ref = selective_scan(**case.inputs(), delta_softplus=True, backend="reference")
    torch.testing.assert_close(y, y_ref)


@pytest.mark.parametrize("backend", BACKENDS)
def test_state_carries_across_calls(backend):
    """Scanning [0, L) in two calls with the carried state equals one call: chunked inference."""
    case = Case(length=40, has_h0=False)
    x = {k: (v.detach() if v is not None else None) for k, v in case.inputs().items()}
    whole, last = selective_scan(**x, delta_softplus=True, return_last_state=True, backend=backend)
    cut = 17
    first = {k: (v[..., :cut] if k in ("u", "delta", "z", "B", "C") else v) for k, v in x.items()}
    second = {k: (v[..., cut:] if k in ("u", "delta", "z", "B", "C") else v) for k, v in x.items()}
    y1, h = selective_scan(**first, delta_softplus=True, return_last_state=True, backend=backend)
    second["initial_state"] = h
    y2, last2 = selective_scan(**second, delta_softplus=True, return_last_state=True, backend=backend)
    torch.testing.assert_close(torch.cat([y1, y2], -1), whole, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(last2, last, rtol=1e-9, atol=1e-9)


def _saved_elements(backend: str, case: Case) -> int:
    inputs = case.inputs(dtype=torch.float32)
    sizes = []

    def pack(t):
        sizes.append(t.numel())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        selective_scan(**inputs, delta_softplus=True, backend=backend)
    return sum(sizes)


@pytest.mark.parametrize("backend", BACKENDS)
def test_backward_memory_is_linear_in_length_not_times_state(backend):
    """Saved activations are O(batch*dim*L): never the (batch, dim, L, N) states."""
    case = Case(batch=1, dim=4, length=256, d_state=16, has_h0=False)
    saved = _saved_elements(backend, case)
    per_step_states = case.batch * case.dim * case.length * case.d_state
    assert saved < per_step_states, f"{backend} saved {saved} elements, states are {per_step_states}"


@pytest.mark.parametrize(("length", "expected"), [(5, "reference"), (12, "reference"), (13, "torch"), (64, "torch")])
def test_auto_backend_on_cpu_depends_on_length(monkeypatch, length, expected):
    """Short CPU sequences take the step-by-step recurrence (cheaper there), longer ones the chunked scan."""
    import seqmamba.kernels.scan as scan_module

    calls = []
    for name, label in (("selective_scan_torch", "torch"), ("selective_scan_ref", "reference")):
        real = getattr(scan_module, name)
        monkeypatch.setattr(scan_module, name, lambda *a, _real=real, _label=label, **k: calls.append(_label)
                            or _real(*a, **k))
    case = Case(length=length)
    selective_scan(**case.inputs(device=torch.device("cpu")), backend="auto")
    assert calls == [expected]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    batch=st.integers(1, 3), dim_per_group=st.integers(1, 3), groups=st.sampled_from([None, 1, 2]),
    length=st.integers(1, 80), d_state=st.integers(1, 6), reverse=st.booleans(),
    has_h0=st.booleans(), softplus=st.booleans(),
)
def test_torch_backend_random_shapes(batch, dim_per_group, groups, length, d_state, reverse, has_h0, softplus):
    dim = dim_per_group * (groups or 1)
    case = Case(batch=batch, dim=dim, length=length, d_state=d_state, groups=groups, reverse=reverse,
                has_h0=has_h0, softplus=softplus)
    assert_close(run(case, case.inputs(), "reference"), run(case, case.inputs(), "torch"), 1e-10, 1e-10)


@pytest.mark.skipif(
    "triton" not in BACKENDS,
    reason="the Triton backend needs the triton package (Linux), and CUDA or TRITON_INTERPRET=1",
)
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(length=st.integers(1, 70), d_state=st.integers(1, 9), groups=st.sampled_from([None, 2]),
       reverse=st.booleans())
def test_triton_backend_random_shapes(length, d_state, groups, reverse):
    case = dataclasses.replace(Case(dim=4), length=length, d_state=d_state, groups=groups, reverse=reverse)
    assert_close(run(case, case.inputs(), "reference"), run(case, case.inputs(), "triton"), 1e-10, 1e-10)


@pytest.mark.skipif("triton" not in BACKENDS, reason="needs triton (CUDA, or TRITON_INTERPRET=1)")
@pytest.mark.parametrize("reverse", [False, True])
def test_triton_knobs_unrolled_backward_and_its_own_block(reverse):
    """The non-default knobs still compute the same scan: the backward's loop over states taken 2 at a
    time (3 states: the last trip is half masked), and a backward channel block (2) smaller than the
    forward's (8), with groups."""
    knobs = tuning(bwd_states_per_iter=2, bwd_tile_values=32)
    case = Case(dim=16, groups=2, length=150, d_state=3, batch=1, reverse=reverse)
    expected = run(case, case.inputs(seed=5), "reference")
    got = run(case, case.inputs(seed=5), "triton", tuning=knobs)
    assert_close(expected, got, rtol=1e-10, atol=1e-10, label=f"knobs reverse={reverse}")


@pytest.mark.skipif("triton" not in BACKENDS, reason="needs triton (CUDA, or TRITON_INTERPRET=1)")
@pytest.mark.parametrize(("fwd_steps", "bwd_steps"), [(8, 8), (4, 32)])
@pytest.mark.parametrize("reverse", [False, True])
def test_triton_forward_and_backward_tiles_of_other_lengths(fwd_steps, bwd_steps, reverse):
    """The forward saves states for the backward every bwd_steps // fwd_steps tiles: every ratio (1, and
    8 with 4-step tiles, as float32 inputs get on a GPU) gives the same scan."""
    knobs = tuning(block_l=fwd_steps, bwd_block_l=bwd_steps)
    case = Case(dim=5, length=90, d_state=3, batch=1, reverse=reverse)
    expected = run(case, case.inputs(seed=7), "reference")
    got = run(case, case.inputs(seed=7), "triton", tuning=knobs)
    assert_close(expected, got, rtol=1e-10, atol=1e-10, label=f"tiles {fwd_steps}/{bwd_steps} reverse={reverse}")


@pytest.mark.skipif("triton" not in BACKENDS, reason="needs triton (CUDA, or TRITON_INTERPRET=1)")
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize(("bwd_target", "chunks"), [(2, (3, 2)), (0, (3, 3))])
def test_triton_backward_in_chunks_of_its_own(reverse, bwd_target, chunks):
    """With bwd_target_programs set the backward cuts L into other chunks than the forward (2 against 3),
    with its own summary and carry; with 0 it shares the forward's. The gradients do not change."""
    from seqmamba.kernels import scan_triton

    # One program each way: the targets are the chunks (on a GPU; the interpreter's are 3 and 2 anyway).
    # (bwd_min_chunk_steps 128 would give one backward chunk at L 200 on a GPU.)
    knobs = tuning(min_chunk_steps=1, bwd_min_chunk_steps=1, target_programs=3, bwd_target_programs=bwd_target)
    case = Case(length=200, dim=3, d_state=3, batch=1, reverse=reverse)
    plan = scan_triton._Plan(case.inputs()["u"], torch.zeros(case.dim, case.d_state), 1, 1, knobs)
    assert (plan.n_chunks, plan.bwd_n_chunks) == chunks
    expected = run(case, case.inputs(seed=11), "reference")
    got = run(case, case.inputs(seed=11), "triton", tuning=knobs)
    assert_close(expected, got, rtol=1e-10, atol=1e-10, label=f"own backward chunks reverse={reverse}")


@pytest.mark.skipif("triton" not in BACKENDS, reason="needs triton (CUDA, or TRITON_INTERPRET=1)")
def test_triton_forward_shrinks_its_block_before_chunking():
    """min_block_d: a smaller block of channels (and warps) where that fills target_programs programs'
    warps; the scan is unchanged, and block_d stays where even the smallest block falls short."""
    from seqmamba.kernels import scan_triton

    knobs = tuning(block_d=8, num_warps=4, min_block_d=2)
    case = Case(dim=8, batch=2, length=60, d_state=3)
    A = torch.zeros(case.dim, case.d_state)

    def block(target):
        plan = scan_triton._Plan(case.inputs()["u"], A, 1, 1, dataclasses.replace(knobs, target_programs=target))
        blocks = plan.blocks()
        return blocks["BLOCK_D"], blocks["num_warps"]

    # batch 2 x dim 8: 2 programs of 8 channels (4 warps each), 4 of 4 (2), 8 of 2 (1): 8, 8, 8 warps.
    assert block(1) == (8, 4)  # 2 programs already enough
    assert block(2) == (8, 4)
    assert block(3) == (8, 4)  # 12 warps wanted: no block gives them
    knobs = dataclasses.replace(knobs, num_warps=1)  # now 2, 4 and 8 warps (one per program)
    assert block(2) == (8, 1)
    assert block(3) == (4, 1)  # the largest block that is enough
    assert block(5) == (2, 1)
    assert block(9) == (8, 1)
    expected = run(case, case.inputs(seed=13), "reference")
    got = run(case, case.inputs(seed=13), "triton", tuning=dataclasses.replace(knobs, target_programs=5))
    assert_close(expected, got, rtol=1e-10, atol=1e-10, label="shrunk forward block")


@pytest.mark.skipif("triton" not in BACKENDS, reason="needs triton (CUDA, or TRITON_INTERPRET=1)")
@pytest.mark.parametrize("prefetch", [0, 1])
@pytest.mark.parametrize("reverse", [False, True])
def test_triton_forward_with_and_without_loading_a_tile_ahead(prefetch, reverse):
    """prefetch: the forward loads the next tile's inputs one trip ahead, across chunk ends (3 chunks here),
    or each tile as it works it; the scan and its gradients are the same either way."""
    from seqmamba.kernels import scan_triton

    # 3 chunks on a GPU too, as under the interpreter
    knobs = tuning(prefetch=prefetch, min_chunk_steps=1, target_programs=3)
    case = Case(length=200, dim=3, d_state=3, batch=1, reverse=reverse)
    plan = scan_triton._Plan(case.inputs()["u"], torch.zeros(case.dim, case.d_state), 1, 1, knobs)
    assert (plan.n_chunks, plan.prefetch) == (3, bool(prefetch))
    expected = run(case, case.inputs(seed=13), "reference")
    got = run(case, case.inputs(seed=13), "triton", tuning=knobs)
    assert_close(expected, got, rtol=1e-10, atol=1e-10, label=f"prefetch={prefetch} reverse={reverse}")


@pytest.mark.skipif("triton" not in BACKENDS, reason="needs triton (CUDA, or TRITON_INTERPRET=1)")
@pytest.mark.parametrize(("ahead", "keep"), [(0, 0), (1, 0), (1, 1)])
@pytest.mark.parametrize("reverse", [False, True])
def test_triton_forward_loading_b_and_c_a_state_ahead(ahead, keep, reverse):
    """bc_ahead / bc_keep (4-step tiles, as float32 inputs get on a GPU): B and C of the next state are loaded
    before the current one is worked, the padded state beyond d_state (3 of 4) included; same scan."""
    from seqmamba.kernels import scan_triton

    knobs = tuning(block_l=4, bwd_block_l=16, bc_ahead=ahead, bc_keep=keep)
    case = Case(length=90, dim=5, d_state=3, batch=2, reverse=reverse)
    plan = scan_triton._Plan(case.inputs()["u"], torch.zeros(case.dim, case.d_state), 1, 1, knobs)
    assert (plan.blocks()["BC_AHEAD"], plan.blocks()["BC_KEEP"]) == (bool(ahead), bool(keep))
    expected = run(case, case.inputs(seed=17), "reference")
    got = run(case, case.inputs(seed=17), "triton", tuning=knobs)
    assert_close(expected, got, rtol=1e-10, atol=1e-10, label=f"ahead={ahead} keep={keep} reverse={reverse}")


def test_triton_launch_plan_is_made_once_per_sizes_and_knobs():
    """The plan is cached by sizes and tuning: the same sizes and knob values reuse it, other sizes or a
    changed knob (as benchmarks/scan_tune.py and these tests set them) make a new one."""
    from seqmamba.kernels import scan_triton

    u, A = torch.zeros(2, 8, 100), torch.zeros(8, 4)
    knobs = tuning()
    first = scan_triton._plan(u, A, 1, 1, knobs)
    assert scan_triton._plan(torch.ones(2, 8, 100), A, 1, 1, knobs) is first
    assert scan_triton._plan(u, A, 1, 1, dataclasses.replace(knobs)) is first  # equal knobs, another object
    assert scan_triton._plan(torch.zeros(2, 8, 101), A, 1, 1, knobs) is not first
    assert scan_triton._plan(u, A, 1, 2, knobs) is not first
    more = dataclasses.replace(knobs, target_programs=knobs.target_programs + 1)
    assert scan_triton._plan(u, A, 1, 1, more) is not first
    assert scan_triton._plan(u, A, 1, 1, dataclasses.replace(knobs, block_l=4, bwd_block_l=16)).block_l == 4


@pytest.mark.skipif("triton" not in BACKENDS, reason="needs triton (CUDA, or TRITON_INTERPRET=1)")
@pytest.mark.parametrize("unroll", [1, 2])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize(("steps", "length", "tiles"), [((4, 16), 90, (23, 8)), ((4, 4), 44, (11, 4))])
def test_triton_forward_two_short_tiles_a_trip(unroll, reverse, steps, length, tiles):
    """short_tile_unroll: 4-step tiles (float32 on a GPU) two a trip of the forward's loop. The last of 3
    chunks has an odd number of tiles, so its last trip runs past the sequence's end; with 4-step backward
    tiles that tile would save a state for the backward, out of bounds. Values, last state and gradients are
    those of one tile a trip."""
    from seqmamba.kernels import scan_triton

    # 3 chunks on a GPU too, as under the interpreter: 2 programs (batch 2, one block of channels) x 3
    knobs = tuning(block_l=steps[0], bwd_block_l=steps[1], short_tile_unroll=unroll, min_chunk_steps=1,
                   target_programs=6)
    case = Case(length=length, dim=3, d_state=3, batch=2, reverse=reverse)
    plan = scan_triton._Plan(case.inputs()["u"], torch.zeros(case.dim, case.d_state), 1, 1, knobs)
    assert (plan.n_tiles, plan.tiles_per_chunk, plan.n_chunks, plan.unroll) == (*tiles, 3, unroll)
    expected = run(case, case.inputs(seed=19), "reference")
    got = run(case, case.inputs(seed=19), "triton", tuning=knobs)
    assert_close(expected, got, rtol=1e-10, atol=1e-10, label=f"unroll={unroll} reverse={reverse} steps={steps}")


def test_triton_forward_unrolls_only_whole_trips_per_chunk(monkeypatch):
    """Where a chunk's tiles are not whole trips, a trip would run into the next chunk: one tile a trip."""
    from seqmamba.kernels import scan_triton

    monkeypatch.setattr(scan_triton, "interpreting", lambda: True)  # 3 chunks, on a GPU too
    knobs = tuning(block_l=4, bwd_block_l=4)  # 1 tile per backward tile; 2 short tiles a trip
    A = torch.zeros(1, 2)
    for length, per_chunk, unroll in ((48, 4, 2), (60, 5, 1), (4, 1, 2)):  # 12, 15 tiles; 1, in one chunk
        plan = scan_triton._Plan(torch.zeros(1, 1, length), A, 1, 1, knobs)
        assert (plan.tiles_per_chunk, plan.unroll) == (per_chunk, unroll), length


@pytest.mark.skipif(not torch.cuda.is_available() or torch.version.hip is not None,
                    reason="the approximate log2 is PTX: needs an NVIDIA GPU")
@pytest.mark.parametrize("bc_dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("reverse", [False, True])
def test_triton_fast_softplus_against_exact(reverse, bc_dtype):
    """fast_softplus in every kernel (float32 work, 3 chunks so both summaries run; bf16 B and C so that the
    forward reads words and takes it too): the softplus itself within 1e-6 of float64 from -30 to 30, and
    values, last state and gradients as close to the reference as the exact softplus gets them."""
    import triton
    import triton.language as tl

    from seqmamba.kernels import scan_triton
    from seqmamba.kernels.scan_triton_common import softplus

    @triton.jit
    def softplus_kernel(X, Y, FAST: tl.constexpr, BLOCK: tl.constexpr):
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        tl.store(Y + offs, softplus(tl.load(X + offs), FAST))

    x = torch.linspace(-30, 30, 1 << 16, device=DEVICE)
    fast = torch.empty_like(x)
    softplus_kernel[(x.numel() // 1024,)](x, fast, True, 1024)
    assert (fast.double() - torch.nn.functional.softplus(x.double())).abs().max() < 1e-6

    knobs = tuning(min_chunk_steps=1, target_programs=6, bwd_target_programs=0)
    case = Case(length=300, dim=3, d_state=4, batch=2, reverse=reverse)
    plan = scan_triton._Plan(case.inputs(dtype=torch.float32)["u"], torch.zeros(case.dim, case.d_state), 1, 1,
                             knobs)
    assert (plan.n_chunks, plan.bwd_n_chunks) == (3, 3)

    def inputs(dtype):  # B and C hold bf16 values in either case, stored as bc_dtype for the triton runs
        values = case.inputs(seed=23, dtype=dtype)
        for key in ("B", "C"):
            rounded = values[key].detach().to(torch.bfloat16)
            values[key] = (rounded if dtype == torch.float32 and bc_dtype == torch.bfloat16
                           else rounded.to(dtype)).requires_grad_()
        return values

    expected = run(case, inputs(torch.float64), "reference")
    results = {}
    every_kernel = 15  # all four SOFTPLUS_IN_* bits
    for bits in (0, every_kernel):
        with_bits = dataclasses.replace(knobs, fast_softplus=bits)
        assert scan_triton._softplus_mode(True, torch.float32, scan_triton.SOFTPLUS_IN_FWD, with_bits) == (
            2 if bits else 1)
        results[bits] = run(case, inputs(torch.float32), "triton", tuning=with_bits)
    for key, exact in results[0].items():
        scale = max(expected[key].abs().max().item(), 1e-12)
        exact_error = (exact.double() - expected[key]).abs().max().item() / scale
        fast_error = (results[every_kernel][key].double() - expected[key]).abs().max().item() / scale
        assert fast_error < max(4 * exact_error, 1e-6), f"{key}: fast {fast_error:.1e}, exact {exact_error:.1e}"


def test_triton_chunk_floors_set_the_chunks_of_each_pass(monkeypatch):
    """min_chunk_steps and bwd_min_chunk_steps bound each pass's chunks where the program targets would cut
    shorter ones (the GPU's plan: bf16 tiles of 8 and 32 steps)."""
    from seqmamba.kernels import scan_triton

    monkeypatch.setattr(scan_triton, "interpreting", lambda: False)
    u, A = torch.empty(32, 256, 300, device="meta"), torch.empty(256, 16, device="meta")
    # 10 backward tiles; the forward's 128 programs want 8 chunks, the backward's 512 want 4.
    for floors, chunks in (((512, 512), (1, 1)), ((32, 128), (5, 2)), ((128, 128), (2, 2)), ((32, 32), (5, 4))):
        knobs = tuning(block_l=8, bwd_block_l=32, min_chunk_steps=floors[0], bwd_min_chunk_steps=floors[1])
        plan = scan_triton._Plan(u, A, 1, 1, knobs)
        assert (plan.n_chunks, plan.bwd_n_chunks) == chunks, floors
        assert plan.n_chunks * plan.bwd_tiles_per_chunk >= plan.n_bwd_tiles  # every tile in some chunk


def test_triton_fast_softplus_only_where_its_ptx_runs(monkeypatch):
    """The approximate log2 is PTX: float32 work on an NVIDIA GPU and the kernels fast_softplus names; never in
    the interpreter, in float64 or on ROCm. (A choice made on the host: needs the triton package only.)"""
    pytest.importorskip("triton")

    from seqmamba.kernels import scan_triton

    knobs = tuning(fast_softplus=13)
    monkeypatch.setattr(scan_triton, "interpreting", lambda: False)
    monkeypatch.setattr(torch.version, "hip", None)
    bits = (scan_triton.SOFTPLUS_IN_FWD_SUMMARY, scan_triton.SOFTPLUS_IN_FWD, scan_triton.SOFTPLUS_IN_BWD_SUMMARY,
            scan_triton.SOFTPLUS_IN_BWD)
    assert [scan_triton._softplus_mode(True, torch.float32, bit, knobs) for bit in bits] == [2, 1, 2, 2]
    assert scan_triton._softplus_mode(False, torch.float32, 8, knobs) == 0
    assert scan_triton._softplus_mode(True, torch.float64, 8, knobs) == 1
    monkeypatch.setattr(torch.version, "hip", "6.2")
    assert scan_triton._softplus_mode(True, torch.float32, 8, knobs) == 1
    monkeypatch.setattr(torch.version, "hip", None)
    monkeypatch.setattr(scan_triton, "interpreting", lambda: True)
    assert scan_triton._softplus_mode(True, torch.float32, 8, knobs) == 1


@pytest.mark.skipif("triton" not in BACKENDS, reason="needs triton (CUDA, or TRITON_INTERPRET=1)")
@pytest.mark.parametrize("words", [0, 2])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize(("length", "groups"), [(90, None), (64, 2), (37, None)])
def test_triton_forward_reads_bf16_b_and_c_as_words(words, reverse, length, groups):
    """bc_words: bf16 B and C of even length are read two steps to a 32-bit word and widened by hand. Each
    value must land on its own step: against the reference on the same values in float64, to float32's
    precision (a swapped pair of steps would be off by far more). L 90 ends in a part tile; L 37 is odd
    and reads value by value."""
    from seqmamba.kernels import scan_triton

    knobs = tuning(bc_words=words)
    case = Case(length=length, dim=6, d_state=3, batch=2, reverse=reverse, groups=groups)
    values = {k: (v.detach() if v is not None else None) for k, v in case.inputs(seed=23).items()}
    for key in ("B", "C"):
        values[key] = values[key].to(torch.bfloat16)
    plan = scan_triton._Plan(values["u"], values["A"], 1, 1, knobs)
    assert scan_triton._bc_words(plan, False, length, values["B"], values["C"]) == (words and length % 2 == 0)
    fast = {k: (v.float() if v is not None and k not in ("B", "C") else v) for k, v in values.items()}
    exact = {k: (v.double() if v is not None else None) for k, v in values.items()}
    with torch.no_grad():
        y, last = selective_scan(**fast, delta_softplus=True, return_last_state=True, reverse=reverse,
                                 backend="triton", tuning=knobs)
        y_ref, last_ref = selective_scan(**exact, delta_softplus=True, return_last_state=True, reverse=reverse,
                                         backend="reference")
    torch.testing.assert_close(y.double(), y_ref, rtol=2e-5, atol=2e-5)
    torch.testing.assert_close(last.double(), last_ref, rtol=2e-5, atol=2e-5)


def test_triton_forward_reads_words_where_they_measured_faster(monkeypatch):
    """bc_words=1: words where the forward keeps tile states (training) or works a block smaller than block_d;
    a forward of full blocks that keeps none (long-L inference) measured slower with them. Never for other
    dtypes or an odd length."""
    from seqmamba.kernels import scan_triton

    monkeypatch.setattr(scan_triton, "interpreting", lambda: False)
    bf16 = torch.empty(2, 16, 64, dtype=torch.bfloat16, device="meta")
    A = torch.empty(512, 16, device="meta")

    def plans(words):
        knobs = tuning(block_l=8, bwd_block_l=32, bc_words=words)
        long_l = scan_triton._Plan(torch.empty(2, 512, 131072, device="meta"), A, 1, 1, knobs)  # S1: 64-channel blocks
        many_rows = scan_triton._Plan(torch.empty(32, 1024, 2048, device="meta"), torch.empty(1024, 16), 1, 1,
                                      knobs)  # S3
        return knobs, long_l, many_rows

    knobs, long_l, many_rows = plans(1)
    assert long_l.block_d == knobs.block_d and many_rows.block_d < knobs.block_d
    assert scan_triton._bc_words(long_l, True, 131072, bf16, bf16)
    assert not scan_triton._bc_words(long_l, False, 131072, bf16, bf16)
    assert scan_triton._bc_words(many_rows, False, 2048, bf16, bf16)
    assert not scan_triton._bc_words(many_rows, False, 2047, bf16, bf16)
    assert not scan_triton._bc_words(many_rows, False, 2048, bf16, bf16.half())
    _knobs, long_l, many_rows = plans(2)
    assert scan_triton._bc_words(long_l, False, 131072, bf16, bf16)
    _knobs, long_l, many_rows = plans(0)
    assert not scan_triton._bc_words(many_rows, True, 2048, bf16, bf16)


@pytest.mark.skipif("triton" not in BACKENDS, reason="needs triton (CUDA, or TRITON_INTERPRET=1)")
@pytest.mark.parametrize("reverse", [False, True])
def test_triton_backward_with_bf16_b_and_c(reverse):
    """With bf16 B and C (the forward reads them as words in training) the gradients they enter (du, ddelta,
    dA, dz, dD, dh0) match the reference on the same values in float64 to float32's precision."""
    case = Case(length=90, dim=6, d_state=3, batch=2, reverse=reverse)
    values = {k: v.detach() for k, v in case.inputs(seed=31).items()}
    for key in ("B", "C"):
        values[key] = values[key].to(torch.bfloat16)
    grads = {}
    for name, dtype in (("triton", torch.float32), ("reference", torch.float64)):
        bc_dtype = torch.float64 if name == "reference" else torch.bfloat16
        x = {k: (v.to(bc_dtype) if k in ("B", "C") else v.to(dtype).requires_grad_()) for k, v in values.items()}
        y = selective_scan(**x, delta_softplus=True, reverse=reverse, backend=name)
        weights = torch.randn(y.shape, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
        keys = [k for k in x if k not in ("B", "C")]
        loss = (y.double() * weights.to(y.device)).sum()
        grads[name] = dict(zip(keys, torch.autograd.grad(loss, [x[k] for k in keys])))
    for key, exact in grads["reference"].items():
        torch.testing.assert_close(grads["triton"][key].double(), exact, rtol=1e-4, atol=1e-4, msg=key)


@pytest.mark.skipif("triton" not in BACKENDS, reason="needs triton (CUDA, or TRITON_INTERPRET=1)")
@pytest.mark.parametrize("bidirectional", [False, True])
def test_triton_forward_keeps_states_for_the_backward_only_where_one_can_follow(monkeypatch, bidirectional):
    """Inference (no_grad) of parameters that require grad stores no tile states: a forward under no_grad
    takes the STORE_STATES=False variant and gives the same output."""
    from seqmamba.kernels import scan_triton

    stored = []
    real_launch = scan_triton.launch

    def launch(kernel, grid, args, constexprs, direct=True):
        if "STORE_STATES" in constexprs:
            stored.append(constexprs["STORE_STATES"])
        real_launch(kernel, grid, args, constexprs, direct)

    monkeypatch.setattr(scan_triton, "launch", launch)
    from seqmamba.kernels import ScanDirection, selective_scan_bidirectional

    case = Case(dim=4, length=40, d_state=3, batch=2)
    x = case.inputs(seed=3)
    x["A"] = torch.nn.Parameter(x["A"])  # a model's parameter, as in inference of a trained model
    parts = {k: x[k] for k in ("u", "delta", "A", "B", "C", "D", "delta_bias")}

    def call():
        if bidirectional:
            return torch.cat(selective_scan_bidirectional(ScanDirection(**parts), ScanDirection(**parts), x["z"],
                                                          delta_softplus=True, backend="triton"))
        return selective_scan(**x, delta_softplus=True, backend="triton")

    with_grad = call()
    with torch.no_grad():
        without = call()
    assert stored == [True, False]
    torch.testing.assert_close(without, with_grad.detach(), rtol=0, atol=0)
