"""DNATokenizer: ids, policies, batches, decode, reverse complement, JSON state."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seqmamba import DNATokenizer
from seqmamba.errors import InputError

tok = DNATokenizer()
bases = st.text(alphabet="ACGTNacgtn", max_size=300)


def test_ids_are_documented_and_stable():
    assert tok.vocab == ("[PAD]", "A", "C", "G", "T", "N", "[CLS]", "[SEP]", "[MASK]", "[UNK]")
    assert (tok.pad_id, tok.cls_id, tok.sep_id, tok.eos_id, tok.mask_id, tok.unk_id) == (0, 6, 7, 7, 8, 9)
    assert tok.encode("ACGTN").tolist() == [1, 2, 3, 4, 5]


def test_str_bytes_and_dtype():
    assert tok.encode(b"acgu").tolist() == tok.encode("ACGT").tolist()
    assert tok.encode("ACGT", dtype=np.int64).dtype == np.int64
    assert tok.encode("").tolist() == []


def test_ambiguity_policies():
    assert tok.encode("RYKMSWBDHV").tolist() == [5] * 10
    assert DNATokenizer(ambiguity="unk").encode("ARy").tolist() == [1, 9, 9]
    with pytest.raises(InputError, match=r"position 1: 'R'"):
        DNATokenizer(ambiguity="error").encode("AR")


def test_lowercase_policies_and_soft_mask():
    ids, soft = tok.encode("ACgt", return_soft_mask=True)
    assert ids.tolist() == [1, 2, 3, 4] and soft.tolist() == [False, False, True, True]
    assert DNATokenizer(lowercase="hardmask").encode("ACgt").tolist() == [1, 2, 5, 5]
    with pytest.raises(InputError, match="position 2"):
        DNATokenizer(lowercase="error").encode("ACg")


@pytest.mark.parametrize("text, char, pos", [("ACGX", "'X'", 3), ("AC-G", "'-'", 2), ("A C", "' '", 1),
                                             ("ACé", "'é'", 2), ("AC\nG", "'\\\\n'", 2)])
def test_invalid_characters_name_character_position_record(text, char, pos):
    with pytest.raises(ValueError, match=rf"record 'chr7', position {pos + 10}: {char}"):
        tok.encode(text, record="chr7", offset=10)


def test_special_tokens_and_batch():
    assert tok.encode("AC", add_special_tokens=True).tolist() == [6, 1, 2, 7]
    batch = tok.encode_batch(["ACGT", "G"], return_soft_mask=True)
    assert batch["input_ids"].tolist() == [[1, 2, 3, 4], [3, 0, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 0, 0, 0]]
    assert batch["input_ids"].dtype == np.int64
    fixed = tok.encode_batch(["ACGT", "G"], max_length=6)
    assert fixed["input_ids"].shape == (2, 6)
    with pytest.raises(ValueError, match="max_length=3"):
        tok.encode_batch(["ACGT"], max_length=3)
    assert tok.encode_batch(["ACGT"], max_length=3, truncation=True)["input_ids"].tolist() == [[1, 2, 3]]
    with pytest.raises(ValueError, match="record 'b'"):
        tok.encode_batch(["AC", "AX"], names=["a", "b"])


def test_decode():
    ids, soft = tok.encode("ACgtN", return_soft_mask=True)
    assert tok.decode(ids) == "ACGTN"
    assert tok.decode(ids, soft_mask=soft) == "ACgtN"
    framed = tok.encode("AC", add_special_tokens=True)
    assert tok.decode(framed) == "AC"
    assert tok.decode(framed, skip_special_tokens=False) == "[CLS]AC[SEP]"
    with pytest.raises(ValueError, match="token id 42"):
        tok.decode([1, 42])


def test_reverse_complement_keeps_padding_and_framing():
    assert tok.decode(tok.reverse_complement(tok.encode("AACGTN"))) == "NACGTT"
    batch = tok.encode_batch(["AAC", "G"], add_special_tokens=True)["input_ids"]
    rc = tok.reverse_complement(batch)
    assert rc.tolist() == [[6, 3, 4, 4, 7], [6, 2, 7, 0, 0]]
    assert rc.dtype == batch.dtype


def test_json_state_round_trip(tmp_path):
    custom = DNATokenizer(ambiguity="unk", lowercase="hardmask")
    assert DNATokenizer.from_dict(json.loads(json.dumps(custom.to_dict()))) == custom
    custom.save(tmp_path / "tokenizer.json")
    assert DNATokenizer.load(tmp_path / "tokenizer.json") == custom
    with pytest.raises(InputError, match="vocabulary"):
        DNATokenizer.from_dict({**custom.to_dict(), "vocab": ["A"]})
    (tmp_path / "bad.json").write_text("{oops")
    with pytest.raises(InputError, match=r"bad\.json: line 1"):
        DNATokenizer.load(tmp_path / "bad.json")


@settings(max_examples=200, deadline=None)
@given(bases)
def test_round_trip(text):
    ids, soft = tok.encode(text, return_soft_mask=True)
    assert tok.decode(ids, soft_mask=soft) == text
    assert tok.decode(ids) == text.upper()


@settings(max_examples=200, deadline=None)
@given(st.lists(bases, min_size=1, max_size=5), st.booleans())
def test_reverse_complement_is_an_involution(texts, special):
    batch = tok.encode_batch(texts, add_special_tokens=special)["input_ids"]
    assert np.array_equal(tok.reverse_complement(tok.reverse_complement(batch)), batch)
    for row, text in zip(batch, texts, strict=True):
        expected = text.upper()[::-1].translate(str.maketrans("ACGT", "TGCA"))
        assert tok.decode(tok.reverse_complement(row)) == expected
