"""MambaSequenceClassifier and MambaEmbedder: the scikit-learn contract, windowing, pickling, checkpoints."""

import pickle

import numpy as np
import pandas as pd
import polars as pl
import pytest
import torch
from dna_estimator_helpers import TINY, at_gc_task, tiny_classifier
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from torch import nn

from seqmamba import MambaEmbedder, MambaSequenceClassifier
from seqmamba.errors import InputError
from seqmamba.estimators._dna_data import WindowRef, iter_batches, plan_windows, window_spans
from seqmamba.tokenizers.dna import PAD, DNATokenizer


@pytest.fixture(scope="module")
def fitted():
    X, y = at_gc_task()
    return tiny_classifier().fit(X, y), X, y


def test_window_spans_cover_the_sequence():
    assert window_spans(10, 4, 4) == [(0, 4), (4, 8), (8, 10)]
    assert window_spans(8, 4, 4) == [(0, 4), (4, 8)]
    assert window_spans(10, 4, 3) == [(0, 4), (3, 7), (6, 10)]
    assert window_spans(3, 4, 4) == [(0, 3)]
    refs = plan_windows(["A" * 9, "C" * 2], 4, 4)
    assert [(w.row, w.start, w.end) for w in refs] == [(0, 0, 4), (0, 4, 8), (0, 8, 9), (1, 0, 2)]


def test_batches_are_padded_to_a_multiple_of_16_and_the_mask_holds_the_real_tokens():
    seqs = ["ACGT" * 75, "ACG" * 10, "A" * 32]
    windows = [WindowRef(i, 0, len(s)) for i, s in enumerate(seqs)]
    (batch,) = iter_batches(seqs, windows, DNATokenizer(), batch_size=3, add_cls=True)
    assert batch.input_ids.shape == (3, 304)  # 301 tokens with [CLS], rounded up
    real = {w.row: w.end - w.start + 1 for w in batch.windows}
    assert sorted(batch.attention_mask.sum(1).tolist()) == sorted(real.values())
    assert (batch.input_ids[batch.attention_mask == 0] == PAD).all()


def test_init_stores_params_unchanged_and_validates_in_fit():
    clf = MambaSequenceClassifier(d_model=-3, pooling="nope")  # no validation in __init__
    assert clf.get_params()["d_model"] == -3 and clf.get_params()["pooling"] == "nope"
    X, y = at_gc_task(n=4)
    with pytest.raises(ValueError, match="d_model"):
        clf.fit(X, y)
    with pytest.raises(ValueError, match="pooling"):
        clf.set_params(d_model=8).fit(X, y)


def test_not_fitted_errors():
    for method in ("predict", "predict_proba", "decision_function"):
        with pytest.raises(NotFittedError):
            getattr(MambaSequenceClassifier(), method)(["ACGT"])
    with pytest.raises(NotFittedError):
        MambaEmbedder().transform(["ACGT"])
    # NotFittedError before X is looked at (scikit-learn's check_estimators_unfitted feeds numbers)
    for method in ("predict", "predict_proba", "predict_log_proba", "decision_function"):
        with pytest.raises(NotFittedError):
            getattr(MambaSequenceClassifier(), method)(np.zeros((3, 2)))
    with pytest.raises(NotFittedError):
        MambaEmbedder().transform(np.zeros((3, 2)))


def test_fit_predict_score_and_shapes(fitted):
    clf, X, y = fitted
    assert clf.classes_.tolist() == ["AT", "GC"]
    assert clf.score(X, y) == 1.0
    proba = clf.predict_proba(["ATAT", "GCGC", "AATT"])
    assert proba.shape == (3, 2) and np.allclose(proba.sum(1), 1.0)
    assert clf.predict(["ATTATTA", "GGCCG"]).tolist() == ["AT", "GC"]
    margin = clf.decision_function(["ATAT", "GCGC"])
    assert margin.shape == (2,) and margin[0] < 0 < margin[1]
    assert clf.n_iter_ > 0


def test_long_sequences_are_windowed_and_logits_pooled(fitted):
    clf, _, _ = fitted
    long = "AT" * 150 + "G"  # 301 bases, max_len 64: 5 windows, the last one 45 bases
    logits, windows = clf.window_logits([long, "GC" * 10])
    assert [(w.row, w.start, w.end) for w in windows][:5] == [(0, 0, 64), (0, 64, 128), (0, 128, 192),
                                                              (0, 192, 256), (0, 256, 301)]
    assert logits.shape == (6, 2)
    expected = logits[:5].mean(0)
    assert np.allclose(clf.decision_function([long]), expected[1] - expected[0], atol=1e-5)
    clf_max = clone(clf).set_params(window_pooling="max")
    clf_max.__dict__.update({k: v for k, v in clf.__dict__.items() if k.endswith("_")})
    assert np.allclose(clf_max.decision_function([long]), logits[:5, 1].max() - logits[:5, 0].max(), atol=1e-5)


def test_clone_get_set_params(fitted):
    clf, _, _ = fitted
    copy = clone(clf)
    assert copy.get_params() == clf.get_params()
    assert not hasattr(copy, "model_") and not hasattr(copy, "classes_")
    assert copy.set_params(lr=0.5).lr == 0.5 and clf.lr != 0.5


def test_pickle_round_trip_keeps_predictions(fitted):
    clf, X, _ = fitted
    blob = pickle.dumps(clf)
    assert b"torch.nn" not in blob  # weights travel as safetensors bytes, not a pickled module
    again = pickle.loads(blob)
    assert np.array_equal(again.predict_proba(X), clf.predict_proba(X))
    assert again.get_params() == clf.get_params()


def test_save_load_directory(fitted, tmp_path):
    clf, X, _ = fitted
    clf.save(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [
        "config.json", "estimator.json", "model.safetensors", "tokenizer.json"]
    again = MambaSequenceClassifier.load(tmp_path / "m", device="cpu")
    assert np.allclose(again.predict_proba(X), clf.predict_proba(X), atol=1e-6)
    assert again.classes_.tolist() == clf.classes_.tolist() and again.max_len == clf.max_len


def test_bad_labels():
    X, _ = at_gc_task(n=4)
    with pytest.raises(InputError, match="single class"):
        tiny_classifier().fit(X, ["a"] * 4)
    with pytest.raises(ValueError, match="one label per sequence"):
        tiny_classifier().fit(X, ["a", "b"])
    with pytest.raises(TypeError, match="single string"):
        tiny_classifier().fit("ACGT", ["a"])
    with pytest.raises(InputError, match="position 2"):
        tiny_classifier().fit(["AC!T", "ACGT"], ["a", "b"])
    # scikit-learn's rules for a classifier's y (check_requires_y_none, check_classifiers_regression_target)
    with pytest.raises(ValueError, match="requires y to be passed, but the target y is None"):
        tiny_classifier().fit(X, None)
    with pytest.raises(ValueError, match="Unknown label type: continuous"):
        tiny_classifier().fit(X, [0.1, 0.2, 0.3, 0.4])  # was four classes


def test_a_one_column_frame_is_its_column(fitted):
    # A pandas DataFrame was iterated as its column names: predict(df[["dna"]]) gave one prediction, for "dna".
    clf, X, _ = fitted
    expected = clf.predict(X[:3])
    assert clf.predict(pd.DataFrame({"dna": X[:3]})).tolist() == expected.tolist()
    assert clf.predict(pl.DataFrame({"dna": X[:3]})).tolist() == expected.tolist()
    with pytest.raises(TypeError, match="a table of 2 columns"):
        clf.predict(pd.DataFrame({"dna": X[:3], "other": X[:3]}))


def test_multiclass_integer_labels_rc_equivariance_and_cls_pooling():
    rng = np.random.default_rng(1)
    letters = {0: "A", 1: "C", 2: "AC"}
    y = [i % 3 for i in range(18)]
    X = ["".join(rng.choice(list(letters[c]), 30)) for c in y]
    clf = tiny_classifier(rc_equivariant=True, max_epochs=2).fit(X, y)
    assert clf.classes_.tolist() == [0, 1, 2]
    assert clf.decision_function(X[:4]).shape == (4, 3)
    assert set(clf.predict(X).tolist()) <= {0, 1, 2}
    rc = X[0].translate(str.maketrans("ACGT", "TGCA"))[::-1]
    assert np.allclose(clf.predict_proba([X[0]]), clf.predict_proba([rc]), atol=1e-5)  # strand-symmetric
    cls = tiny_classifier(pooling="cls", max_epochs=1).fit(X, y)
    assert cls.head_["add_cls"] and cls.predict_proba(X[:2]).shape == (2, 3)


def test_early_stopping_holds_out_a_validation_split():
    X, y = at_gc_task(n=40)
    clf = tiny_classifier(early_stopping=True, validation_fraction=0.25, max_epochs=3).fit(X, y)
    assert "val_acc" in clf.validation_scores_ and clf.best_validation_score_ is not None


def test_embedder_from_classifier_set_output_and_pipeline(fitted):
    clf, X, y = fitted
    emb = MambaEmbedder.from_classifier(clf)
    Z = emb.transform(X)
    assert Z.shape == (len(X), 8) and Z.dtype == np.float32
    assert emb.get_feature_names_out().tolist() == [f"emb_{i}" for i in range(8)]
    frame = MambaEmbedder(model=clf).set_output(transform="pandas").fit(X).transform(X[:3])
    assert isinstance(frame, pd.DataFrame) and list(frame.columns)[:2] == ["emb_0", "emb_1"]
    frame = MambaEmbedder(model=clf).set_output(transform="polars").fit(X).transform(X[:3])
    assert isinstance(frame, pl.DataFrame) and frame.shape == (3, 8)
    pipe = make_pipeline(MambaEmbedder(model=clf), LogisticRegression()).fit(X, y)
    assert pipe.score(X, y) == 1.0
    # An unfitted classifier inside: the pipeline trains it on y, then embeds.
    pipe = make_pipeline(MambaEmbedder(model=tiny_classifier(max_epochs=1)), LogisticRegression()).fit(X, y)
    assert pipe.predict(X[:2]).shape == (2,)
    pipe_clone = clone(pipe)
    assert not hasattr(pipe_clone[0].model, "model_")


def test_embedder_self_supervised_windows_pickle_and_save(tmp_path):
    rng = np.random.default_rng(0)
    X = ["".join(rng.choice(list("ACGT"), n)) for n in (50, 130, 20)]
    emb = MambaEmbedder(**{**TINY, "max_len": 64, "max_epochs": 1, "pooling": "max"}).fit(X)
    Z = emb.transform(X)
    assert Z.shape == (3, 8)
    per_window, windows = emb.embed_windows(X)
    assert per_window.shape == (1 + 3 + 1, 8) and [w.row for w in windows] == [0, 1, 1, 1, 2]
    assert np.allclose(Z[2], per_window[4], atol=1e-6)  # one window: its embedding
    again = pickle.loads(pickle.dumps(emb))
    assert np.array_equal(again.transform(X), Z)
    emb.save(tmp_path / "e")
    assert np.allclose(MambaEmbedder.load(tmp_path / "e").transform(X), Z, atol=1e-6)
    assert MambaEmbedder(model=str(tmp_path / "e")).fit().transform(X).shape == (3, 8)


def test_pooling_ignores_padding():
    from seqmamba.estimators._heads import masked_pool

    h = torch.tensor([[[1.0], [3.0], [-50.0]], [[2.0], [4.0], [6.0]]])
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    assert masked_pool(h, mask, "mean").flatten().tolist() == [2.0, 4.0]
    assert masked_pool(h, mask, "max").flatten().tolist() == [3.0, 6.0]
    assert masked_pool(h, mask, "cls").flatten().tolist() == [1.0, 2.0]


def test_kmer_baseline_cannot_solve_the_motif_order_task_but_the_data_is_sound():
    from seqmamba.baselines.kmer import KmerCounter, kmer_codes
    from seqmamba.datasets.synthetic import MOTIF_A, MOTIF_B, motif_order_task

    X, y = motif_order_task(40, length=(400, 450), seed=3)
    assert sorted(set(y)) == ["A_first", "B_first"] and y.count("A_first") == 20
    for seq, label in zip(X, y):
        assert (seq.index(MOTIF_A) < seq.index(MOTIF_B)) == (label == "A_first")
    counts = KmerCounter(k=3).fit_transform(X)
    assert counts.shape == (40, 64) and np.allclose(counts.sum(1), 1.0)
    assert kmer_codes("AAAA", 2).tolist() == [0, 0, 0]


def test_a_frozen_fitted_classifier_survives_clone_as_the_embedders_model(fitted):
    """GridSearchCV and pipelines clone their steps, and clone() unfits a fitted estimator given as a parameter:
    scikit-learn's FrozenEstimator keeps it fitted; the plain case says so."""
    frozen_estimator = pytest.importorskip("sklearn.frozen").FrozenEstimator
    clf, X, _ = fitted
    embedder = clone(MambaEmbedder(model=frozen_estimator(clf)))
    np.testing.assert_allclose(embedder.fit().transform(X[:3]), MambaEmbedder(model=clf).fit().transform(X[:3]))
    with pytest.raises(ValueError, match=r"unfitted classifier; .*clone\(\).* FrozenEstimator\(clf\)"):
        clone(MambaEmbedder(model=clf)).fit()


@pytest.mark.parametrize(("n_windows", "sizes"), [(10, [4, 2]), (8, [4]), (3, [4])])
def test_prediction_dry_runs_its_first_batch_and_its_last_partial_one(monkeypatch, n_windows, sizes):
    seen = []
    monkeypatch.setattr("seqmamba.estimators._base.compile_forward_kernels",
                        lambda model, fn, batches: seen.extend(b["input_ids"].shape[0] for b in batches))
    first = {"input_ids": torch.zeros(4, 10, dtype=torch.long), "attention_mask": torch.ones(4, 10)}
    MambaSequenceClassifier(batch_size=4)._compile_predict_kernels(nn.Identity(), None, first, n_windows,
                                                                   torch.device("cpu"))
    assert seen == sizes
