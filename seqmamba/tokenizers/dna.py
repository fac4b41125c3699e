"""Single-nucleotide DNA tokenizer: a 256-entry lookup table over the bytes of a sequence."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from ..errors import InputError
from ..json_state import write_json

# Token ids are part of every checkpoint's contract: never renumber, only append.
PAD, A, C, G, T, N, CLS, SEP, MASK, UNK = range(10)
TOKENS = ("[PAD]", "A", "C", "G", "T", "N", "[CLS]", "[SEP]", "[MASK]", "[UNK]")
# Token id -> id of its complement (A<->T, C<->G; N and the special tokens are their own): the
# `MambaConfig.complement_map` of an RC-equivariant model over this vocabulary.
COMPLEMENT = (PAD, T, G, C, A, N, CLS, SEP, MASK, UNK)
# The same pairing on sequence text: IUPAC codes (R<->Y, K<->M, B<->V, D<->H; S, W, N their own), either
# case, U read as T; for `bytes.translate` of sequences kept as text (e.g. a window's minus strand).
TEXT_COMPLEMENT = bytes.maketrans(b"ACGTUNRYSWKMBDHVacgtunryswkmbdhv", b"TGCAANYRSWMKVHDBtgcaanyrswmkvhdb")
NUCLEOTIDES = "ACGTN"
# IUPAC ambiguity codes (N itself is a token). U (uracil) is read as T.
AMBIGUITY = "RYSWKMBDHV"
_INVALID = 255  # lookup-table sentinel, never a token id

AmbiguityPolicy = Literal["n", "unk", "error"]
LowercasePolicy = Literal["fold", "hardmask", "error"]


class DNATokenizer:
    """Maps DNA text to token ids, one token per nucleotide.

    Vocabulary (ids are fixed across versions): ``0 [PAD]``, ``1 A``, ``2 C``, ``3 G``, ``4 T``,
    ``5 N``, ``6 [CLS]``, ``7 [SEP]`` (also the end of sequence), ``8 [MASK]``, ``9 [UNK]``.

    Args:
        ambiguity: what IUPAC ambiguity codes (R, Y, S, W, K, M, B, D, H, V) become: ``"n"`` (N,
            the default), ``"unk"`` ([UNK]) or ``"error"``.
        lowercase: soft-masked (lower-case) bases: ``"fold"`` to upper case (default), ``"hardmask"``
            to N (as repeat-masked genomes do), or ``"error"``. ``encode(..., return_soft_mask=True)``
            returns where they were in every case.

    U reads as T. Any other byte (gaps, digits, whitespace, ``*``...) raises :class:`InputError`
    (a ``ValueError``) naming the character, its 0-based position and the record.

    Example:
        >>> tok = DNATokenizer()
        >>> tok.encode("ACgtN")
        array([1, 2, 3, 4, 5], dtype=uint8)
        >>> ids, soft = tok.encode("ACgtN", return_soft_mask=True)
        >>> soft.tolist()
        [False, False, True, True, False]
        >>> tok.decode(tok.reverse_complement(ids))
        'NACGT'
        >>> batch = tok.encode_batch(["ACG", "T"])
        >>> batch["input_ids"].tolist(), batch["attention_mask"].tolist()
        ([[1, 2, 3], [4, 0, 0]], [[1, 1, 1], [1, 0, 0]])
    """

    pad_id, mask_id, cls_id, sep_id, eos_id, unk_id = PAD, MASK, CLS, SEP, SEP, UNK
    vocab: tuple[str, ...] = TOKENS
    vocab_size: int = len(TOKENS)

    def __init__(self, ambiguity: AmbiguityPolicy = "n", lowercase: LowercasePolicy = "fold") -> None:
        if ambiguity not in ("n", "unk", "error"):
            raise ValueError(f"ambiguity must be 'n', 'unk' or 'error', not {ambiguity!r}")
        if lowercase not in ("fold", "hardmask", "error"):
            raise ValueError(f"lowercase must be 'fold', 'hardmask' or 'error', not {lowercase!r}")
        self.ambiguity = ambiguity
        self.lowercase = lowercase
        self._table = self._build_table()
        self._lower = np.zeros(256, dtype=bool)
        self._lower[np.frombuffer(b"acgtunrywskmbdhv", dtype=np.uint8)] = True
        self._complement = np.arange(256, dtype=np.uint8)
        self._complement[: len(COMPLEMENT)] = COMPLEMENT
        self._letters = np.frombuffer(b"?ACGTN????", dtype=np.uint8).copy()

    def _build_table(self) -> np.ndarray:
        table = np.full(256, _INVALID, dtype=np.uint8)
        upper = {"A": A, "C": C, "G": G, "T": T, "U": T, "N": N}
        ambiguous = {"n": N, "unk": UNK, "error": _INVALID}[self.ambiguity]
        upper.update(dict.fromkeys(AMBIGUITY, ambiguous))
        for letter, token in upper.items():
            table[ord(letter)] = token
            if self.lowercase == "fold":
                table[ord(letter.lower())] = token
            elif self.lowercase == "hardmask":
                table[ord(letter.lower())] = N if token != _INVALID else _INVALID
        return table

    # -- encoding -------------------------------------------------------------------------------

    def encode(
        self,
        sequence: str | bytes | bytearray | memoryview,
        *,
        return_soft_mask: bool = False,
        add_special_tokens: bool = False,
        record: str | None = None,
        offset: int = 0,
        dtype: np.typing.DTypeLike = np.uint8,
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Token ids of one sequence (uint8 by default: a million bases take a megabyte).

        ``record`` and ``offset`` (the sequence's start in its record) only make error messages
        point at the right place. ``add_special_tokens`` wraps the ids as ``[CLS] ... [SEP]``
        (the soft mask gets False there).
        """
        raw = self._as_bytes(sequence, record, offset)
        codes = np.frombuffer(raw, dtype=np.uint8)
        ids = self._table[codes]
        # One reduction instead of a boolean scan: the sentinel is larger than every token id.
        if ids.size and ids.max() == _INVALID:
            bad = int(np.argmax(ids == _INVALID))
            raise self._bad_character(chr(codes[bad]), bad, record, offset)
        if add_special_tokens:
            ids = np.concatenate(([CLS], ids, [SEP])).astype(np.uint8)
        if dtype != np.uint8:
            ids = ids.astype(dtype)
        if not return_soft_mask:
            return ids
        soft = self._lower[codes]
        if add_special_tokens:
            soft = np.concatenate(([False], soft, [False]))
        return ids, soft

    def encode_batch(
        self,
        sequences: Sequence[str | bytes],
        *,
        max_length: int | None = None,
        truncation: bool = False,
        add_special_tokens: bool = False,
        return_soft_mask: bool = False,
        names: Sequence[str] | None = None,
        dtype: np.typing.DTypeLike = np.int64,
    ) -> dict[str, np.ndarray]:
        """Encode and right-pad with [PAD] to the longest sequence, or to ``max_length``.

        Returns ``{"input_ids", "attention_mask"}`` (both ``(batch, length)``; the mask is 1 on real
        tokens) plus ``"soft_mask"`` when asked. Ids default to int64, ready for an embedding.
        A sequence longer than ``max_length`` is an error unless ``truncation=True``.
        """
        encoded = []
        for i, seq in enumerate(sequences):
            record = names[i] if names is not None else f"sequence {i}"
            encoded.append(self.encode(seq, return_soft_mask=True, add_special_tokens=add_special_tokens,
                                       record=record))
        lengths = [len(ids) for ids, _ in encoded]
        width = max(lengths, default=0) if max_length is None else max_length
        if max_length is not None and not truncation:
            too_long = [i for i, n in enumerate(lengths) if n > max_length]
            if too_long:
                raise InputError(f"sequence {too_long[0]} has {lengths[too_long[0]]} tokens, more than "
                                 f"max_length={max_length} (pass truncation=True to cut)")
        input_ids = np.full((len(encoded), width), PAD, dtype=dtype)
        attention = np.zeros((len(encoded), width), dtype=np.int64)
        soft_mask = np.zeros((len(encoded), width), dtype=bool)
        for row, (ids, soft) in enumerate(encoded):
            n = min(len(ids), width)
            input_ids[row, :n] = ids[:n]
            attention[row, :n] = 1
            soft_mask[row, :n] = soft[:n]
        out = {"input_ids": input_ids, "attention_mask": attention}
        if return_soft_mask:
            out["soft_mask"] = soft_mask
        return out

    # -- decoding and strands -------------------------------------------------------------------

    def decode(
        self,
        ids: np.ndarray | Sequence[int],
        *,
        soft_mask: np.ndarray | None = None,
        skip_special_tokens: bool = True,
    ) -> str:
        """Text of a 1-D id array; ``soft_mask`` writes those bases in lower case again.

        Special tokens are dropped by default, or written as ``[PAD]``, ``[CLS]``... otherwise.
        """
        ids = np.asarray(ids)
        if ids.ndim != 1:
            raise ValueError(f"decode takes one sequence (1-D ids), got shape {ids.shape}")
        if ids.size and (ids.min() < 0 or ids.max() >= self.vocab_size):
            bad = ids[(ids < 0) | (ids >= self.vocab_size)][0]
            raise ValueError(f"token id {int(bad)} is not in the vocabulary (0..{self.vocab_size - 1})")
        ids = ids.astype(np.uint8)
        letters = self._letters[ids]
        if soft_mask is not None:
            soft_mask = np.asarray(soft_mask, dtype=bool)
            if soft_mask.shape != ids.shape:
                raise ValueError(f"soft_mask shape {soft_mask.shape} differs from ids shape {ids.shape}")
            letters = np.where(soft_mask & (ids >= A) & (ids <= N), letters | 0x20, letters)
        is_base = (ids >= A) & (ids <= N)
        if skip_special_tokens:
            return letters[is_base].tobytes().decode("ascii")
        if is_base.all():
            return letters.tobytes().decode("ascii")
        # Debugging path only: special tokens are rare, a per-token join is fine here.
        pieces = zip(letters, is_base, ids, strict=True)
        return "".join(chr(b) if base else TOKENS[i] for b, base, i in pieces)

    def reverse_complement(self, ids: np.ndarray, attention_mask: np.ndarray | None = None) -> np.ndarray:
        """Reverse complement of 1-D ids or of each row of a ``(batch, length)`` array.

        Only sequence tokens (bases, [MASK], [UNK]) move: [PAD], [CLS] and [SEP] keep their places,
        so padded batches and ``[CLS] ... [SEP]`` framing stay valid. Applying it twice gives the
        input back. ``attention_mask`` (optional) marks further positions that must not move.
        """
        ids = np.asarray(ids)
        if ids.ndim not in (1, 2):
            raise ValueError(f"reverse_complement takes 1-D or 2-D ids, got shape {ids.shape}")
        rows = ids.reshape(1, -1) if ids.ndim == 1 else ids
        movable = (rows != PAD) & (rows != CLS) & (rows != SEP)
        if attention_mask is not None:
            movable &= np.asarray(attention_mask, dtype=bool).reshape(rows.shape)
        flat = np.flatnonzero(movable.ravel())  # row-major: grouped by row, ascending columns
        counts = movable.sum(axis=1)
        starts = np.repeat(np.cumsum(counts) - counts, counts)
        ends = np.repeat(np.cumsum(counts) - 1, counts)
        k = np.arange(flat.size)
        mirrored = flat[starts + ends - k]  # the k-th movable position takes its row-mirror's token
        out = rows.copy().ravel()
        out[flat] = self._complement[rows.ravel()[mirrored].astype(np.intp)].astype(ids.dtype)
        return out.reshape(ids.shape)

    # -- configuration --------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable state, as stored in checkpoints."""
        return {"type": "DNATokenizer", "format": 1, "vocab": list(TOKENS),
                "ambiguity": self.ambiguity, "lowercase": self.lowercase}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> DNATokenizer:
        if state.get("type") != "DNATokenizer":
            raise InputError(f"not a DNATokenizer state: type={state.get('type')!r}")
        if list(state.get("vocab", TOKENS)) != list(TOKENS):
            raise InputError(
                f"tokenizer vocabulary {state['vocab']} differs from this version's {list(TOKENS)}"
            )
        return cls(ambiguity=state.get("ambiguity", "n"), lowercase=state.get("lowercase", "fold"))

    def save(self, path: str | os.PathLike) -> None:
        """Write :meth:`to_dict` as JSON, atomically (a half-written file never replaces a good one)."""
        write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike) -> DNATokenizer:
        """A tokenizer written by :meth:`save`; InputError names the file and the field that is wrong."""
        from ..model_dir import hints_of, read_record

        record = read_record(path)
        record.get("type", str)
        record.get("vocab", list[str], None)
        record.check_fields("", hints_of(cls))
        return record.build("", cls.from_dict)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DNATokenizer) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash((self.ambiguity, self.lowercase))

    def __repr__(self) -> str:
        return f"DNATokenizer(ambiguity={self.ambiguity!r}, lowercase={self.lowercase!r})"

    # -- helpers --------------------------------------------------------------------------------

    @staticmethod
    def _as_bytes(sequence: Any, record: str | None, offset: int) -> bytes | bytearray | memoryview:
        if isinstance(sequence, str):
            try:
                return sequence.encode("ascii")
            except UnicodeEncodeError as error:
                bad = error.start
                raise DNATokenizer._bad_character(sequence[bad], bad, record, offset) from None
        if isinstance(sequence, (bytes, bytearray, memoryview)):
            return sequence
        if isinstance(sequence, np.ndarray) and sequence.dtype == np.uint8:
            return sequence.tobytes()
        raise TypeError(f"encode takes str or bytes, not {type(sequence).__name__}")

    @staticmethod
    def _bad_character(char: str, position: int, record: str | None, offset: int) -> InputError:
        where = f"record {record!r}, " if record is not None else ""
        return InputError(f"{where}position {offset + position}: {char!r} is not a nucleotide code "
                          "(A C G T U N or an IUPAC ambiguity code)")
