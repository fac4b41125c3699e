"""benchmarks/scan_short.py reads its KNOB=value settings strictly (the timings themselves need a GPU)."""

import importlib.util
import sys

import pytest
from paths import REPO

pytest.importorskip("triton")
BENCHMARKS = REPO / "benchmarks"


def load():
    sys.path.insert(0, str(BENCHMARKS))  # it imports its neighbour benchmarks/scan.py
    try:
        spec = importlib.util.spec_from_file_location("scan_short_benchmark", BENCHMARKS / "scan_short.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCHMARKS))
    return module


def test_settings_are_knobs_of_the_scan():
    module = load()
    assert module.parse_setting("MIN_CHUNK_STEPS=512,BWD_MIN_CHUNK_STEPS=128") == {
        "MIN_CHUNK_STEPS": 512, "BWD_MIN_CHUNK_STEPS": 128}
    assert module.parse_setting("") == {}  # the defaults


@pytest.mark.parametrize("bad", ["MIN_CHUNK=32", "MIN_CHUNK_STEPS", "MIN_CHUNK_STEPS=lots"])
def test_a_misspelt_or_malformed_setting_stops_with_one_line(bad):
    with pytest.raises(SystemExit) as stop:
        load().parse_setting(bad)
    message = str(stop.value)
    assert bad in message and "\n" not in message


@pytest.mark.parametrize("argv", [["--eager_only"], ["--graph-only", "--eager-only"]])
def test_an_unknown_or_clashing_flag_stops_with_one_line(monkeypatch, argv):
    monkeypatch.setattr(sys, "argv", ["scan_short.py", *argv])
    with pytest.raises(SystemExit) as stop:
        load().main()
    message = str(stop.value)
    assert message.startswith("scan_short.py: ") and "\n" not in message
