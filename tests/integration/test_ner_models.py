"""The neural NER candidates, for real, on CoNLL-2003 slices (spaCy from scratch, MiniLM):
each fits and overfits a tiny batch, is deterministic, covers empty and over-long sentences,
and refuses bad hyper-parameters. Their quality floors: benchmarks/quality_floors.py."""

from __future__ import annotations

import numpy as np
import pytest

from alrun.errors import AlrunError
from alrun.models import ModelContext, build_model

pytestmark = pytest.mark.slow

# Settings for a batch of 8 sentences: fitting it, not generalising (quality floors, entity F1
# on 300 test sentences after 600 training ones: benchmarks/quality_floors.py). Measured:
# every tag back from 40 updates (spaCy) and 15 (MiniLM at these learning rates); twice that.
TINY = [
    {"name": "spacy_ner", "epochs": 1, "min_steps": 80, "width": 32, "depth": 1},
    {"name": "minilm_token_cls", "epochs": 1, "min_steps": 30, "max_length": 64}
    | {"lr": 3e-4, "head_lr": 3e-3},
]


def _ctx(conll_slice, tmp_path) -> ModelContext:
    names = conll_slice["names"]
    return ModelContext(n_classes=len(names), seed=0, cache_dir=tmp_path, label_names=names)


@pytest.fixture(scope="module")
def tiny(conll_slice):
    """8 training sentences with entities of every type among them."""
    tr_x, tr_y = conll_slice["train"]
    picks = [i for i, y in enumerate(tr_y) if y.any() and 5 <= len(y) <= 25][:8]
    return [tr_x[i] for i in picks], [tr_y[i] for i in picks]


@pytest.mark.parametrize("spec", TINY, ids=[s["name"] for s in TINY])
def test_ner_candidate_fits_and_overfits_a_tiny_batch(conll_slice, tiny, tmp_path, spec):
    names = conll_slice["names"]
    x, y = tiny
    assert {names[t][2:] for tags in y for t in tags if t} == {"PER", "ORG", "LOC", "MISC"}
    model = build_model(_ctx(conll_slice, tmp_path), spec)
    model.fit(x, y)
    preds = model.predict(x)
    lengths = np.array([len(s) for s in x])
    assert preds.probs.shape == (len(x), lengths.max(), len(names))
    np.testing.assert_array_equal(preds.mask.sum(axis=1), lengths)
    np.testing.assert_allclose(preds.probs[preds.mask].sum(axis=1), 1.0, atol=1e-4)
    assert (preds.probs[~preds.mask] == 0).all()
    assert preds.best is not None
    np.testing.assert_array_equal(preds.best[~preds.mask], 0)
    if preds.seq_logprob is not None:
        assert preds.seq_logprob.shape == (len(x),)
        assert (preds.seq_logprob <= 1e-9).all()
    decoded = [[names[k] for k in preds.probs[i, :n].argmax(axis=1)] for i, n in enumerate(lengths)]
    gold = [[names[k] for k in tags] for tags in y]
    assert decoded == gold  # every training tag back, entities and O alike
    for i, n in enumerate(lengths):
        np.testing.assert_array_equal(preds.best[i, :n], y[i])


@pytest.mark.parametrize(
    "spec",
    [
        {"name": "spacy_ner", "epochs": 1, "min_steps": 0, "width": 32, "depth": 1},
        {"name": "minilm_token_cls", "epochs": 1, "min_steps": 0, "max_length": 32},
    ],
    ids=["spacy_ner", "minilm_token_cls"],
)
def test_ner_candidate_is_deterministic_and_covers_odd_sentences(conll_slice, tmp_path, spec):
    (tr_x, tr_y), (te_x, _) = conll_slice["train"], conll_slice["test"]
    long = [w for s in te_x[:40] for w in s]  # far longer than max_length sub-words
    sentences = [*te_x[:20], [], long]
    runs = []
    for _ in range(2):
        model = build_model(_ctx(conll_slice, tmp_path), spec)
        model.fit(tr_x[:24], tr_y[:24])
        runs.append(model.predict(sentences))
    np.testing.assert_array_equal(runs[0].probs, runs[1].probs)
    np.testing.assert_array_equal(runs[0].mask.sum(axis=1), [len(s) for s in sentences])
    np.testing.assert_allclose(runs[0].probs[runs[0].mask].sum(axis=1), 1.0, atol=1e-4)


@pytest.mark.parametrize(
    "spec",
    [
        {"name": "spacy_ner", "beam_width": 1},
        {"name": "spacy_ner", "dropout": 1.5},
        {"name": "minilm_token_cls", "max_length": 2},
        {"name": "minilm_token_cls", "lr": 0},
    ],
)
def test_bad_hyper_parameters_fail_clearly(conll_slice, tmp_path, spec):
    with pytest.raises(AlrunError, match=spec["name"]):
        build_model(_ctx(conll_slice, tmp_path), spec)
