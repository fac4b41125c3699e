"""The model directory: one validated reader for every model seqmamba saves; nothing is ever unpickled.

Layout (what ``save``, ``save_pretrained`` and the ``train`` commands write)::

    config.json         {"format_version": 1, "model_type": <the kind tag>, "seqmamba_version": ..., ...}
    model.safetensors   the weights (a forecaster adds its context rows and stream state)
    tokenizer.json      DNA models: the DNATokenizer state
    estimator.json      DNA models: estimator, hyperparameters, head, classes (renamed in last)

``model_type`` in config.json is the kind tag: ``MambaForecaster`` is a forecaster (``seqmamba train
forecast``), ``SequenceHeadModel`` and ``MaskedLMModel`` are the modules of a DNA model (``seqmamba train
dna``, ``MambaSequenceClassifier`` / ``MambaEmbedder``), any other class name is an encoder checkpoint
(``DNAEncoder.save_pretrained``). A loader of one kind refuses the others by name, saying how to load them.

Every problem is an `InputError` (one line on the command line) naming the file and, inside a JSON file, the
field: ``model/estimator.json: field 'params.d_model': expected an integer, got "x"``; weights are checked
against the model the config describes before any is used: ``model/model.safetensors: tensor 'head.weight'
has shape (3, 8), the config implies (2, 8)``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

import torch

from .errors import InputError

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
TOKENIZER_NAME = "tokenizer.json"
ESTIMATOR_NAME = "estimator.json"
# Version of config.json's envelope (format_version), apart from the versions of what it holds.
FORMAT_VERSION = 1

# The kinds of model directory, told apart by config.json's model_type.
ENCODER = "encoder checkpoint"
DNA_MODEL = "DNA model"
FORECASTER = "forecaster"
DNA_MODULES = ("SequenceHeadModel", "MaskedLMModel", "CausalLMModel")  # the estimators' modules (_heads.py)
FORECASTER_TYPE = "MambaForecaster"
_HOW_TO_LOAD = {
    DNA_MODEL: "`seqmamba classify` / `seqmamba embed`, or MambaSequenceClassifier.load / MambaEmbedder.load",
    FORECASTER: "`seqmamba forecast`, or MambaForecaster.load",
}

T = TypeVar("T")
_REQUIRED: Any = object()


def kind_of(model_type: str) -> str:
    """The kind of directory (`DNA_MODEL`, `FORECASTER` or `ENCODER`) whose config.json names ``model_type``."""
    if model_type == FORECASTER_TYPE:
        return FORECASTER
    return DNA_MODEL if model_type in DNA_MODULES else ENCODER


def directory_kind(directory: str | os.PathLike) -> tuple[str, str] | None:
    """``(kind, model_type)`` of a model directory from its config.json, or None when it has no readable one.

    A loose look for error messages (it never raises); loading validates everything. A directory with an
    estimator.json is a DNA model whatever its module.
    """
    try:
        envelope = json.loads((Path(directory) / CONFIG_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    model_type = envelope.get("model_type") if isinstance(envelope, dict) else None
    if not isinstance(model_type, str):
        return None
    return (DNA_MODEL if (Path(directory) / ESTIMATOR_NAME).is_file() else kind_of(model_type)), model_type


RUN_OPTIONS = "options.json"  # a model directory's training/options.json: the options of the run that made it


def run_command(run_dir: str | os.PathLike) -> str | None:
    """The command that a run directory's options.json names ("pretrain"), or None: no readable options, or
    those of `seqmamba train dna`, which name none."""
    try:
        options = json.loads((Path(run_dir) / RUN_OPTIONS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return options.get("command") if isinstance(options, dict) else None


def wrong_kind(path: str | os.PathLike, model_type: str, wanted: str, subject: str = "") -> InputError:
    """The error for a model file of another kind than the loader's (``wanted``: what it loads).

    ``<path>: [<subject> ]holds a <model_type> (a <kind> directory), not a <wanted>; load it with <how>``.
    """
    kind = kind_of(model_type)
    lead = f"{path}: {subject} holds a {model_type}" if subject else f"{path}: holds a {model_type}"
    if kind == ENCODER:
        return InputError(f"{lead}, not a {wanted}; load it with {model_type}.from_pretrained")
    return InputError(f"{lead} (a {kind} directory), not a {wanted}; load it with {_HOW_TO_LOAD[kind]}")


# -- JSON records ----------------------------------------------------------------------------------------------


class Record:
    """A JSON object of a model file, read field by field: every error names the file and the field's path.

    ``key`` arguments are dotted paths (``"head.n_outputs"``); ``hint`` is a type as annotations write it
    (``int``, ``float | None``, ``list[str]``, ``Literal["mean", "max"]``).

    Example:
        >>> record = Record("m/estimator.json", {"params": {"d_model": "x"}, "head": {"n_outputs": 2}})
        >>> record.get("head.n_outputs", int)
        2
        >>> record.get("params.d_model", int)
        Traceback (most recent call last):
        ...
        seqmamba.errors.InputError: m/estimator.json: field 'params.d_model': expected an integer, got "x"
    """

    def __init__(self, path: str | os.PathLike, data: dict[str, Any]) -> None:
        self.path = Path(path)
        self.data = data

    def __repr__(self) -> str:
        return f"Record({str(self.path)!r})"

    def __contains__(self, key: str) -> bool:
        try:
            self._lookup(key)
        except KeyError:
            return False
        return True

    def error(self, key: str, message: str) -> InputError:
        """An InputError ``<file>: field '<key>': <message>`` (no field for an empty ``key``)."""
        return InputError(f"{self.path}: field '{key}': {message}" if key else f"{self.path}: {message}")

    def get(self, key: str, hint: Any = Any, default: Any = _REQUIRED) -> Any:
        """The value at ``key``, checked against ``hint``; ``default`` when absent (required without one)."""
        try:
            value = self._lookup(key)
        except KeyError:
            if default is _REQUIRED:
                raise self.error(key, f"missing (expected {describe(hint)})") from None
            return default
        if not matches(value, hint):
            raise self.error(key, f"expected {describe(hint)}, got {shown(value)}")
        return value

    def positive_int(self, key: str) -> int:
        """An integer >= 1 at ``key`` (counts, widths)."""
        value = self.get(key, int)
        if value < 1:
            raise self.error(key, f"expected a positive integer, got {shown(value)}")
        return value

    def object(self, key: str) -> dict[str, Any]:
        """The JSON object at ``key``."""
        return self.get(key, dict)

    def check_fields(self, key: str, hints: Mapping[str, Any]) -> dict[str, Any]:
        """The object at ``key`` with every field that ``hints`` names checked against its hint.

        Fields ``hints`` does not know are left to the caller (old or new records keep loading).
        """
        data = self.object(key) if key else self.data
        for name in data:
            if name in hints:
                self.get(f"{key}.{name}" if key else name, hints[name])
        return data

    def build(self, key: str, factory: Callable[[Any], T]) -> T:
        """``factory(value at key)``; its ValueError/TypeError (a value out of range) named by file and field."""
        value = self.get(key) if key else self.data
        try:
            return factory(value)
        except (TypeError, ValueError) as error:
            message = str(error)
            if message.startswith(f"{self.path}:"):
                raise
            raise self.error(key, message) from None

    def _lookup(self, key: str) -> Any:
        value: Any = self.data
        for part in key.split("."):
            if not isinstance(value, dict) or part not in value:
                raise KeyError(key)
            value = value[part]
        return value


def read_record(path: str | os.PathLike) -> Record:
    """The JSON object in ``path`` as a `Record`; InputError if it is missing, not JSON, or not an object."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, not a JSON file") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a JSON text file (not UTF-8)") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(f"{path}: line {error.lineno}, column {error.colno}: invalid JSON: {error.msg}") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object, got {describe_value(data)}")
    return Record(path, data)


def read_config(directory: str | os.PathLike, wanted: str | None = None, loader: str | None = None) -> Record:
    """config.json of a model directory: a JSON object of a supported format with a ``model_type`` tag.

    ``wanted`` (`DNA_MODEL`, `FORECASTER` or `ENCODER`): the kind the caller loads; another kind is refused
    with a message saying how to load it. ``loader`` (a class name) words that message.
    """
    path = Path(directory) / CONFIG_NAME
    if not path.is_file() and not path.is_dir():
        raise InputError(f"{path}: no such file; a seqmamba checkpoint has {CONFIG_NAME} and {WEIGHTS_NAME}")
    record = read_record(path)
    version = record.data.get("format_version")
    if version != FORMAT_VERSION or isinstance(version, bool):
        raise InputError(f"{path}: checkpoint format version {version!r} is not supported (this seqmamba reads "
                         f"{FORMAT_VERSION}); it was written by seqmamba {record.data.get('seqmamba_version', '?')}")
    model_type = record.get("model_type", str)
    if wanted is not None and kind_of(model_type) != wanted:
        raise wrong_kind(path, model_type, loader or f"{wanted}")
    return record


# -- types, as annotations write them ---------------------------------------------------------------------------


def hints_of(obj: Any) -> dict[str, Any]:
    """The annotated types of a dataclass's fields, or of a class's ``__init__`` parameters ({} if unreadable)."""
    target = obj if dataclasses.is_dataclass(obj) else getattr(obj, "__init__", obj)
    try:
        hints = typing.get_type_hints(target)
    except Exception:  # an annotation that does not evaluate: no checks rather than a false alarm
        return {}
    hints.pop("return", None)
    return hints


def matches(value: Any, hint: Any) -> bool:
    """Whether the JSON ``value`` fits the annotation ``hint`` (a bool is not a number; an int is a float)."""
    if hint is Any or hint is object:
        return True
    origin = typing.get_origin(hint)
    if origin is Union or origin is types.UnionType:
        known = [arg for arg in typing.get_args(hint) if _json_type(arg)]
        return not known or any(matches(value, arg) for arg in known)
    if origin is Literal:
        return any(value == arg and type(value) is type(arg) for arg in typing.get_args(hint))
    if origin in (list, Sequence, tuple):
        args = typing.get_args(hint)
        return isinstance(value, list) and (not args or all(matches(v, args[0]) for v in value))
    if origin in (dict, Mapping):
        args = typing.get_args(hint)
        return isinstance(value, dict) and (len(args) < 2 or all(matches(v, args[1]) for v in value.values()))
    if hint is None or hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint in (str, dict, list):
        return isinstance(value, hint)
    return True  # a type JSON cannot hold (np.random.RandomState): nothing to check


def _json_type(hint: Any) -> bool:
    # A type a JSON value can have (np.random.RandomState, os.PathLike cannot: they say nothing about one).
    origin = typing.get_origin(hint)
    return hint in (None, type(None), bool, int, float, str, dict, list) or origin in (
        Union, types.UnionType, Literal, list, dict, tuple, Sequence, Mapping)


def describe(hint: Any) -> str:
    """``int | None`` -> "an integer or null"."""
    if hint is Any or hint is object:
        return "a value"
    origin = typing.get_origin(hint)
    if origin is Union or origin is types.UnionType:
        return " or ".join(dict.fromkeys(describe(arg) for arg in typing.get_args(hint) if _json_type(arg)))
    if origin is Literal:
        return "one of " + ", ".join(json.dumps(arg) for arg in typing.get_args(hint))
    if origin in (list, Sequence, tuple):
        args = typing.get_args(hint)
        return f"a list of {_plural(describe(args[0]))}" if args else "a list"
    if origin in (dict, Mapping) or hint is dict:
        return "an object"
    names = {type(None): "null", None: "null", bool: "true or false", int: "an integer", float: "a number",
             str: "a string", list: "a list"}
    return names.get(hint, "a value")


def _plural(text: str) -> str:
    words = {"an integer": "integers", "a number": "numbers", "a string": "strings", "true or false": "booleans",
             "an object": "objects"}
    return words.get(text, text)


def describe_value(value: Any) -> str:
    """What a JSON value is, for messages: "a list", "a string"."""
    for kind, text in ((bool, "true or false"), (int, "an integer"), (float, "a number"), (str, "a string"),
                       (list, "a list"), (dict, "an object")):
        if isinstance(value, kind):
            return text
    return "null" if value is None else type(value).__name__


def shown(value: Any, limit: int = 40) -> str:
    """``value`` as JSON, cut to ``limit`` characters."""
    try:
        text = json.dumps(value, allow_nan=True)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


# -- safetensors -------------------------------------------------------------------------------------------------

_DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U64": 8,
                "U32": 4, "U16": 2, "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1}
_MAX_HEADER = 100 * 1024 * 1024  # safetensors' own limit


def read_tensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Every tensor of a safetensors file, on the CPU, after checking the file's structure.

    The header must be a JSON table whose tensors fill the rest of the file exactly: a file cut short,
    padded, or of another format is ``<path>: truncated or not a safetensors file``. Cheap: the header is
    read first, the tensors only when it holds.
    """
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    bad = InputError(f"{path}: truncated or not a safetensors file")
    size = path.stat().st_size
    with open(path, "rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            raise bad
        header_size = int.from_bytes(prefix, "little")
        if header_size > min(size - 8, _MAX_HEADER):
            raise bad
        try:
            header = json.loads(handle.read(header_size))
        except (UnicodeDecodeError, ValueError):
            raise bad from None
    if not isinstance(header, dict):
        raise bad
    end = 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if not _valid_entry(entry):
            raise bad
        end = max(end, entry["data_offsets"][1])
    if 8 + header_size + end != size:
        raise bad
    try:
        return load_file(path, device="cpu")
    except Exception:  # safetensors' own error types: whatever it still finds wrong
        raise bad from None


def _valid_entry(entry: Any) -> bool:
    if not isinstance(entry, dict) or not matches(entry.get("shape"), list[int]) or \
            not matches(entry.get("data_offsets"), list[int]) or len(entry["data_offsets"]) != 2:
        return False
    begin, end = entry["data_offsets"]
    width = _DTYPE_BYTES.get(entry.get("dtype"))
    if width is None or not 0 <= begin <= end or any(d < 0 for d in entry["shape"]):
        return False
    return end - begin == width * math.prod(entry["shape"])


def shape_text(shape: Sequence[int]) -> str:
    """``(8,)``, ``(16, 4)``: a shape as Python writes a tuple."""
    return str(tuple(int(d) for d in shape))


def check_tensors(path: str | os.PathLike, tensors: Mapping[str, torch.Tensor],
                  expected: Mapping[str, torch.Tensor | Sequence[int]], source: str = "the config") -> None:
    """Refuse weights whose names or shapes differ from the ``expected`` ones (a state dict, or shapes).

    The message names the first tensor that differs, its shape and the one ``source`` implies, and how many
    more differ: ``<path>: tensor 'head.weight' has shape (3, 8), the config implies (2, 8)``.
    """
    problems = []
    for name, want in expected.items():
        want_shape = want.shape if isinstance(want, torch.Tensor) else want
        if name not in tensors:
            problems.append(f"tensor {name!r} is missing ({source} implies shape {shape_text(want_shape)})")
        elif tuple(tensors[name].shape) != tuple(want_shape):
            problems.append(f"tensor {name!r} has shape {shape_text(tensors[name].shape)}, {source} implies "
                            f"{shape_text(want_shape)}")
    problems += [f"tensor {name!r} is not in the model {source} describes" for name in tensors if name not in expected]
    if problems:
        more = len(problems) - 1
        raise InputError(f"{path}: {problems[0]}" + (f" ({more} more tensors differ)" if more > 1 else
                                                     " (1 more tensor differs)" if more else ""))


def copy_into(module: torch.nn.Module, tensors: Mapping[str, torch.Tensor]) -> None:
    """Copy checked ``tensors`` (`check_tensors` against ``module.state_dict()``) into ``module``."""
    with torch.no_grad():
        for name, target in module.state_dict().items():
            target.copy_(tensors[name])
