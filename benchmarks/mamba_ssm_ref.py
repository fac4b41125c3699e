"""mamba_ssm's CUDA selective scan, built from its PyPI sdist, as a comparison point for our kernels.

Nothing of mamba_ssm is committed: pass the path of `mamba_ssm-<version>.tar.gz` (from
`pip download --no-deps --no-binary :all: mamba-ssm==2.3.2.post1`, or the file itself from the PyPI
index) and its `csrc/selective_scan` sources are compiled for this GPU's architecture with
`torch.utils.cpp_extension.load` (about 2.5 minutes with MAX_JOBS=16 on the H100 machine).
"""

from __future__ import annotations

import os
import tarfile
import tempfile
from pathlib import Path

import torch

_NVCC_FLAGS = [
    "-O3", "-std=c++17", "--use_fast_math", "--expt-relaxed-constexpr", "--expt-extended-lambda",
    "-U__CUDA_NO_HALF_OPERATORS__", "-U__CUDA_NO_HALF_CONVERSIONS__",
    "-U__CUDA_NO_BFLOAT16_OPERATORS__", "-U__CUDA_NO_BFLOAT16_CONVERSIONS__",
    "-U__CUDA_NO_BFLOAT162_OPERATORS__", "-U__CUDA_NO_BFLOAT162_CONVERSIONS__",
]


def load_extension(sdist: str | os.PathLike, build_dir: str | os.PathLike | None = None):
    """Compile (or reuse) the `selective_scan_cuda` extension from a mamba_ssm sdist; returns the module.

    build_dir (or the environment's MAMBA_SSM_BUILD_DIR): where to build; torch's loader rebuilds there only when
    the sources or flags changed, so a second run can skip the 2.5-minute compile (a new temporary folder
    otherwise, which always compiles)."""
    from torch.utils.cpp_extension import load

    root = Path(build_dir or os.environ.get("MAMBA_SSM_BUILD_DIR") or tempfile.mkdtemp(prefix="mamba_ssm_"))
    root.mkdir(parents=True, exist_ok=True)  # torch's loader puts its lock file there
    sdist = Path(sdist)
    if sdist.is_file():
        with tarfile.open(sdist) as archive:
            archive.extractall(root, filter="data")
        sdist = next(root.glob("mamba_ssm-*"))
    src = sdist / "csrc" / "selective_scan"
    major, minor = torch.cuda.get_device_capability()
    arch = f"-gencode=arch=compute_{major}{minor},code=sm_{major}{minor}"
    os.environ.setdefault("MAX_JOBS", str(os.cpu_count() or 4))
    return load(
        name="selective_scan_cuda",
        sources=[str(src / "selective_scan.cpp"), *sorted(str(p) for p in src.glob("*.cu"))],
        extra_include_paths=[str(src)],
        extra_cflags=["-O3", "-std=c++17"],
        extra_cuda_cflags=[*_NVCC_FLAGS, arch],
        build_directory=str(root),
        verbose=False,
    )


class _MambaSsmScan(torch.autograd.Function):
    """The extension's forward/backward entry points behind autograd (B/C shared, as (batch, N, L))."""

    @staticmethod
    def forward(ctx, ext, u, delta, A, B, C, D, z, delta_bias, softplus):
        B4, C4 = B.unsqueeze(1).contiguous(), C.unsqueeze(1).contiguous()  # (batch, 1, N, L)
        out, states, *rest = ext.fwd(u, delta, A, B4, C4, D, z, delta_bias, softplus)
        ctx.ext, ctx.softplus = ext, softplus
        ctx.save_for_backward(u, delta, A, B4, C4, D, z, delta_bias, states, out)
        return rest[0] if z is not None else out

    @staticmethod
    def backward(ctx, dout):
        u, delta, A, B4, C4, D, z, delta_bias, states, out = ctx.saved_tensors
        du, ddelta, dA, dB, dC, dD, dbias, *rest = ctx.ext.bwd(
            u, delta, A, B4, C4, D, z, delta_bias, dout.contiguous(), states, out if z is not None else None,
            None, ctx.softplus, False)
        return (None, du, ddelta, dA, dB.squeeze(1), dC.squeeze(1), dD, rest[0] if z is not None else None,
                dbias, None)


def mamba_ssm_scan(ext, u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False, **_):
    """y of mamba_ssm's `selective_scan_fn` for shared B/C, through the compiled extension."""
    return _MambaSsmScan.apply(ext, u, delta, A, B, C, D, z, delta_bias, delta_softplus)
