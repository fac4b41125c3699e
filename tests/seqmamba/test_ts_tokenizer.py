"""TimeSeriesTokenizer: z-score round trips, patch shapes and inverses, state, RevIN."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

import seqmamba
from seqmamba.datasets.timeseries import read_timeseries
from seqmamba.modules import RevIN
from seqmamba.tokenizers import TimeSeriesTokenizer
from seqmamba.tokenizers.instance_norm import instance_denormalize, instance_normalize


@pytest.fixture
def series():
    rng = np.random.default_rng(0)
    return rng.normal(size=(200, 3)) * [1.0, 10.0, 0.1] + [5.0, -3.0, 100.0]


def test_zscore_uses_fit_statistics_and_inverts(series):
    tok = TimeSeriesTokenizer().fit(series[:100])
    np.testing.assert_allclose(tok.mean_, series[:100].mean(0))
    np.testing.assert_allclose(tok.scale_, series[:100].std(0))  # population std, as StandardScaler
    z = tok.transform(series)
    np.testing.assert_allclose(z[:100].mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(tok.inverse_transform(z), series)
    windows = torch.tensor(series[:96].reshape(4, 24, 3), dtype=torch.float32)  # (batch, L, C)
    scaled = tok.transform(windows)
    assert isinstance(scaled, torch.Tensor) and scaled.shape == (4, 24, 3)
    torch.testing.assert_close(tok.inverse_transform(scaled), windows, rtol=1e-5, atol=1e-4)
    assert tok.transform(series.astype(np.float32)).dtype == np.float32


def test_constant_variable_is_centred_not_divided_by_zero():
    values = np.column_stack([np.ones(10), np.arange(10.0)])
    tok = TimeSeriesTokenizer().fit(values)
    assert tok.scale_[0] == 1.0
    assert np.isfinite(tok.transform(values)).all()


def test_estimator_rules_and_errors(series):
    tok = TimeSeriesTokenizer(patch_len=8, stride=4)
    assert not [k for k in vars(tok) if k.endswith("_")]  # nothing fitted in __init__
    with pytest.raises(NotFittedError):
        tok.transform(series)
    assert clone(tok).get_params() == tok.get_params()
    tok.fit(series)
    with pytest.raises(ValueError, match="X has 2 features, but TimeSeriesTokenizer is expecting 3"):
        tok.transform(series[:, :2])
    with pytest.raises(ValueError, match="channel_mode must be"):
        TimeSeriesTokenizer(channel_mode="both").fit(series)
    with pytest.raises(seqmamba.errors.InputError, match="NaN or inf"):
        TimeSeriesTokenizer().fit(np.array([[1.0], [np.nan]]))
    assert seqmamba.TimeSeriesTokenizer is TimeSeriesTokenizer


def test_fit_checks_its_input_as_scikit_learn_does(series):
    # Found by scikit-learn's checks (tests/seqmamba/estimators/test_sklearn_contract.py): complex, sparse,
    # empty and 1-D input was fitted (complex and empty to NaN or complex statistics) or failed with an AttributeError.
    import scipy.sparse

    with pytest.raises(ValueError, match="Complex data not supported"):
        TimeSeriesTokenizer().fit(series + 1j)
    with pytest.raises(TypeError, match=r"[Ss]parse"):
        TimeSeriesTokenizer().fit(scipy.sparse.csr_matrix(series))
    with pytest.raises(ValueError, match=r"0 sample\(s\)"):
        TimeSeriesTokenizer().fit(np.empty((0, 3)))
    with pytest.raises(ValueError, match=r"0 feature\(s\)"):
        TimeSeriesTokenizer().fit(np.empty((5, 0)))
    with pytest.raises(ValueError, match="Reshape your data"):
        TimeSeriesTokenizer().fit(series[:, 0])
    tok = TimeSeriesTokenizer().fit(series.astype(object))  # numbers in an object array are numbers
    np.testing.assert_allclose(tok.mean_, series.mean(0))
    np.testing.assert_allclose(tok.transform(series[:2].tolist()), tok.transform(series[:2]))  # any array-like


def test_state_round_trip(tmp_path, series):
    frame = pd.DataFrame(series, columns=["a", "b", "c"], index=pd.date_range("2020", periods=200, freq="h"))
    tok = TimeSeriesTokenizer(patch_len=12, stride=6, instance_norm=True).fit(read_timeseries(frame))
    assert list(tok.feature_names_in_) == ["a", "b", "c"]
    state = json.loads(json.dumps(tok.to_dict()))
    again = TimeSeriesTokenizer.from_dict(state)
    assert again.get_params() == tok.get_params() and list(again.feature_names_in_) == ["a", "b", "c"]
    np.testing.assert_array_equal(again.transform(series), tok.transform(series))
    tok.save(tmp_path / "tok.json")
    np.testing.assert_array_equal(TimeSeriesTokenizer.load(tmp_path / "tok.json").scale_, tok.scale_)
    assert "fitted" not in TimeSeriesTokenizer().to_dict()
    with pytest.raises(seqmamba.errors.InputError, match="not a TimeSeriesTokenizer"):
        TimeSeriesTokenizer.from_dict({"type": "DNATokenizer"})


@pytest.mark.parametrize("patch_len,stride", [(16, 16), (16, 8), (12, 5), (1, 1)])
@pytest.mark.parametrize("mode", ["independent", "mixing"])
def test_patch_shapes_and_unpatch(patch_len, stride, mode):
    x = torch.randn(2, 96, 3)  # (batch, L, C)
    tok = TimeSeriesTokenizer(patch_len=patch_len, stride=stride, channel_mode=mode)
    tokens = tok.patch(x)
    n = (96 - patch_len) // stride + 1
    assert tok.n_patches(96) == n
    expected = (2 * 3, n, patch_len) if mode == "independent" else (2, n, 3 * patch_len)
    assert tokens.shape == expected
    covered = (n - 1) * stride + patch_len
    torch.testing.assert_close(tok.unpatch(tokens, n_channels=3), x[:, :covered])


def test_patch_layout_and_padding():
    x = torch.arange(2 * 8 * 2, dtype=torch.float32).reshape(2, 8, 2)  # (batch, L, C)
    ind = TimeSeriesTokenizer(patch_len=4, stride=4).patch(x)  # (4, 2, 4)
    assert ind[1, 0].tolist() == x[0, :4, 1].tolist()  # row b * C + c: window 0, variable 1
    assert ind[2, 1].tolist() == x[1, 4:, 0].tolist()
    mix = TimeSeriesTokenizer(patch_len=4, stride=4, channel_mode="mixing").patch(x)  # (2, 2, 8)
    assert mix[0, 1].tolist() == x[0, 4:, 0].tolist() + x[0, 4:, 1].tolist()
    padded = TimeSeriesTokenizer(patch_len=4, stride=2, pad_end=True)
    tokens = padded.patch(x)  # 3 patches + 1 on the repeated last row
    assert tokens.shape == (4, 4, 4) and tokens[0, -1].tolist() == [x[0, 6, 0].item(), x[0, 7, 0].item()] + [
        x[0, 7, 0].item()] * 2
    torch.testing.assert_close(padded.unpatch(tokens, 2, length=8), x)
    with pytest.raises(ValueError, match="stride 5 > patch_len 4"):
        TimeSeriesTokenizer(patch_len=4, stride=5).unpatch(tokens, 2)
    with pytest.raises(ValueError, match="shorter than patch_len"):
        TimeSeriesTokenizer(patch_len=16).patch(torch.zeros(1, 8, 2))


def test_encode_decode_with_instance_norm():
    x = torch.randn(4, 32, 3) * 7 + 40  # (batch, L, C)
    tok = TimeSeriesTokenizer(patch_len=8, stride=8, instance_norm=True)
    tokens, stats = tok.encode(x)
    assert tokens.shape == (12, 4, 8) and stats.mean.shape == (4, 1, 3)
    assert abs(tokens.mean().item()) < 1e-4
    # A channel-independent head forecasting "the window's normalised last value" for H = 5 steps.
    head = tokens[:, -1, -1:].expand(12, 5)  # (batch * C, H)
    forecast = tok.decode(head, stats, n_channels=3)  # (batch, H, C)
    assert forecast.shape == (4, 5, 3)
    torch.testing.assert_close(forecast[:, 0], x[:, -1], rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(tok.decode(forecast), forecast)  # (batch, H, C), no stats: unchanged
    assert TimeSeriesTokenizer().encode(x)[1] is None


def test_revin_round_trip_and_gradients():
    x = (torch.randn(4, 48, 3) * 3 + 5).requires_grad_()
    z, stats = instance_normalize(x)
    torch.testing.assert_close(z.mean(1), torch.zeros(4, 3), atol=1e-5, rtol=0)
    torch.testing.assert_close(instance_denormalize(z, stats), x)
    revin = RevIN(3)
    with torch.no_grad():
        revin.weight.mul_(2.0)
        revin.bias.add_(0.5)
    z, stats = revin(x)
    torch.testing.assert_close(revin.denormalize(z, stats), x, rtol=1e-4, atol=1e-4)
    z.sum().backward()
    assert revin.weight.grad is not None and x.grad is not None
    assert not hasattr(revin, "mean")  # statistics are returned, never kept on the module
    assert RevIN(3, affine=False)(x)[0].shape == x.shape
    with pytest.raises(ValueError, match="got 2 variables"):
        revin(torch.zeros(1, 4, 2))
