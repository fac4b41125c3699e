"""scikit-learn's estimator contract, checked by scikit-learn's own checks (issue 26, item 5).

`parametrize_with_checks` runs every check scikit-learn has on `MambaForecaster` and `TimeSeriesTokenizer`
(numeric input); a check that cannot hold for a forecaster is listed in ``EXPECTED_FAILURES`` with its
reason (an xfail, strict: a check that starts passing must leave the list). The same list is in
docs/forecasting.md, and what is checked on the DNA estimators in docs/embeddings.md (both under
"scikit-learn contract").

The DNA estimators take strings: their ``__sklearn_tags__`` say so (``input_tags.string``, no
``two_d_array``), and scikit-learn then runs only `check_estimator_cloneable` on them, since every other
check feeds numeric arrays. So this file also runs (1) scikit-learn's checks that feed no data (or only
check an unfitted estimator) on them directly, and (2) the data checks rewritten for DNA strings, each
named after the scikit-learn check it mirrors.

`DNATokenizer` is not a scikit-learn estimator and is not checked: it learns nothing (no ``fit``), maps one
string to token ids (``encode``, not ``transform`` of a 2-D X) and checks its two options when built, as a
codec does (Hugging Face tokenizers are the same). `TimeSeriesTokenizer` is a fitted scaler (mean and std of
the training span), a transformer like StandardScaler, and is checked in full.

Every estimator is tiny (d_model 8, one layer, one epoch, CPU, one thread, random_state 0).
"""

import pickle
import warnings

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.utils import estimator_checks as sk
from sklearn.utils.estimator_checks import parametrize_with_checks
from sklearn.utils.validation import check_is_fitted

from seqmamba import MambaEmbedder, MambaForecaster, MambaSequenceClassifier
from seqmamba.tokenizers import TimeSeriesTokenizer

TINY = {"d_model": 8, "n_layers": 1, "d_state": 4, "max_epochs": 1, "device": "cpu", "n_threads": 1,
        "random_state": 0}
DNA = {**TINY, "max_len": 16, "batch_size": 8}  # sequences up to 40 bases: up to 3 windows each


def tiny_classifier(**params):
    return MambaSequenceClassifier(**{**DNA, **params})


def tiny_embedder(**params):
    return MambaEmbedder(**{**DNA, **params})


def tiny_forecaster(**params):
    return MambaForecaster(**{**TINY, "d_state": 2, "lookback": 4, "horizon": 2, "verbose": 0, **params})


# -- scikit-learn's checks -------------------------------------------------------------------------

# A forecaster's X is one series: its rows are consecutive time steps (not independent samples), its columns
# are matched by name, and its errors are the time-series reader's (InputError, a ValueError, naming the place).
_ROWS_ARE_TIME = ("X's rows are consecutive time steps, not samples: predict(X) forecasts the horizon after X's "
                  "last lookback rows, so reordering or splitting the rows changes the forecast by design")
_ONE_D_IS_A_SERIES = "a 1-D array is one variable's series (T,), as documented (read_timeseries)"
EXPECTED_FAILURES = {
    "MambaForecaster": {
        "check_methods_sample_order_invariance": _ROWS_ARE_TIME,
        "check_methods_subset_invariance": _ROWS_ARE_TIME,
        "check_fit1d": _ONE_D_IS_A_SERIES,
        "check_fit2d_predict1d": _ONE_D_IS_A_SERIES + "; predict then names the column count",
        "check_fit2d_1sample": "fit needs lookback + horizon rows and its ValueError says so ('X: 1 rows, fewer "
                               "than lookback + horizon = 4 + 2'), not 'n_samples=1'",
        "check_n_features_in_after_fitting": "n_features_in_ is checked, and a wrong column count is a ValueError "
                                             "in the reader's words ('predict: 1 variables, the model was fitted "
                                             "on 4'; frames are matched by column name), not sklearn's",
        "check_estimators_empty_data_messages": "a table without value columns is a ValueError in the reader's "
                                                "words ('array: no variable columns'), not check_array's",
        "check_dtype_object": "numbers in an object array are read; a cell that is not a number is a ValueError "
                              "naming its column and row, not numpy's TypeError",
    },
    "TimeSeriesTokenizer": {
        "check_estimators_nan_inf": "transform is elementwise on any (..., C) array and lets NaN through, as "
                                    "StandardScaler does; fit refuses NaN (its statistics would be NaN)",
        "check_fit2d_predict1d": "transform takes (..., C): a row (C,), a series (T, C) or windows (batch, L, C); "
                                 "a 1-D array is one row",
    },
}


def expected_failures(estimator):
    return EXPECTED_FAILURES.get(type(estimator).__name__, {})


with warnings.catch_warnings():
    # The DNA estimators' tags (string input) make scikit-learn skip its numeric checks, with a warning.
    warnings.filterwarnings("ignore", "Can't test estimator", sk.SkipTestWarning)
    sklearn_checks = parametrize_with_checks(
        [tiny_classifier(), tiny_embedder(), tiny_forecaster(), TimeSeriesTokenizer()],
        expected_failed_checks=expected_failures, xfail_strict=True,
    )


@sklearn_checks
def test_sklearn_checks(estimator, check):
    check(estimator)


# scikit-learn's checks that feed no data, or call an unfitted estimator (NotFittedError must come first,
# whatever X is): they apply to the DNA estimators as they are.
NO_DATA_CHECKS = [
    sk.check_estimator_tags_renamed, sk.check_valid_tag_types, sk.check_estimator_repr,
    sk.check_no_attributes_set_in_init, sk.check_do_not_raise_errors_in_init_or_set_params, sk.check_mixin_order,
    sk.check_parameters_default_constructible, sk.check_get_params_invariance, sk.check_set_params,
    sk.check_estimators_unfitted, sk.check_transformers_unfitted,
]


@pytest.mark.parametrize("estimator, check", [
    pytest.param(estimator, check, id=f"{type(estimator).__name__}-{check.__name__}")
    for estimator in (tiny_classifier(), tiny_embedder()) for check in NO_DATA_CHECKS
    if check is not sk.check_transformers_unfitted or hasattr(estimator, "transform")
])
def test_sklearn_no_data_checks_on_dna_estimators(estimator, check):
    check(type(estimator).__name__, estimator)


def test_dna_estimators_tags_say_strings():
    for estimator in (tiny_classifier(), tiny_embedder()):
        tags = estimator.__sklearn_tags__()
        assert tags.input_tags.string and not tags.input_tags.two_d_array and tags.requires_fit
    assert tiny_classifier().__sklearn_tags__().estimator_type == "classifier"
    assert tiny_classifier().__sklearn_tags__().target_tags.required


# -- the data checks, on DNA strings ---------------------------------------------------------------

def dna(n=12, seed=0):
    """n random sequences of 8-40 bases (max_len 16: one to three windows each)."""
    rng = np.random.default_rng(seed)
    return ["".join(rng.choice(list("ACGT"), int(rng.integers(8, 41)))) for _ in range(n)]


X_DNA = dna()
Y_DNA = np.array(["a", "b", "c"] * 4)
METHODS = {"MambaSequenceClassifier": ("predict", "predict_proba", "predict_log_proba", "decision_function"),
           "MambaEmbedder": ("transform",)}
DNA_ESTIMATORS = pytest.mark.parametrize("make", [tiny_classifier, tiny_embedder], ids=["classifier", "embedder"])


def outputs(estimator, X):
    return {m: getattr(estimator, m)(X) for m in METHODS[type(estimator).__name__]}


def assert_same(actual, expected, name, atol=1e-6):
    """Labels equal; numbers equal up to float32 rounding (batches of other sizes sum in another order)."""
    if np.asarray(expected).dtype.kind == "f":
        np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=atol, err_msg=name)
    else:
        np.testing.assert_array_equal(actual, expected, err_msg=name)


_FITTED = {}


def fitted(make):
    """One fitted estimator per kind for the read-only checks (fitting costs about 0.1 s, but adds up)."""
    if make not in _FITTED:
        _FITTED[make] = make().fit(X_DNA, Y_DNA)
    return _FITTED[make]


@DNA_ESTIMATORS
def test_fit_returns_self_and_leaves_params_alone(make):
    # check_estimators_fit_returns_self, check_estimators_overwrite_params
    estimator = make()
    params = joblib.hash(estimator.get_params())
    assert estimator.fit(X_DNA, Y_DNA) is estimator
    assert joblib.hash(estimator.get_params()) == params


@DNA_ESTIMATORS
def test_fit_adds_only_fitted_or_private_attributes(make):
    # check_dont_overwrite_parameters, check_fit_check_is_fitted
    estimator = make()
    before = set(vars(estimator))
    with pytest.raises(NotFittedError):
        check_is_fitted(estimator)
    estimator.fit(X_DNA, Y_DNA)
    check_is_fitted(estimator)
    added = set(vars(estimator)) - before
    assert added and all(name.endswith("_") or name.startswith("_") for name in added), added
    assert not hasattr(estimator, "n_features_in_")  # strings have no feature count


@DNA_ESTIMATORS
def test_predicting_changes_nothing(make):
    # check_dict_unchanged, and the weights too
    estimator = fitted(make)
    state = pickle.dumps(estimator)
    attributes = dict(vars(estimator))
    outputs(estimator, X_DNA)
    assert vars(estimator).keys() == attributes.keys()
    assert all(vars(estimator)[k] is v for k, v in attributes.items())
    assert pickle.dumps(estimator) == state


@DNA_ESTIMATORS
def test_pickle_round_trip(make):
    # check_estimators_pickle (fitted and unfitted)
    estimator = fitted(make)
    again = pickle.loads(pickle.dumps(estimator))
    for name, value in outputs(estimator, X_DNA).items():
        np.testing.assert_array_equal(outputs(again, X_DNA)[name], value, err_msg=name)
    unfitted = pickle.loads(pickle.dumps(make()))
    assert unfitted.get_params() == make().get_params() and not hasattr(unfitted, "model_")


@DNA_ESTIMATORS
def test_fit_is_idempotent_and_deterministic(make):
    # check_fit_idempotent: refitting gives the same model; with random_state=0 so does a clone
    estimator = make().fit(X_DNA, Y_DNA)
    first = outputs(estimator, X_DNA)
    estimator.fit(dna(seed=1), Y_DNA[::-1]).fit(X_DNA, Y_DNA)
    clone_fit = clone(estimator).fit(X_DNA, Y_DNA)
    for name, value in first.items():
        assert_same(outputs(estimator, X_DNA)[name], value, name)
        assert_same(outputs(clone_fit, X_DNA)[name], value, name)


@DNA_ESTIMATORS
def test_methods_are_sample_order_and_subset_invariant(make):
    # check_methods_sample_order_invariance, check_methods_subset_invariance: a sequence's output does not
    # depend on the others it is batched (and padded) with
    estimator = fitted(make)
    full = outputs(estimator, X_DNA)
    order = np.random.default_rng(0).permutation(len(X_DNA))
    shuffled = outputs(estimator, [X_DNA[i] for i in order])
    one_by_one = [outputs(estimator, [x]) for x in X_DNA]
    for name, value in full.items():
        assert_same(shuffled[name], value[order], name, atol=1e-5)
        assert_same(np.concatenate([o[name] for o in one_by_one]), value, name, atol=1e-5)


def test_classifier_outputs_agree():
    # check_classifiers_train (shapes, probabilities), check_decision_proba_consistency
    clf = fitted(tiny_classifier)
    proba, log_proba = clf.predict_proba(X_DNA), clf.predict_log_proba(X_DNA)
    assert proba.shape == (len(X_DNA), 3) and np.allclose(proba.sum(1), 1.0)
    np.testing.assert_allclose(np.exp(log_proba), proba, rtol=1e-5)
    assert np.array_equal(clf.predict(X_DNA), clf.classes_[proba.argmax(1)])
    assert np.array_equal(clf.decision_function(X_DNA).argmax(1), proba.argmax(1))
    assert 0.0 <= clf.score(X_DNA, Y_DNA) <= 1.0


@pytest.mark.parametrize("labels", [[0, 1], ["no", "yes"], [-1, 1], [True, False]], ids=str)
def test_classifier_classes(labels):
    # check_classifiers_classes: any label type; classes_ sorted; predictions are labels; binary margin (n,)
    y = np.array(labels * 6)
    clf = tiny_classifier().fit(X_DNA, y)
    assert clf.classes_.tolist() == sorted(set(labels))
    assert set(clf.predict(X_DNA).tolist()) <= set(labels)
    assert clf.decision_function(X_DNA).shape == (len(X_DNA),)


def test_classifier_rejects_what_is_not_a_classification_target():
    # check_requires_y_none, check_classifiers_regression_target, check_classifiers_one_label
    with pytest.raises(ValueError, match="requires y to be passed, but the target y is None"):
        tiny_classifier().fit(X_DNA, None)
    with pytest.raises(ValueError, match="Unknown label type"):
        tiny_classifier().fit(X_DNA, np.linspace(0.0, 1.0, len(X_DNA)))
    with pytest.raises(ValueError, match="single class"):
        tiny_classifier().fit(X_DNA, ["a"] * len(X_DNA))


def test_embedder_is_a_transformer():
    # check_transformer_general (fit_transform == fit then transform), check_transformer_get_feature_names_out,
    # check_set_output_transform
    emb = fitted(tiny_embedder)
    Z = emb.transform(X_DNA)
    np.testing.assert_allclose(tiny_embedder().fit_transform(X_DNA), Z, rtol=1e-6, atol=1e-6)
    names = emb.get_feature_names_out()
    assert Z.shape == (len(X_DNA), len(names)) and names[0] == "emb_0"
    frame = clone(emb).set_output(transform="pandas").fit(X_DNA).transform(X_DNA)
    assert isinstance(frame, pd.DataFrame) and list(frame.columns) == names.tolist()


def test_dna_estimators_in_a_pipeline_and_a_search():
    # check_pipeline_consistency; clone and set_params as a search uses them
    pipe = make_pipeline(tiny_embedder(), LogisticRegression(max_iter=200)).fit(X_DNA, Y_DNA)
    np.testing.assert_allclose(clone(pipe).fit(X_DNA, Y_DNA).predict_proba(X_DNA), pipe.predict_proba(X_DNA),
                               rtol=1e-5, atol=1e-6)
    search = GridSearchCV(tiny_classifier(), {"pooling": ["mean", "max"]}, cv=2).fit(X_DNA, Y_DNA)
    assert search.best_params_["pooling"] in ("mean", "max")
    assert search.best_estimator_.predict(X_DNA[:2]).shape == (2,)


def test_forecaster_refuses_sparse_and_complex_tables():
    # Found by check_estimator_sparse_* and check_complex_data: sparse input was refused without saying why,
    # complex values were read as their real part.
    import scipy.sparse

    X = np.random.default_rng(0).normal(size=(20, 2))
    with pytest.raises(TypeError, match=r"X is a sparse matrix \(csr_matrix\).*X\.toarray\(\)"):
        tiny_forecaster().fit(scipy.sparse.csr_matrix(X))
    with pytest.raises(ValueError, match="Complex data not supported"):
        tiny_forecaster().fit(X + 1j)


def test_random_state_may_be_a_random_state_instance():
    # scikit-learn's convention: an int, a RandomState or None. The forecaster took only an int (a TypeError
    # from torch's seeding); a RandomState seeds every estimator as the same one does.
    for make in (tiny_classifier, tiny_embedder):
        first, second = (outputs(make(random_state=np.random.RandomState(0)).fit(X_DNA, Y_DNA), X_DNA)
                         for _ in range(2))
        for name, value in first.items():
            assert_same(second[name], value, name)
    series = np.sin(np.arange(60.0) / 5)[:, None]
    first, second = (tiny_forecaster(random_state=np.random.RandomState(0)).fit(series).predict() for _ in range(2))
    np.testing.assert_allclose(second, first, rtol=1e-6)
