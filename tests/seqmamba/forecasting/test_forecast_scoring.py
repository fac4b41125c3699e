"""`seqmamba.forecasting.scoring`: what `MambaForecaster.evaluate` delegates to (one series and many).

The overlap warning still names the user's line after the move (its ``stacklevel`` counts the calls between
``evaluate`` and the scoring), ``scored_span`` reads ``start``/``end`` as evaluate documents, and the public
functions give evaluate's numbers exactly.
"""

import numpy as np
import pandas as pd
import pytest

from seqmamba import MambaForecaster
from seqmamba.datasets.timeseries import Span, read_timeseries
from seqmamba.errors import InputError
from seqmamba.forecasting.scoring import evaluate_series, score_span, scored_span

TINY = dict(lookback=24, horizon=6, d_model=8, n_layers=1, d_state=2, max_epochs=1, batch_size=64, verbose=0,
            device="cpu")


def toy(n=300, uid=None):
    t = np.arange(n, dtype=np.float64)
    frame = pd.DataFrame({"date": pd.date_range("2022-01-01", periods=n, freq="D"), "a": np.sin(t / 4),
                          "b": np.cos(t / 6)})
    if uid is not None:
        frame.insert(0, "unique_id", uid)
    return frame


@pytest.fixture(scope="module")
def fitted():
    return MambaForecaster(**TINY).fit(toy())  # every row: evaluating them warns


@pytest.fixture(scope="module")
def panel_fitted():
    frame = pd.concat([toy(200, "x"), toy(160, "y")], ignore_index=True)
    return MambaForecaster(**TINY, id_col="unique_id").fit(frame), frame


def test_the_overlap_warning_names_the_callers_line(fitted, panel_fitted):
    with pytest.warns(UserWarning, match="were used in fit") as record:
        fitted.evaluate(toy())
    assert [w.filename for w in record] == [__file__]
    model, frame = panel_fitted
    with pytest.warns(UserWarning, match="were used in fit") as record:
        model.evaluate(frame, start=-40)
    assert record and all(w.filename == __file__ for w in record)


def test_scored_span_reads_start_and_end_as_evaluate_does(fitted):
    series = read_timeseries(toy())
    assert scored_span(fitted, series, -60, None, "auto", "evaluate") == Span("span", 240, 300)
    assert scored_span(fitted, series, 10, -10, "auto", "evaluate") == Span("span", 10, 290)
    assert scored_span(fitted, series, None, None, "auto", "evaluate").end == 300  # the protocol's test span
    with pytest.raises(InputError, match=r"^evaluate: rows \[250, 400\) are outside the 300 rows of X$"):
        scored_span(fitted, series, 250, 400, "auto", "evaluate")


def test_the_public_functions_give_evaluates_numbers(fitted):
    frame = toy()
    with pytest.warns(UserWarning):
        scores = fitted.evaluate(frame, start=200)
    with pytest.warns(UserWarning):
        assert evaluate_series(fitted, frame, 200, None, "auto", 1024) == scores
    series = read_timeseries(frame)
    direct = score_span(fitted, series, Span("span", 200, 300), fitted.scaler_, "evaluate", {}, 1024)  # {}: no warning
    assert direct == {k: v for k, v in scores.items() if k not in ("start", "end")}
