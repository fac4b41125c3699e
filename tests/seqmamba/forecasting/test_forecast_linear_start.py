"""The variate network's closed-form linear start: the ridge fit itself, the network before training,
early stopping that keeps the start, confirmation on held-back rows, configuration, persistence."""

import json
import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone

from seqmamba import MambaForecaster
from seqmamba.baselines import DLinear, evaluate_windows
from seqmamba.datasets.timeseries import SlidingWindows
from seqmamba.forecasting.confirm import dm_pvalue, keep_better, split_validation
from seqmamba.forecasting.linear_init import fit_linear_path, fit_skip, linear_forecast
from seqmamba.modules.revin import RevIN

L, H = 16, 4
TINY = dict(lookback=L, horizon=H, d_model=8, n_layers=1, d_state=2, batch_size=64, verbose=0, device="cpu")


def series(n=300, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return np.stack([np.sin(t / 5) + 0.3 * rng.standard_normal(n) + 0.002 * t,
                     2 + np.cos(t / 7) * (1 + t / n) + 0.2 * rng.standard_normal(n),
                     rng.standard_normal(n).cumsum() * 0.1], axis=1)  # (T, 3)


def numpy_ridge(values, alpha, revin_eps=None):
    """Weighted ridge with an unpenalised intercept, solved directly: the specification in plain NumPy."""
    windows = np.lib.stride_tricks.sliding_window_view(values, L + H, axis=0)  # (n, C, L + H)
    x, y = windows[..., :L].reshape(-1, L), windows[..., L:].reshape(-1, H)  # (n * C, L), (n * C, H)
    w = np.ones(len(x))
    if revin_eps is not None:
        mean = x.mean(1, keepdims=True)
        std = np.sqrt(x.var(1, keepdims=True) + revin_eps)
        x, y, w = (x - mean) / std, (y - mean) / std, std[:, 0] ** 2
    w = w / w.mean()
    design = np.concatenate([x, np.ones((len(x), 1))], axis=1)  # (m, L + 1)
    penalty = np.diag([alpha * len(x)] * L + [0.0])
    beta = np.linalg.solve(design.T @ (design * w[:, None]) + penalty, design.T @ (y * w[:, None]))  # (L + 1, H)
    return beta[:L].T, beta[L]


@pytest.mark.parametrize("alpha", [1e-3, 0.1])
def test_normalised_fit_is_the_weighted_ridge_solution(alpha):
    values = series().astype(np.float32)
    x, y = SlidingWindows(values, L, H).arrays()
    fit = fit_linear_path(x, y, RevIN(3, affine=False), alpha=alpha, weighted=True, chunk=37)  # chunks of 37
    weight, bias = numpy_ridge(values.astype(np.float64), alpha, revin_eps=1e-5)
    np.testing.assert_allclose(fit.weight, weight, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(fit.bias, bias, rtol=1e-4, atol=1e-5)


def test_raw_fit_is_dlinears_closed_form():
    """Without RevIN and penalty, the shared (L -> H) map is DLinear's lstsq map (its decomposition
    only reparameterises the same linear function)."""
    values = series().astype(np.float32)
    x, y = SlidingWindows(values, L, H).arrays()
    fit = fit_linear_path(x, y, None, alpha=0.0, weighted=False)
    dlinear = DLinear(L, H, kernel_size=5, alpha=0.0).fit(values)
    np.testing.assert_allclose(fit.weight, dlinear.effective_weight(), atol=1e-6)
    np.testing.assert_allclose(fit.bias, dlinear.bias_, atol=1e-6)


@pytest.mark.parametrize("skip_input", ["normalized", "raw"])
def test_network_starts_exactly_at_the_linear_forecast(skip_input):
    values = series()
    model = MambaForecaster(**TINY, linear_path=skip_input)
    scaled = (values - values.mean(0)) / values.std(0)
    train = SlidingWindows(scaled[:240], L, H)
    val = SlidingWindows(scaled[240 - L:], L, H)
    net, config, scores = model._build(3, train, val, seed=0)
    assert config.skip_input == skip_input and set(scores) == {skip_input}
    assert torch.count_nonzero(net.head.weight) == 0 and torch.count_nonzero(net.head.bias) == 0
    x, y = val.arrays()
    revin = RevIN(3, affine=False)
    fit = fit_skip(train, revin, skip_input, model.linear_alpha)
    expected = linear_forecast(x, fit, revin if skip_input == "normalized" else None)
    with torch.no_grad():
        got = net.eval()(torch.from_numpy(np.ascontiguousarray(x))).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    assert scores[skip_input] == pytest.approx(float(np.mean((expected - y) ** 2)), rel=1e-5)


def test_auto_picks_the_input_with_the_lower_validation_mse():
    values = series()
    model = MambaForecaster(**TINY, max_epochs=1).fit(values[:240], X_val=values[240 - L:])
    assert set(model.linear_val_mse_) == {"normalized", "raw"}
    assert model.config_.skip_input == min(model.linear_val_mse_, key=model.linear_val_mse_.get)
    assert model.start_val_mse_ == pytest.approx(model.linear_val_mse_[model.config_.skip_input], rel=1e-4)
    assert model.best_val_mse_ <= model.start_val_mse_
    no_val = MambaForecaster(**TINY, max_epochs=1, validation_fraction=0).fit(values)
    assert no_val.config_.skip_input == "normalized" and no_val.linear_val_mse_ == {}
    assert no_val.start_val_mse_ is None


def test_training_that_only_hurts_keeps_the_linear_start():
    """A learning rate far too high makes every epoch worse on validation: the fitted model is then the
    closed-form linear forecaster, bit for bit what a direct NumPy ridge predicts."""
    values = series()
    model = MambaForecaster(**TINY, linear_path="raw", lr=3.0, max_epochs=2, patience=None)
    model.fit(values[:240], X_val=values[240 - L:])
    assert all(r["val_loss"] > model.start_val_mse_ for r in model.history_)
    assert model.best_val_mse_ == model.start_val_mse_
    train_scaled = model.scaler_.transform(values[:240])
    weight, bias = numpy_ridge(train_scaled.astype(np.float64), model.linear_alpha)
    window = model.scaler_.transform(values[-L:])  # (L, C)
    expected = model.scaler_.inverse_transform(weight @ window + bias[:, None])  # (H, C)
    np.testing.assert_allclose(model.predict(values), expected, rtol=1e-3, atol=1e-4)


def test_random_init_and_frozen_skip():
    values = series()
    random = MambaForecaster(**TINY, linear_init="random", max_epochs=1).fit(values)
    assert random.linear_val_mse_ == {} and torch.count_nonzero(random.model_.head.weight) > 0
    frozen = MambaForecaster(**TINY, linear_lr_scale=0.0, max_epochs=1, validation_fraction=0, lr=1e-2).fit(values)
    start, _, _ = frozen._build(3, SlidingWindows(frozen.scaler_.transform(values), L, H), None, seed=0)
    # The closed-form fit, untouched by training (Adam at lr 1e-2 would move it by ~1e-2 per step; the
    # tolerance only covers a refit summing in another order).
    torch.testing.assert_close(frozen.model_.skip.weight, start.skip.weight, rtol=0, atol=1e-5)
    torch.testing.assert_close(frozen.model_.skip.bias, start.skip.bias, rtol=0, atol=1e-5)
    assert torch.count_nonzero(frozen.model_.head.weight) > 0


def test_parameters_are_checked_at_fit_and_clone_keeps_them():
    model = MambaForecaster(**TINY, linear_path="sideways")
    assert clone(model).get_params()["linear_path"] == "sideways"  # __init__ only stores
    with pytest.raises(ValueError, match="linear_path"):
        model.fit(series())
    with pytest.raises(ValueError, match="linear_init"):
        MambaForecaster(**TINY, linear_init="zeros").fit(series())
    with pytest.raises(ValueError, match="linear_lr_scale"):
        MambaForecaster(**TINY, linear_lr_scale=-1).fit(series())
    with pytest.raises(ValueError, match="confirm_fraction"):
        MambaForecaster(**TINY, confirm_fraction=1.0).fit(series())


def test_save_load_and_pickle_keep_the_chosen_input(tmp_path):
    values = series()
    model = MambaForecaster(**TINY, linear_path="raw", max_epochs=1).fit(values[:240], X_val=values[240 - L:])
    expected = model.predict(values)
    model.save(tmp_path / "m")
    loaded = MambaForecaster.load(tmp_path / "m")
    assert loaded.config_.skip_input == "raw" and loaded.linear_val_mse_ == model.linear_val_mse_
    assert loaded.start_val_mse_ == model.start_val_mse_
    assert (loaded.kept_, loaded.confirm_mse_) == (model.kept_, model.confirm_mse_) and model.confirm_mse_
    assert loaded.confirm_pvalue_ == model.confirm_pvalue_ and model.confirm_pvalue_
    np.testing.assert_array_equal(loaded.predict(values), expected)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(model)).predict(values), expected)


def test_models_saved_before_the_linear_start_still_load(tmp_path):
    """A directory written before these options existed: no skip_input in the network config, none of
    the new parameters or fitted fields. It loads, with the normalised skip it was trained with."""
    values = series()
    model = MambaForecaster(**TINY, linear_path="normalized", max_epochs=1).fit(values)
    expected = model.predict(values)
    model.save(tmp_path / "m")
    path = tmp_path / "m" / "config.json"
    envelope = json.loads(path.read_text())
    del envelope["network"]["skip_input"]
    for key in ("linear_path", "linear_init", "linear_alpha", "linear_lr_scale", "confirm_fraction", "n_threads"):
        del envelope["params"][key]
    for key in ("start_val_mse_", "linear_val_mse_", "confirm_mse_", "kept_"):
        del envelope["fitted"][key]
    path.write_text(json.dumps(envelope))
    old = MambaForecaster.load(tmp_path / "m")
    assert old.config_.skip_input == "normalized" and old.start_val_mse_ is None and old.kept_ == "trained"
    np.testing.assert_array_equal(old.predict(values), expected)


def test_validation_split_holds_back_the_latest_rows():
    rows = np.arange(116, dtype=np.float32)[:, None]  # 16 warm-up rows, then 100
    stop, confirm = split_validation(rows, L, H, 0.5)
    assert len(stop) == L + 50 and len(confirm) == L + 50
    stop_targets = SlidingWindows(stop, L, H).arrays()[1]
    confirm_targets = SlidingWindows(confirm, L, H).arrays()[1]
    assert stop_targets.max() < confirm_targets.min()  # no row is a target in both parts
    assert confirm[0, 0] == stop[-L, 0]  # the confirmation part warms up on rows the first part read
    assert split_validation(rows, L, H, 0.0) == (rows, None)
    short = rows[:L + 2 * H]
    assert split_validation(short, L, H, 0.9)[1] is None  # too short to hold a window in each part
    with pytest.raises(ValueError, match="confirm_fraction"):
        split_validation(rows, L, H, 1.0)


class _Persistence(torch.nn.Module):
    """Forecasts ``scale`` times the window's last value: scale 1 is right for a flat series."""

    def __init__(self, scale):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(float(scale)))

    def forward(self, x):  # (b, L, C) -> (b, H, C)
        return self.scale * x[:, -1:].expand(-1, H, -1)


@pytest.mark.parametrize(("start_scale", "trained_scale", "kept"), [(0.0, 1.0, "trained"), (1.0, 0.0, "start")])
def test_keep_better_keeps_the_better_weights_on_the_held_back_windows(start_scale, trained_scale, kept):
    windows = SlidingWindows(np.full((60, 2), 3.0, np.float32), L, H)  # flat at 3: persistence is exact
    model = _Persistence(trained_scale)
    start = {"scale": torch.tensor(start_scale)}
    got, scores, _ = keep_better(model, start, windows)
    assert got == kept
    assert scores == {"start": pytest.approx(9.0 * (1 - start_scale) ** 2),
                      "trained": pytest.approx(9.0 * (1 - trained_scale) ** 2)}
    assert float(model.scale.detach()) == (trained_scale if kept == "trained" else start_scale)


def test_dm_pvalue_is_a_z_test_at_horizon_1_and_widens_over_overlapping_windows():
    rng = np.random.default_rng(1)
    simple, other = rng.normal(1.1, 1.0, 200), rng.normal(1.0, 1.0, 200)
    gap = simple - other
    z = gap.mean() / (gap.std() / np.sqrt(len(gap)))  # population std: the variance at lag 0
    from math import erfc, sqrt
    assert dm_pvalue(simple, other, horizon=1) == pytest.approx(0.5 * erfc(z / sqrt(2)))
    # Errors shared by runs of 8 windows (as overlapping targets share them): the same mean gap is less evidence.
    runs_simple, runs_other = np.repeat(simple[:25], 8), np.repeat(other[:25], 8)
    assert dm_pvalue(runs_simple, runs_other, horizon=8) > dm_pvalue(runs_simple, runs_other, horizon=1)
    assert dm_pvalue(other, simple, 1) == pytest.approx(1 - dm_pvalue(simple, other, 1))


def test_a_held_back_lead_too_small_to_be_significant_keeps_the_start():
    # AR(1) with a weak coefficient: persistence scaled by it wins the held-back windows by a hair.
    rng = np.random.default_rng(6)  # a draw where it wins (p 0.41)
    values = np.zeros((60, 1), np.float32)
    for t in range(1, 60):
        values[t] = 0.1 * values[t - 1] + rng.normal()
    windows = SlidingWindows(values, L, H)
    model, start = _Persistence(0.1), {"scale": torch.tensor(0.0)}
    kept, scores, pvalues = keep_better(model, start, windows, alpha=1.0)
    assert kept == "trained" and scores["trained"] < scores["start"]  # a lower MSE, as the data was drawn
    assert pvalues["trained"] == pytest.approx(0.41, abs=0.01)
    kept, _, _ = keep_better(model, start, windows)  # alpha 0.05
    assert kept == "start" and float(model.scale.detach()) == 0.0


def test_held_back_windows_fewer_than_two_horizons_cannot_replace_the_start():
    windows = SlidingWindows(np.full((L + 3 * H - 2, 1), 3.0, np.float32), L, H)  # 2H - 1 windows
    assert len(windows) == 2 * H - 1
    model, start = _Persistence(1.0), {"scale": torch.tensor(0.0)}  # exact against all wrong
    kept, scores, pvalues = keep_better(model, start, windows)
    assert kept == "start" and pvalues == {"trained": None} and scores["trained"] < scores["start"]
    assert keep_better(_Persistence(1.0), start, windows, alpha=1.0)[0] == "trained"


def test_a_validation_span_too_short_to_hold_rows_back_keeps_the_start():
    values = series()
    short_val = values[240 - L:240 + H + 1]  # 2 windows: too few to split
    free = MambaForecaster(**TINY, max_epochs=3, lr=3e-2, confirm_fraction=0).fit(values[:240], X_val=short_val)
    assert free.kept_ == "trained"  # early stopping's best epoch beat the start on those windows
    with pytest.warns(UserWarning, match="too few to hold"):
        model = MambaForecaster(**TINY, max_epochs=3, lr=3e-2).fit(values[:240], X_val=short_val)
    assert model.kept_ == "start" and model.confirm_mse_ == {}
    start = MambaForecaster(**TINY, max_epochs=1, lr=1e-12, confirm_fraction=0).fit(values[:240], X_val=short_val)
    np.testing.assert_allclose(model.predict(), start.predict(), rtol=1e-5)  # (a step of 1e-12 from the start)
    assert not np.allclose(free.predict(), start.predict(), rtol=1e-5)


def test_fit_confirms_on_held_back_rows():
    values = series()
    model = MambaForecaster(**TINY, max_epochs=3, lr=1e-2, confirm_alpha=1.0).fit(values[:240],
                                                                               X_val=values[240 - L:])
    assert list(model.confirm_mse_) == ["start", "blend", "trained"]
    assert model.kept_ == min(model.confirm_mse_, key=model.confirm_mse_.get)  # alpha 1: any lower MSE
    assert set(model.confirm_pvalue_) == {"blend", "trained"}
    assert all(0 <= p <= 1 for p in model.confirm_pvalue_.values())
    held_back = values[240 - L + 30:]  # 76 validation rows: 16 warm-up, 30 to stop on, the last 30 held back
    scaled = SlidingWindows(model.scaler_.transform(held_back), L, H)
    got = evaluate_windows(lambda x: model.model_(torch.from_numpy(x)).detach(), scaled)["mse"]
    assert got == pytest.approx(model.confirm_mse_[model.kept_], rel=1e-5)
    plain = MambaForecaster(**TINY, max_epochs=1, confirm_fraction=0).fit(values[:240], X_val=values[240 - L:])
    assert plain.confirm_mse_ == {} and plain.kept_ in ("start", "trained")


@pytest.mark.parametrize("skip_input", ["normalized", "raw"])
def test_the_blend_forecasts_the_mean_of_start_and_trained(skip_input):
    """blended_state mixes forecasts, not just weights: its forecast is (1 - w) start + w trained."""
    from seqmamba.forecasting.confirm import state_copy
    from seqmamba.forecasting.model import ForecastConfig, VariateMamba

    torch.manual_seed(0)
    net = VariateMamba(ForecastConfig(lookback=L, horizon=H, n_variables=3, d_model=8, n_layers=1, d_state=2,
                                      skip_input=skip_input)).eval()
    net.start_from_linear(torch.randn(H, L) * 0.1, torch.randn(H) * 0.1)
    start = state_copy(net)
    with torch.no_grad():  # "training": every weight moves, the encoder's too
        for value in net.parameters():
            value.add_(torch.randn_like(value) * 0.1)
    trained = state_copy(net)
    x = torch.randn(5, L, 3) * 2 + 1
    with torch.no_grad():
        net.load_state_dict(start)
        from_start = net(x)
        net.load_state_dict(trained)
        from_trained = net(x)
        for w in (0.0, 0.5, 0.3, 1.0):
            net.load_state_dict(VariateMamba.blended_state(start, trained, w))
            torch.testing.assert_close(net(x), (1 - w) * from_start + w * from_trained, rtol=1e-5, atol=1e-5)


def test_the_blend_is_made_where_the_trained_weights_are():
    """The start is copied before the trainer moves the network to its device: the mix must follow the
    trained weights there (it raised on a GPU). The "meta" device stands in for one."""
    from seqmamba.forecasting.model import ForecastConfig, VariateMamba

    net = VariateMamba(ForecastConfig(lookback=L, horizon=H, n_variables=2, d_model=8, n_layers=1, d_state=2))
    start = {k: v.detach().clone() for k, v in net.state_dict().items()}
    trained = {k: v.detach().to("meta") for k, v in net.state_dict().items()}
    mixed = VariateMamba.blended_state(start, trained, 0.5)
    assert {value.device.type for value in mixed.values()} == {"meta"}
