"""Fine-tuning a classifier from a pretrained encoder: `init`, `freeze_encoder`, `encoder_lr_scale`."""

import numpy as np
import pytest
import torch
from dna_estimator_helpers import TINY, at_gc_task
from paths import TEST_DATA

from seqmamba import MambaEmbedder, MambaSequenceClassifier
from seqmamba.errors import InputError
from seqmamba.pipelines.cli import main
from seqmamba.training.optim import param_groups


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """A masked-nucleotide embedder of another size than the classifier's defaults, saved."""
    root = tmp_path_factory.mktemp("pretrained")
    X, _ = at_gc_task(16, 40, seed=1)
    emb = MambaEmbedder(d_model=12, n_layers=2, d_state=4, max_epochs=1, device="cpu", random_state=0,
                        batch_size=8).fit(X)
    emb.save(root / "emb")
    return root / "emb", emb


def encoder_tensors(module):
    return {k: v.clone() for k, v in module.encoder.state_dict().items()}


def test_init_takes_the_encoder_and_its_architecture(pretrained):
    path, emb = pretrained
    X, y = at_gc_task()
    clf = MambaSequenceClassifier(**{**TINY, "max_epochs": 1}, init=str(path), freeze_encoder=True).fit(X, y)
    assert clf.model_.config.d_model == 12 and clf.model_.config.n_layers == 2  # not TINY's 8 and 1
    before, after = encoder_tensors(emb.model_), encoder_tensors(clf.model_)
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)  # frozen: trained the head alone
    assert all(not p.requires_grad for p in clf.model_.encoder.parameters())


def test_fine_tuning_moves_the_encoder_at_its_own_rate(pretrained):
    path, emb = pretrained
    X, y = at_gc_task()
    clf = MambaSequenceClassifier(**{**TINY, "max_epochs": 2, "lr": 1e-2}, init=str(path), encoder_lr_scale=0.1)
    module = clf._new_module(2)
    groups = param_groups(module, weight_decay=0.01, lr=1e-2)
    rates = {name: g.get("lr", 1e-2) for g in groups for name in g["param_names"]}
    assert rates["head.weight"] == 1e-2
    assert all(rates[n] == pytest.approx(1e-3) for n in rates if n.startswith("encoder."))
    clf.fit(X, y)
    before, after = encoder_tensors(emb.model_), encoder_tensors(clf.model_)
    assert any(not torch.equal(before[k], after[k]) for k in before)


def test_fine_tuned_classifier_saves_and_loads(pretrained, tmp_path):
    path, _ = pretrained
    X, y = at_gc_task()
    clf = MambaSequenceClassifier(**{**TINY, "max_epochs": 1}, init=str(path)).fit(X, y)
    clf.save(tmp_path / "clf")
    again = MambaSequenceClassifier.load(tmp_path / "clf")
    # equal up to float32 rounding: the thread count (and so the order of sums) follows the machine's load
    np.testing.assert_allclose(again.predict_proba(X), clf.predict_proba(X), rtol=1e-5, atol=1e-6)


def test_init_from_a_classifier_directory(pretrained, tmp_path):
    path, _ = pretrained
    X, y = at_gc_task()
    first = MambaSequenceClassifier(**{**TINY, "max_epochs": 1}, init=str(path)).fit(X, y)
    first.save(tmp_path / "clf")
    second = MambaSequenceClassifier(**{**TINY, "max_epochs": 1}, init=str(tmp_path / "clf"),
                                     freeze_encoder=True).fit(X, y)
    before, after = encoder_tensors(first.model_), encoder_tensors(second.model_)
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_init_from_something_else_is_one_clear_error(tmp_path):
    X, y = at_gc_task()
    with pytest.raises(InputError, match="holds no DNA encoder"):
        MambaSequenceClassifier(**TINY, init=str(tmp_path)).fit(X, y)
    with pytest.raises(ValueError, match="encoder_lr_scale"):
        MambaSequenceClassifier(**TINY, encoder_lr_scale=0).fit(X, y)


def test_train_dna_init_from_the_cli(pretrained, tmp_path, capsys):
    path, emb = pretrained
    X, y = at_gc_task()
    table = tmp_path / "train.csv"
    table.write_text("sequence,label\n" + "".join(f"{s},{label}\n" for s, label in zip(X, y)))
    code = main(["train", "dna", "--train", str(table), "-o", str(tmp_path / "model"), "--init", str(path),
                 "--freeze-encoder", "--epochs", "1", "--batch-size", "8", "--device", "cpu", "-q"])
    assert code == 0, capsys.readouterr().err
    clf = MambaSequenceClassifier.load(tmp_path / "model")
    assert clf.model_.config.d_model == 12
    before, after = encoder_tensors(emb.model_), encoder_tensors(clf.model_)
    assert all(torch.equal(before[k], after[k]) for k in before)
    capsys.readouterr()
    code = main(["train", "dna", "--train", str(table), "-o", str(tmp_path / "model2"), "--init",
                 str(tmp_path / "nothing"), "--device", "cpu", "-q"])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("Error: ") and err.count("\n") == 1 and "nothing" in err


@pytest.mark.parametrize("name", ["ph", "ps"])
def test_init_from_a_caduceus_checkpoint(name, tmp_path):

    from seqmamba.dna import DNAEncoder

    source = TEST_DATA / "caduceus" / name
    X, y = at_gc_task()
    clf = MambaSequenceClassifier(**{**TINY, "max_epochs": 1}, init=str(source), freeze_encoder=True).fit(X, y)
    want = encoder_tensors(type("M", (), {"encoder": DNAEncoder.from_pretrained(source)})())
    got = encoder_tensors(clf.model_)
    assert want.keys() == got.keys() and all(torch.equal(want[k], got[k]) for k in want)
    assert clf.model_.config.rc_equivariant == (name == "ps")
    clf.save(tmp_path / "clf")  # a fine-tuned Caduceus saves and loads as any classifier
    np.testing.assert_allclose(MambaSequenceClassifier.load(tmp_path / "clf").predict_proba(X),
                               clf.predict_proba(X), rtol=1e-5, atol=1e-6)
