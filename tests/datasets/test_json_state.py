"""JSON state files: round trip, no temporary left behind, located errors."""

import pytest

from seqmamba.errors import InputError
from seqmamba.json_state import read_json, write_json


def test_round_trip_leaves_only_the_file(tmp_path):
    write_json(tmp_path / "state.json", {"a": [1, 2], "b": None})
    assert read_json(tmp_path / "state.json") == {"a": [1, 2], "b": None}
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_invalid_json_names_file_line_and_column(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{\n  "a": 1,\n  oops\n}\n')
    with pytest.raises(InputError, match=r"bad\.json: line 3, column 3: invalid JSON"):
        read_json(path)


def test_missing_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match=r"nope\.json: no such file"):
        read_json(tmp_path / "nope.json")


def test_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "state.json"
    write_json(path, {"good": True})
    with pytest.raises(TypeError):
        write_json(path, {"bad": object()})
    assert read_json(path) == {"good": True}
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]
