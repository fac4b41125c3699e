"""Golden outputs of Caduceus's own modeling code, for tests/seqmamba/test_caduceus.py (and a check of
seqmamba's writer).

Runs kuleshov-group/caduceus's ``CaduceusForMaskedLM`` on the CPU with small random configs shaped like the
published checkpoints (``kuleshov-group/caduceus-ph_*``, ``caduceus-ps_*``: RMSNorm, fused_add_norm, weight-tied
BiMamba, vocab 12 padded to 16) and writes, per config, a directory in the Hugging Face layout that
``save_pretrained`` gives (``config.json``, ``model.safetensors``) plus ``golden.safetensors`` (``input_ids``,
``last_hidden_state``, ``logits``). Nothing of Caduceus or mamba_ssm is stored in this repository: both are
fetched when this script runs.

- Caduceus: cloned from ``--caduceus`` (a git URL or a local clone) at ``--caduceus-commit``.
- mamba_ssm: the sdist of ``--mamba-ssm`` from PyPI through ``pip download``, unpacked, put on ``sys.path``
  without building anything. Its compiled parts are replaced by its own pure-PyTorch references: the
  ``selective_scan_cuda`` import gets an empty module and ``Mamba`` calls ``selective_scan_ref``; the Triton
  ``rms_norm_fn`` / ``layer_norm_fn`` / ``RMSNorm.forward`` call ``rms_norm_ref`` / ``layer_norm_ref`` (which
  do the residual add and ``prenorm``); ``causal_conv1d`` is absent, so ``Mamba`` takes its slow path.

Run it in a throwaway environment (torch from the system, transformers pinned)::

    python3 -m venv --system-site-packages /tmp/cadenv
    /tmp/cadenv/bin/pip install transformers==4.38.1 einops wheel packaging
    /tmp/cadenv/bin/python benchmarks/caduceus_golden.py --out tests/data/caduceus

transformers 4.38.1 is the version the published checkpoints were saved with (their config.json says so): its
``save_pretrained`` drops the tied copies (``mamba_rev.in_proj`` / ``out_proj``, ``lm_head``) as theirs did,
where 4.44 refuses to save tied tensors that the model class does not declare.

``verify DIR`` loads a directory that ``seqmamba.save_caduceus`` wrote into Caduceus's ``CaduceusForMaskedLM``
and compares its logits with the ``expected.safetensors`` seqmamba put beside it (the round trip of the docs).
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tarfile
import tempfile
import types
from pathlib import Path

CADUCEUS_URL = "https://github.com/kuleshov-group/caduceus.git"
CADUCEUS_COMMIT = "0060a6d8079b6a040fc55d505e15972a327b70a6"  # main, "Merge pull request #74"
MAMBA_SSM = "2.2.2"

# name: (rcps, fused_add_norm, d_model, d_state, seed)
CONFIGS = {
    "ph": (False, True, 32, 8, 0),
    "ps": (True, True, 24, 4, 1),
    "ps_unfused": (True, False, 24, 4, 2),
}
N_LAYER = 2
BATCH, LENGTH = 3, 37


def run(cmd: list[str], **kw) -> None:
    print("+", " ".join(cmd), file=sys.stderr)
    subprocess.run(cmd, check=True, **kw)


def fetch_caduceus(source: str, commit: str, work: Path) -> Path:
    """A checkout of Caduceus at ``commit``; returns the folder that holds the ``caduceus`` package."""
    dest = work / "caduceus-src"
    run(["git", "clone", "-q", "--no-checkout", source, str(dest)])
    run(["git", "-C", str(dest), "-c", "advice.detachedHead=false", "checkout", "-q", commit])
    return dest


def fetch_mamba_ssm(version: str, work: Path) -> Path:
    """mamba_ssm's sdist from PyPI, unpacked (nothing built); returns the folder that holds ``mamba_ssm``."""
    env = dict(os.environ, MAMBA_SKIP_CUDA_BUILD="TRUE", MAMBA_FORCE_BUILD="FALSE")
    run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
         "--no-build-isolation", f"mamba-ssm=={version}", "-d", str(work)], env=env)
    (archive,) = work.glob(f"mamba_ssm-{version}.tar.gz")
    with tarfile.open(archive) as tar:
        tar.extractall(work, filter="data")
    return work / f"mamba_ssm-{version}"


def import_reference_code(caduceus_root: Path, mamba_root: Path):
    """Import Caduceus with mamba_ssm's pure-PyTorch references in place of its CUDA/Triton kernels."""
    sys.modules["selective_scan_cuda"] = types.ModuleType("selective_scan_cuda")  # never called
    # mamba_ssm/__init__.py imports Mamba2 and the LM model (distributed, Triton SSD): skip it, keep the package.
    package = types.ModuleType("mamba_ssm")
    package.__path__ = [str(mamba_root / "mamba_ssm")]
    sys.modules["mamba_ssm"] = package
    sys.path.insert(0, str(mamba_root))

    import mamba_ssm.ops.triton.layer_norm as ln

    def rms_norm_fn(x, weight, bias, residual=None, x1=None, weight1=None, bias1=None, eps=1e-6, dropout_p=0.0,
                    rowscale=None, prenorm=False, residual_in_fp32=False, return_dropout_mask=False):
        out = ln.rms_norm_ref(x, weight, bias, residual=residual, eps=eps, prenorm=prenorm, upcast=True)
        if prenorm and residual_in_fp32:
            return out[0], out[1].float()
        return out

    def layer_norm_fn(x, weight, bias, residual=None, x1=None, weight1=None, bias1=None, eps=1e-6, dropout_p=0.0,
                      rowscale=None, prenorm=False, residual_in_fp32=False, is_rms_norm=False,
                      return_dropout_mask=False):
        if is_rms_norm:
            return rms_norm_fn(x, weight, bias, residual=residual, eps=eps, prenorm=prenorm,
                               residual_in_fp32=residual_in_fp32)
        out = ln.layer_norm_ref(x, weight, bias, residual=residual, eps=eps, prenorm=prenorm, upcast=True)
        if prenorm and residual_in_fp32:
            return out[0], out[1].float()
        return out

    def rms_forward(self, x, residual=None, prenorm=False, residual_in_fp32=False):
        return rms_norm_fn(x, self.weight, self.bias, residual=residual, eps=self.eps, prenorm=prenorm,
                           residual_in_fp32=residual_in_fp32)

    # Patched before anything imports the names, so `from ... import rms_norm_fn` binds these.
    ln.rms_norm_fn, ln.layer_norm_fn, ln.RMSNorm.forward = rms_norm_fn, layer_norm_fn, rms_forward

    import mamba_ssm.modules.mamba_simple as ms
    from mamba_ssm.ops.selective_scan_interface import selective_scan_ref

    ms.selective_scan_fn = selective_scan_ref
    assert ms.causal_conv1d_fn is None, "causal_conv1d is installed: Mamba would take its CUDA path"

    sys.path.insert(0, str(caduceus_root))
    import caduceus.modeling_caduceus as mc
    import caduceus.modeling_rcps as mr

    assert mc.rms_norm_fn is rms_norm_fn and mr.rms_norm_fn is rms_norm_fn
    from caduceus import CaduceusConfig, CaduceusForMaskedLM, CaduceusTokenizer

    return CaduceusConfig, CaduceusForMaskedLM, CaduceusTokenizer


def randomize(model, seed: int) -> None:
    """Every parameter random (not Mamba's init): A, D, dt bias and the norms included. Ties stay tied."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():  # a tied parameter is listed once
            shape = p.shape
            if name.endswith("A_log"):
                value = torch.log(torch.rand(shape, generator=gen) * 3.5 + 0.5)  # A in [-4, -0.5]
            elif name.endswith(".D"):
                value = 1.0 + 0.5 * torch.randn(shape, generator=gen)
            elif name.endswith("dt_proj.bias"):
                dt = torch.exp(torch.rand(shape, generator=gen) * (math.log(0.3) - math.log(0.005)) + math.log(0.005))
                value = dt + torch.log(-torch.expm1(-dt))  # softplus^-1
            elif "norm" in name:
                value = 1.0 + 0.3 * torch.randn(shape, generator=gen)
            elif "embedding" in name:
                value = torch.randn(shape, generator=gen)
            elif p.dim() >= 2:
                fan_in = math.prod(shape[1:])
                value = torch.randn(shape, generator=gen) / math.sqrt(fan_in)
            else:
                value = 0.2 * torch.randn(shape, generator=gen)
            p.copy_(value)


def make_goldens(out: Path, CaduceusConfig, CaduceusForMaskedLM, CaduceusTokenizer) -> None:
    import torch
    from safetensors.torch import save_file

    tokenizer = CaduceusTokenizer(model_max_length=LENGTH)
    vocab = tokenizer.get_vocab()
    complement = dict(tokenizer.complement_map)
    # Only tokens seqmamba's DNATokenizer has ([BOS] and [RESERVED] have no counterpart there).
    usable = [vocab[t] for t in ("[CLS]", "[SEP]", "[MASK]", "[PAD]", "[UNK]", "A", "C", "G", "T", "N")]
    for name, (rcps, fused, d_model, d_state, seed) in CONFIGS.items():
        torch.manual_seed(seed)
        config = CaduceusConfig(
            d_model=d_model, n_layer=N_LAYER, vocab_size=tokenizer.vocab_size, pad_vocab_size_multiple=8,
            ssm_cfg={"d_state": d_state, "d_conv": 4, "expand": 2, "dt_rank": "auto", "dt_min": 0.001,
                     "dt_max": 0.1, "dt_init": "random", "dt_scale": 1.0, "dt_init_floor": 1e-4,
                     "conv_bias": True, "bias": False, "use_fast_path": True},
            rms_norm=True, residual_in_fp32=False, fused_add_norm=fused, norm_epsilon=1e-5,
            initializer_cfg={"initializer_range": 0.02, "n_residuals_per_layer": 1, "rescale_prenorm_residual": True},
            bidirectional=True, bidirectional_strategy="add", bidirectional_weight_tie=True,
            rcps=rcps, complement_map=dict(complement) if rcps else None,
        )
        model = CaduceusForMaskedLM(config).eval()
        randomize(model, seed)
        directory = out / name
        directory.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(directory)  # config.json + model.safetensors, as published checkpoints are written

        gen = torch.Generator().manual_seed(100 + seed)
        bases = torch.tensor([vocab[b] for b in "ACGT"])
        ids = bases[torch.randint(0, 4, (BATCH, LENGTH), generator=gen)]
        # Every other token too, in a few places (N runs, [MASK]s, [UNK], the specials).
        ids[0, 5:9] = vocab["N"]
        ids[1, 0], ids[1, -1] = vocab["[CLS]"], vocab["[SEP]"]
        ids[2, 3], ids[2, 17], ids[2, 30] = vocab["[MASK]"], vocab["[UNK]"], vocab["[PAD]"]
        ids[0, 20] = vocab["[MASK]"]
        assert set(ids.unique().tolist()) <= set(usable)
        reloaded = CaduceusForMaskedLM.from_pretrained(directory).eval()  # what a user of the files gets
        with torch.no_grad():
            last = reloaded.caduceus(input_ids=ids, return_dict=True).last_hidden_state
            logits = reloaded(input_ids=ids, return_dict=True).logits
            same = model(input_ids=ids, return_dict=True).logits
        assert torch.equal(logits, same), "save_pretrained -> from_pretrained changed the model"
        save_file({"input_ids": ids.contiguous(), "last_hidden_state": last.contiguous(),
                   "logits": logits.contiguous()}, str(directory / "golden.safetensors"))
        print(f"{name}: hidden {tuple(last.shape)}, logits {tuple(logits.shape)}, files "
              f"{sorted(p.name for p in directory.iterdir())}", file=sys.stderr)


def verify(directory: Path, CaduceusForMaskedLM) -> float:
    """Caduceus's logits for ``directory`` (written by seqmamba) against seqmamba's expected.safetensors."""
    import torch
    from safetensors.torch import load_file

    expected = load_file(str(directory / "expected.safetensors"))
    model = CaduceusForMaskedLM.from_pretrained(directory).eval()
    with torch.no_grad():
        logits = model(input_ids=expected["input_ids"], return_dict=True).logits
    columns = expected["columns"]  # the Caduceus ids of seqmamba's tokens
    got = logits[..., columns]
    err = ((got - expected["logits"]).abs().max() / expected["logits"].abs().max()).item()
    print(f"{directory}: max |caduceus - seqmamba| / max |seqmamba| = {err:.2e}")
    return err


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--caduceus", default=CADUCEUS_URL, help="git URL or local clone of kuleshov-group/caduceus")
    parser.add_argument("--caduceus-commit", default=CADUCEUS_COMMIT)
    parser.add_argument("--mamba-ssm", default=MAMBA_SSM, help="mamba_ssm version (sdist from PyPI)")
    parser.add_argument("--workdir", help="where to fetch the code (default: a temporary folder)")
    sub = parser.add_subparsers(dest="command")
    parser.add_argument("--out", type=Path, default=Path("tests/data/caduceus"))
    check = sub.add_parser("verify", help="load seqmamba-written Caduceus directories in Caduceus's code")
    check.add_argument("dirs", nargs="+", type=Path)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.workdir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        classes = import_reference_code(fetch_caduceus(args.caduceus, args.caduceus_commit, work),
                                        fetch_mamba_ssm(args.mamba_ssm, work))
        import torch
        import transformers

        print(f"torch {torch.__version__}, transformers {transformers.__version__}, mamba_ssm {args.mamba_ssm},"
              f" caduceus {args.caduceus_commit}", file=sys.stderr)
        if args.command == "verify":
            worst = max(verify(d, classes[1]) for d in args.dirs)
            sys.exit(0 if worst < 1e-4 else 1)
        make_goldens(args.out, *classes)


if __name__ == "__main__":
    main()
