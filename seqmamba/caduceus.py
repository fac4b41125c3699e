"""Caduceus checkpoints (kuleshov-group/caduceus) on seqmamba's layers: read, convert, write.

The published Caduceus models (``kuleshov-group/caduceus-ph_*`` and ``caduceus-ps_*`` on the Hugging Face hub)
are directories with a ``config.json`` (``model_type: caduceus``) and a ``model.safetensors`` of a
``CaduceusForMaskedLM``. They map onto seqmamba's own modules, with no compile step and no code of theirs:

- each block (mamba_ssm's ``Block``: add the residual, RMSNorm, mixer) is a `ResidualLayer`
  (``h + mixer(norm(h))``, the same sums in another grouping);
- the weight-tied BiMamba (``mamba_fwd`` and ``mamba_rev`` sharing ``in_proj`` / ``out_proj``, ``mamba_rev`` run
  on the flipped input and flipped back) is a `BiMambaMixer` (``ssm_fwd``, ``ssm_rev``): our reverse branch is
  an anti-causal conv and a reverse scan, the same numbers without flipping, so the conv weights carry over;
- Caduceus-Ph (``rcps: false``) is a `DNAEncoder` with ``rc_equivariant=False``; Caduceus-PS (``rcps: true``)
  an RC-equivariant `DNAEncoder` with ``rc_strand_swap`` set from ``fused_add_norm`` (see `seqmamba.rcps`:
  the published PS checkpoints are fused, and the fused path computes another function than the unfused one);
- the MLM head (tied to the embedding; for PS ``RCPSLMHead``, which reads the RC strand through the
  complemented rows) is the head of ``MaskedLMModel`` (`seqmamba.load_caduceus`).

Token ids: Caduceus's character vocabulary ([CLS] 0, [SEP] 1, [BOS] 2, [MASK] 3, [PAD] 4, [RESERVED] 5,
[UNK] 6, A 7, C 8, G 9, T 10, N 11, then rows padding it to ``pad_vocab_size_multiple``) is mapped onto
`DNATokenizer`'s by permuting the embedding (and head) rows; [BOS], [RESERVED] and the padding rows have no
seqmamba token and are dropped on load (written as zeros on save).

Weights are read with ``safetensors`` (``pytorch_model.bin`` only through ``torch.load(weights_only=True)``),
never unpickled. A setting seqmamba does not compute (LayerNorm, ``bidirectional_strategy: ew_multiply``,
untied forward/reverse projections, a causal Caduceus) is an `InputError` naming the file and the field.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import nn

from .checkpoint import save_tensors
from .config import MambaConfig
from .datasets.atomic import atomic_path
from .errors import InputError
from .tokenizers.dna import TOKENS

CONFIG_NAME = "config.json"
SAFETENSORS_NAME = "model.safetensors"
TORCH_NAME = "pytorch_model.bin"
# What a hub download fetches: nothing that runs code.
HUB_FILES = [CONFIG_NAME, "*.safetensors", TORCH_NAME]
HUB_EXTRA = "pip install 'seqmamba[hub]'"

# Caduceus's CaduceusTokenizer with its default characters, in id order.
CADUCEUS_TOKENS = ("[CLS]", "[SEP]", "[BOS]", "[MASK]", "[PAD]", "[RESERVED]", "[UNK]", "A", "C", "G", "T", "N")
# TO_CADUCEUS[i]: the Caduceus id of DNATokenizer id i (the tokenizer owns its ids; matched by token name).
TO_CADUCEUS = [CADUCEUS_TOKENS.index(token) for token in TOKENS]
_CADUCEUS_COMPLEMENT = {"A": "T", "C": "G", "G": "C", "T": "A"}  # every other token is its own complement
# The tensors of one Mamba direction, named alike in our SelectiveSSM.
_SSM_KEYS = ("conv1d.weight", "conv1d.bias", "x_proj.weight", "dt_proj.weight", "dt_proj.bias", "A_log", "D")
_SSM_CFG_KEYS = {"d_state", "d_conv", "expand", "dt_rank", "dt_min", "dt_max", "dt_init_floor", "conv_bias", "bias",
                 # initialisation and kernel choices: they do not change what a trained model computes
                 "dt_init", "dt_scale", "use_fast_path", "layer_idx"}
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9_.-]+$")
_REQUIRED: Any = object()


def caduceus_complement(vocab_size: int) -> list[int]:
    """Caduceus's complement map over ``vocab_size`` ids: A<->T, C<->G, every other id to itself."""
    table = list(range(vocab_size))
    for base, comp in _CADUCEUS_COMPLEMENT.items():
        table[CADUCEUS_TOKENS.index(base)] = CADUCEUS_TOKENS.index(comp)
    return table


def seqmamba_complement() -> list[int]:
    """Caduceus's complement map on `DNATokenizer` ids (the same map as the tokenizer's own)."""
    table = caduceus_complement(len(CADUCEUS_TOKENS))
    return [TO_CADUCEUS.index(table[TO_CADUCEUS[i]]) for i in range(len(TOKENS))]


@dataclass(frozen=True)
class CaduceusSpec:
    """A Caduceus ``config.json``, checked: the seqmamba config it implies and what the weights look like.

    ``config`` describes a `DNAEncoder` over `DNATokenizer` ids; ``vocab_size`` is Caduceus's padded vocabulary
    (rows of its embedding); ``fused_add_norm`` only matters with ``rcps`` (``config.rc_strand_swap``).

    Example:
        >>> import tempfile
        >>> from seqmamba import DNAEncoder, MambaConfig
        >>> cfg = MambaConfig(d_model=16, n_layers=2, d_state=4, bidirectional=True, vocab_size=10,
        ...                   rc_equivariant=True, rc_strand_swap=True, complement_map=seqmamba_complement())
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     _ = write_caduceus(tmp, DNAEncoder(cfg))  # a Caduceus-PS checkpoint directory
        ...     spec = read_caduceus_config(tmp)
        >>> spec.rcps, spec.fused_add_norm, spec.vocab_size, spec.config == cfg
        (True, True, 16, True)
    """

    path: Path
    config: MambaConfig
    rcps: bool
    fused_add_norm: bool
    vocab_size: int
    tie_word_embeddings: bool = True


# -- config.json -----------------------------------------------------------------------------------


def read_caduceus_config(directory: str | os.PathLike) -> CaduceusSpec:
    """Read and check a Caduceus ``config.json``; an `InputError` names the file and the field.

    Example:
        >>> import json, tempfile
        >>> from pathlib import Path
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     _ = Path(tmp, "config.json").write_text(json.dumps(
        ...         {"model_type": "caduceus", "d_model": 16, "n_layer": 2, "vocab_size": 12, "rms_norm": False}))
        ...     read_caduceus_config(tmp)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        seqmamba.errors.InputError: .../config.json: field 'rms_norm': false (LayerNorm) is not supported: ...
    """
    path = Path(directory) / CONFIG_NAME
    if not path.is_file():
        raise InputError(f"{path}: no such file; a Caduceus checkpoint has {CONFIG_NAME} and {SAFETENSORS_NAME}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object, got {type(data).__name__}")

    def bad(field: str, why: str) -> InputError:
        return InputError(f"{path}: field {field!r}: {why}")

    def get(table: dict, field: str, kind: type | tuple, default: Any = _REQUIRED, prefix: str = "") -> Any:
        if field not in table or (table[field] is None and default is not _REQUIRED):
            if default is _REQUIRED:
                raise bad(prefix + field, "missing")
            return default
        value = table[field]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
            names = " or ".join("a number" if k is float else f"a {k.__name__}" for k in kinds)
            raise bad(prefix + field, f"expected {names}, got {value!r}")
        return value

    if data.get("model_type") != "caduceus":
        raise bad("model_type", f"{data.get('model_type')!r}, not 'caduceus': not a Caduceus checkpoint")
    d_model = get(data, "d_model", int)
    n_layer = get(data, "n_layer", int)
    vocab = get(data, "vocab_size", int)
    multiple = get(data, "pad_vocab_size_multiple", int, 8)
    if not get(data, "rms_norm", bool, True):
        raise bad("rms_norm", "false (LayerNorm) is not supported: seqmamba's layers use RMSNorm")
    if not get(data, "bidirectional", bool, True):
        raise bad("bidirectional", "false (a causal Caduceus) is not supported")
    strategy = get(data, "bidirectional_strategy", str, "add")
    if strategy != "add":
        raise bad("bidirectional_strategy", f"{strategy!r} is not supported (seqmamba adds the two directions)")
    if not get(data, "bidirectional_weight_tie", bool, True):
        raise bad("bidirectional_weight_tie", "false (untied forward and reverse in_proj/out_proj) is not supported")
    if data.get("layer_cfg") is not None:
        raise bad("layer_cfg", "a layer config of a Caduceus fork (Mamba-2, attention) is not supported")
    rcps = get(data, "rcps", bool, False)
    fused = get(data, "fused_add_norm", bool, True)
    eps = get(data, "norm_epsilon", (int, float), 1e-5)
    get(data, "residual_in_fp32", bool, True)  # float32 residuals: the same numbers in float32
    tie = get(data, "tie_word_embeddings", bool, True)  # transformers' flag; Caduceus-PS ties whatever it says

    ssm = get(data, "ssm_cfg", dict, {})
    for key in sorted(set(ssm) - _SSM_CFG_KEYS):
        raise bad(f"ssm_cfg.{key}", "not a setting of mamba_ssm's Mamba (v1) block that seqmamba computes")
    if multiple < 1:
        raise bad("pad_vocab_size_multiple", f"must be positive, got {multiple}")
    padded = vocab + (-vocab) % multiple  # as Caduceus pads it
    if padded < len(CADUCEUS_TOKENS):
        raise bad("vocab_size", f"{vocab}: not Caduceus's character vocabulary ({len(CADUCEUS_TOKENS)} tokens,"
                  f" {' '.join(CADUCEUS_TOKENS)})")

    raw_map = data.get("complement_map")
    if rcps and raw_map is None:
        raise bad("complement_map", "missing; rcps: true needs it")
    if raw_map is not None:
        if not isinstance(raw_map, dict):
            raise bad("complement_map", f"expected an object (token id -> id), got {raw_map!r}")
        try:
            found = {int(k): int(v) for k, v in raw_map.items()}
        except (TypeError, ValueError):
            raise bad("complement_map", f"expected integer token ids, got {raw_map!r}") from None
        expected = caduceus_complement(padded)
        wrong = [k for k, v in sorted(found.items()) if k >= padded or expected[k] != v]
        if wrong:
            k = wrong[0]
            raise bad("complement_map", f"maps {k} to {found[k]}; seqmamba reads Caduceus's character vocabulary"
                      " (A<->T, C<->G, every other token to itself)")

    try:
        config = MambaConfig(
            d_model=d_model, n_layers=n_layer,
            d_state=get(ssm, "d_state", int, 16, "ssm_cfg."), d_conv=get(ssm, "d_conv", int, 4, "ssm_cfg."),
            expand=get(ssm, "expand", int, 2, "ssm_cfg."), dt_rank=get(ssm, "dt_rank", (int, str), "auto", "ssm_cfg."),
            dt_min=get(ssm, "dt_min", (int, float), 1e-3, "ssm_cfg."),
            dt_max=get(ssm, "dt_max", (int, float), 1e-1, "ssm_cfg."),
            dt_init_floor=get(ssm, "dt_init_floor", (int, float), 1e-4, "ssm_cfg."),
            conv_bias=get(ssm, "conv_bias", bool, True, "ssm_cfg."), bias=get(ssm, "bias", bool, False, "ssm_cfg."),
            norm_eps=float(eps), bidirectional=True, bidirectional_combine="add",
            rc_equivariant=rcps, rc_strand_swap=rcps and fused,
            vocab_size=len(TOKENS), complement_map=seqmamba_complement() if rcps else None,
        )
    except ValueError as err:
        raise InputError(f"{path}: {err}") from None
    return CaduceusSpec(path=path, config=config, rcps=rcps, fused_add_norm=fused, vocab_size=padded,
                        tie_word_embeddings=tie or rcps)


def caduceus_config_dict(config: MambaConfig, tie_word_embeddings: bool = True) -> dict[str, Any]:
    """The ``config.json`` of Caduceus for a seqmamba config (fields as ``CaduceusConfig.save_pretrained`` writes)."""
    vocab = len(CADUCEUS_TOKENS) + (-len(CADUCEUS_TOKENS)) % 8
    data: dict[str, Any] = {
        "architectures": ["CaduceusForMaskedLM"],
        "model_type": "caduceus",
        "bidirectional": True,
        "bidirectional_strategy": "add",
        "bidirectional_weight_tie": True,
        "complement_map": ({str(i): j for i, j in enumerate(caduceus_complement(vocab))}
                           if config.rc_equivariant else None),
        "d_model": config.d_model,
        # Only RCPS tells the two apart (`seqmamba.rcps`); Caduceus-Ph computes the same either way.
        "fused_add_norm": bool(config.rc_strand_swap) or not config.rc_equivariant,
        "initializer_cfg": {"initializer_range": 0.02, "n_residuals_per_layer": 1, "rescale_prenorm_residual": True},
        "n_layer": config.n_layers,
        "norm_epsilon": config.norm_eps,
        "pad_vocab_size_multiple": 8,
        "rcps": bool(config.rc_equivariant),
        "residual_in_fp32": False,
        "rms_norm": True,
        "ssm_cfg": {
            "bias": config.bias, "conv_bias": config.conv_bias, "d_conv": config.d_conv, "d_state": config.d_state,
            "dt_init": "random", "dt_init_floor": config.dt_init_floor, "dt_max": config.dt_max,
            "dt_min": config.dt_min, "dt_rank": config.dt_rank, "dt_scale": 1.0, "expand": config.expand,
            "use_fast_path": True,
        },
        "torch_dtype": "float32",
        "vocab_size": vocab,
    }
    if not tie_word_embeddings:
        data["tie_word_embeddings"] = False
    return data


def _check_writable(config: MambaConfig) -> None:
    problems = []
    if not config.bidirectional:
        problems.append("a causal encoder (Caduceus is bidirectional)")
    if config.bidirectional_combine != "add":
        problems.append(f"bidirectional_combine={config.bidirectional_combine!r} (Caduceus adds the directions)")
    if config.vocab_size != len(TOKENS):
        problems.append(f"vocab_size={config.vocab_size} (not DNATokenizer's {len(TOKENS)})")
    if config.rc_equivariant and config.complement_map != seqmamba_complement():
        problems.append("a complement map other than DNATokenizer's")
    if problems:
        raise ValueError(f"cannot write this model in the Caduceus layout: {'; '.join(problems)}")


# -- tensor names ------------------------------------------------------------------------------------


def _name_table(config: MambaConfig) -> list[tuple[str, str]]:
    """(Caduceus name, seqmamba name) of every tensor of the backbone, Caduceus names canonical: relative to the
    backbone, without RCPS's ``.submodule`` and with the embedding as ``embeddings.word_embeddings.weight``.
    seqmamba names are those of a `DNAEncoder`."""
    pairs = [("embeddings.word_embeddings.weight", "embedding.weight")]
    proj = ["weight"] + (["bias"] if config.bias else [])
    ssm = [k for k in _SSM_KEYS if config.conv_bias or k != "conv1d.bias"]
    for i in range(config.n_layers):
        cad, ours = f"layers.{i}", f"encoder.layers.{i}"
        pairs.append((f"{cad}.norm.weight", f"{ours}.norm.weight"))
        for p in proj:
            pairs.append((f"{cad}.mixer.mamba_fwd.in_proj.{p}", f"{ours}.mixer.in_proj.{p}"))
            pairs.append((f"{cad}.mixer.mamba_fwd.out_proj.{p}", f"{ours}.mixer.out_proj.{p}"))
        for direction, branch in (("mamba_fwd", "ssm_fwd"), ("mamba_rev", "ssm_rev")):
            pairs.extend((f"{cad}.mixer.{direction}.{k}", f"{ours}.mixer.{branch}.{k}") for k in ssm)
    pairs.append(("norm_f.weight", "encoder.norm_f.weight"))
    return pairs


def _tied_copies(config: MambaConfig) -> dict[str, str]:
    """Canonical names of mamba_rev's projections -> mamba_fwd's, which they are (bidirectional_weight_tie)."""
    proj = ["weight"] + (["bias"] if config.bias else [])
    return {f"layers.{i}.mixer.mamba_rev.{m}.{p}": f"layers.{i}.mixer.mamba_fwd.{m}.{p}"
            for i in range(config.n_layers) for m in ("in_proj", "out_proj") for p in proj}


def _canonical(name: str) -> str:
    name = name.replace(".submodule.", ".")  # RCPSWrapper / RCPSAddNormWrapper
    name = re.sub(r"embeddings\.word_embeddings\.embedding\.weight$", "embeddings.word_embeddings.weight", name)
    return "lm_head.weight" if name == "lm_head.lm_head.weight" else name  # RCPSEmbedding, RCPSLMHead


def _published_name(canonical: str, rcps: bool, fused: bool, prefix: str = "caduceus.backbone.") -> str:
    """The name ``CaduceusForMaskedLM`` gives a tensor (the inverse of `_canonical`)."""
    if canonical.startswith("lm_head."):
        return "lm_head.lm_head.weight" if rcps and canonical == "lm_head.weight" else canonical
    name = canonical
    if rcps:
        if name == "embeddings.word_embeddings.weight":
            name = "embeddings.word_embeddings.embedding.weight"
        name = re.sub(r"^(layers\.\d+\.mixer)\.", r"\1.submodule.", name)
        if not fused:  # RCPSAddNormWrapper around the norms
            name = re.sub(r"^(layers\.\d+\.norm|norm_f)\.", r"\1.submodule.", name)
    return prefix + name


# -- reading ------------------------------------------------------------------------------------------


def read_caduceus_tensors(directory: str | os.PathLike) -> tuple[Path, dict[str, torch.Tensor]]:
    """The weights of a Caduceus directory: ``model.safetensors``, else ``pytorch_model.bin`` read with
    ``torch.load(weights_only=True)`` (plain tensors only, no code). Returns (the file, name -> tensor)."""
    directory = Path(directory)
    path = directory / SAFETENSORS_NAME
    if path.is_file():
        try:
            return path, load_file(path, device="cpu")
        except Exception as err:  # safetensors raises its own error types for corrupt files
            raise InputError(f"{path}: cannot read the weights ({_one_line(err)})") from None
    path = directory / TORCH_NAME
    if path.is_file():
        try:
            tensors = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # an UnpicklingError for anything but tensors and plain containers
            raise InputError(f"{path}: cannot read the weights as plain tensors ({_one_line(err)})") from None
        if not isinstance(tensors, dict) or not all(isinstance(v, torch.Tensor) for v in tensors.values()):
            raise InputError(f"{path}: expected a state dict (name -> tensor)")
        return path, dict(tensors)
    if (directory / f"{SAFETENSORS_NAME}.index.json").is_file():
        raise InputError(f"{directory}: sharded weights (model.safetensors.index.json) are not supported")
    raise InputError(f"{directory}: no {SAFETENSORS_NAME} or {TORCH_NAME}")


def convert_caduceus_tensors(
    spec: CaduceusSpec, path: Path, tensors: dict[str, torch.Tensor], model_shapes: dict[str, tuple[int, ...]]
) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
    """Caduceus tensors -> (a `DNAEncoder` state dict over DNATokenizer ids, the MLM head's weight or None).

    ``model_shapes``: the shape of every tensor of the `DNAEncoder` that ``spec.config`` describes
    (`seqmamba.dna.DNAEncoder.state_shapes`).

    The head's weight is None where the file has none (tied to the embedding, as published files are saved).
    Every tensor is accounted for: a missing, unexpected or misshaped one is an `InputError` naming it.
    """
    config = spec.config
    embedding_keys = [k for k in tensors if _canonical(k).endswith("embeddings.word_embeddings.weight")]
    if len(embedding_keys) != 1:
        raise InputError(f"{path}: expected one embeddings.word_embeddings tensor, found {len(embedding_keys)}")
    prefix = _canonical(embedding_keys[0])[: -len("embeddings.word_embeddings.weight")]
    canonical: dict[str, torch.Tensor] = {}
    for key, tensor in tensors.items():
        name = _canonical(key)
        if name.startswith(prefix):
            name = name[len(prefix):]
        elif not name.startswith("lm_head."):
            raise InputError(f"{path}: unexpected tensor {key!r} (not under {prefix!r})")
        canonical[name] = tensor

    expected_map = torch.tensor(caduceus_complement(spec.vocab_size))
    for name in ("embeddings.word_embeddings.complement_map", "lm_head.complement_map"):  # RCPS buffers
        found = canonical.pop(name, None)
        if found is not None and not torch.equal(found.long(), expected_map):
            raise InputError(f"{path}: tensor {name!r} is not Caduceus's complement map (A<->T, C<->G)")
    head = canonical.pop("lm_head.weight", None)
    for rev, fwd in _tied_copies(config).items():
        copy = canonical.pop(rev, None)
        if copy is not None and fwd in canonical and not torch.equal(copy, canonical[fwd]):
            raise InputError(f"{path}: tensor {prefix + rev!r} differs from {prefix + fwd!r}: untied forward and"
                             " reverse projections are not supported")

    state: dict[str, torch.Tensor] = {}
    problems = []
    for cad, ours in _name_table(config):
        tensor = canonical.pop(cad, None)
        if tensor is None:
            problems.append(f"missing tensor {prefix + cad!r}")
            continue
        if cad == "embeddings.word_embeddings.weight":
            if tensor.dim() != 2 or tensor.shape[0] != spec.vocab_size:
                problems.append(f"tensor {prefix + cad!r} has shape {tuple(tensor.shape)}, the config implies"
                                f" ({spec.vocab_size}, {config.d_model})")
                continue
            tensor = tensor[TO_CADUCEUS]  # rows in DNATokenizer's order
        if tuple(tensor.shape) != model_shapes[ours]:
            problems.append(f"tensor {prefix + cad!r} has shape {tuple(tensor.shape)}, the config implies"
                            f" {model_shapes[ours]}")
            continue
        state[ours] = tensor
    problems += [f"unexpected tensor {(k if k.startswith('lm_head.') else prefix + k)!r}" for k in canonical]
    if head is not None:
        if tuple(head.shape) != (spec.vocab_size, config.d_model):
            problems.append(f"tensor 'lm_head.weight' has shape {tuple(head.shape)}, the config implies"
                            f" ({spec.vocab_size}, {config.d_model})")
        else:
            head = head[TO_CADUCEUS]
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise InputError(f"{path} does not match {spec.path.name}: {'; '.join(problems[:3])}{more}")
    return state, head


# -- where a checkpoint comes from --------------------------------------------------------------------


def is_hub_id(source: str | os.PathLike) -> bool:
    """``owner/name`` that is not an existing local path: a Hugging Face hub repository id."""
    text = os.fspath(source)
    return not Path(text).exists() and bool(_HUB_ID.match(text))


def is_caduceus_source(source: str | os.PathLike) -> bool:
    """A hub id, or a local directory whose ``config.json`` says ``model_type: caduceus`` (a loose look)."""
    if isinstance(source, (str, os.PathLike)) and is_hub_id(source):
        return True
    try:
        data = json.loads((Path(source) / CONFIG_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError):
        return False
    return isinstance(data, dict) and data.get("model_type") == "caduceus"


def resolve_caduceus_source(source: str | os.PathLike, revision: str | None = None) -> Path:
    """A local directory as it is; a hub id downloaded with ``huggingface_hub.snapshot_download`` (only
    ``config.json``, ``*.safetensors`` and ``pytorch_model.bin``; cached as the hub client caches)."""
    if Path(source).exists():
        return Path(source)
    text = os.fspath(source)
    if not is_hub_id(text):
        raise InputError(f"{text}: no such directory")
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise InputError(f"{text}: no such local directory, and loading it from the Hugging Face hub needs"
                         f" huggingface_hub: {HUB_EXTRA}") from None
    try:
        return Path(snapshot_download(repo_id=text, revision=revision, allow_patterns=HUB_FILES))
    except Exception as err:  # network, authentication, unknown repository or revision
        raise InputError(f"{text}: no such local directory, and the download from the Hugging Face hub failed"
                         f" ({_one_line(err)})") from None


def load_caduceus_parts(
    source: str | os.PathLike, shapes_of: Callable[[MambaConfig], dict[str, tuple[int, ...]]],
    revision: str | None = None,
) -> tuple[CaduceusSpec, dict[str, torch.Tensor], torch.Tensor | None]:
    """(the checked config, a `DNAEncoder` state dict, the MLM head's weight or None) of a Caduceus checkpoint.

    ``shapes_of(config)``: the encoder's tensor shapes for a config (`seqmamba.dna.DNAEncoder.state_shapes`);
    the encoder itself is built by `DNAEncoder.from_pretrained`, which reads Caduceus checkpoints through here.
    """
    directory = resolve_caduceus_source(source, revision)
    spec = read_caduceus_config(directory)
    path, tensors = read_caduceus_tensors(directory)
    state, head = convert_caduceus_tensors(spec, path, tensors, shapes_of(spec.config))
    return spec, state, head


def rcps_hidden(encoder: nn.Module, ids: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Caduceus-PS's ``last_hidden_state`` layout: (batch, L, 2*d_model), [forward strand | RC strand flipped in
    L and channels]. ``ids`` are DNATokenizer ids."""
    hidden, hidden_rc = encoder.strands(ids, mask)  # (batch, L, d_model) each; hidden_rc in its own order
    return torch.cat([hidden, hidden_rc.flip(1, 2)], dim=-1)


def caduceus_ids(ids: torch.Tensor) -> torch.Tensor:
    """DNATokenizer ids -> Caduceus ids (same shape)."""
    return torch.tensor(TO_CADUCEUS, device=ids.device)[ids]


def from_caduceus_ids(ids: torch.Tensor) -> torch.Tensor:
    """Caduceus ids -> DNATokenizer ids; a Caduceus token seqmamba lacks ([BOS], [RESERVED]) is a ValueError."""
    table = torch.full((max(TO_CADUCEUS) + 1,), -1, dtype=torch.long)
    table[TO_CADUCEUS] = torch.arange(len(TO_CADUCEUS))
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= table.numel() or bool((table[ids] < 0).any())):
        raise ValueError("ids hold Caduceus tokens that DNATokenizer has no id for ([BOS], [RESERVED], padding)")
    return table.to(ids.device)[ids]


# -- writing -------------------------------------------------------------------------------------------


def write_caduceus(
    directory: str | os.PathLike, encoder: nn.Module, head: nn.Linear | None = None
) -> Path:
    """Write ``encoder`` (and an MLM ``head`` over DNATokenizer ids) as a Caduceus checkpoint directory.

    ``config.json`` (``model_type: caduceus``) and ``model.safetensors`` with ``CaduceusForMaskedLM``'s tensor
    names in Caduceus's vocabulary order. Unlike the published files (``save_pretrained`` of transformers 4.38
    leaves the tied copies out), the tied copies (``mamba_rev.in_proj`` / ``out_proj``, ``lm_head``) are written
    too: transformers 4.44 leaves a left-out ``mamba_rev.in_proj`` uninitialised when it loads the file.
    Without a head, or with one tied to the embedding, the MLM head is the embedding (Caduceus ties them).
    A Caduceus-Ph head of its own is written with ``tie_word_embeddings: false``; Caduceus-PS always ties
    its head, and Caduceus's head has no bias: either of those is a ValueError. Rows of tokens seqmamba
    lacks ([BOS], [RESERVED], vocabulary padding) are zeros. Files are written atomically, weights first.
    """
    config = encoder.config
    _check_writable(config)
    vocab = len(CADUCEUS_TOKENS) + (-len(CADUCEUS_TOKENS)) % 8
    embedding = encoder.embedding.weight
    tied = True
    if head is not None:
        if head.bias is not None and bool(head.bias.detach().ne(0).any()):
            raise ValueError("cannot write this model in the Caduceus layout: its MLM head has a bias and"
                             " Caduceus's has none; save_caduceus(model.encoder, ...) writes the encoder alone")
        tied = head.weight is embedding or torch.equal(head.weight.detach(), embedding.detach())
        if not tied and config.rc_equivariant:
            raise ValueError("cannot write this model in the Caduceus layout: Caduceus-PS ties its MLM head to the"
                             " embedding and this head differs from it; save_caduceus(model.encoder, ...) writes"
                             " the encoder alone")

    def to_caduceus_rows(weight: torch.Tensor) -> torch.Tensor:
        rows = weight.new_zeros(vocab, weight.shape[1])
        rows[TO_CADUCEUS] = weight
        return rows

    state = {k: v.detach().float().cpu() for k, v in encoder.state_dict().items()}
    rcps, fused = bool(config.rc_equivariant), bool(config.rc_strand_swap)
    canonical: dict[str, torch.Tensor] = {}
    for cad, ours in _name_table(config):
        canonical[cad] = to_caduceus_rows(state[ours]) if ours == "embedding.weight" else state[ours]
    for rev, fwd in _tied_copies(config).items():
        canonical[rev] = canonical[fwd]
    head_weight = canonical["embeddings.word_embeddings.weight"] if tied else head.weight.detach().float().cpu()
    canonical["lm_head.weight"] = head_weight if tied else to_caduceus_rows(head_weight)
    tensors = {_published_name(k, rcps, fused): v.contiguous().clone() for k, v in canonical.items()}
    if rcps:
        comp = torch.tensor(caduceus_complement(vocab), dtype=torch.long)
        tensors["caduceus.backbone.embeddings.word_embeddings.complement_map"] = comp
        tensors["lm_head.complement_map"] = comp.clone()
    text = json.dumps(caduceus_config_dict(config, tie_word_embeddings=tied), indent=2, sort_keys=True) + "\n"

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with atomic_path(directory / SAFETENSORS_NAME) as tmp:
        save_tensors(tensors, tmp)
    with atomic_path(directory / CONFIG_NAME) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")
    return directory


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    text = text if len(text) <= 300 else text[:297] + "..."
    return f"{type(err).__name__}: {text}"


__all__ = [
    "CADUCEUS_TOKENS", "TO_CADUCEUS", "CaduceusSpec", "caduceus_complement", "caduceus_ids", "convert_caduceus_tensors",
    "from_caduceus_ids", "is_caduceus_source", "is_hub_id", "load_caduceus_parts",
    "rcps_hidden", "read_caduceus_config", "read_caduceus_tensors", "resolve_caduceus_source", "seqmamba_complement",
    "write_caduceus",
]
