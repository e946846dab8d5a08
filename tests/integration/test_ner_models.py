"""The neural NER candidates, for real, on CoNLL-2003 slices (spaCy from scratch, MiniLM)."""

from __future__ import annotations

import numpy as np
import pytest
from seqeval.metrics import f1_score

from alrun.errors import AlrunError
from alrun.models import ModelContext, build_model

pytestmark = pytest.mark.slow

# Small, fast settings; the YAML defaults are for real runs. Floors: entity micro F1 on the
# 300 test sentences measured at 0.69-0.73 (spaCy, seeds 0-2) and 0.60 (MiniLM, seeds 0-1);
# untrained models score ~0.
CASES = [
    ({"name": "spacy_ner", "epochs": 6, "min_steps": 0}, 0.55),
    ({"name": "minilm_token_cls", "epochs": 2, "min_steps": 0, "max_length": 64}, 0.45),
]


def _ctx(conll_slice, tmp_path) -> ModelContext:
    names = conll_slice["names"]
    return ModelContext(n_classes=len(names), seed=0, cache_dir=tmp_path, label_names=names)


@pytest.mark.parametrize(("spec", "floor"), CASES, ids=[s["name"] for s, _ in CASES])
def test_ner_candidate_learns_conll(conll_slice, tmp_path, spec, floor):
    names = conll_slice["names"]
    (tr_x, tr_y), (te_x, te_y) = conll_slice["train"], conll_slice["test"]
    model = build_model(_ctx(conll_slice, tmp_path), spec)
    model.fit(tr_x, tr_y)
    preds = model.predict(te_x)
    lengths = np.array([len(s) for s in te_x])
    assert preds.probs.shape == (len(te_x), lengths.max(), len(names))
    np.testing.assert_array_equal(preds.mask.sum(axis=1), lengths)
    np.testing.assert_allclose(preds.probs[preds.mask].sum(axis=1), 1.0, atol=1e-4)
    assert (preds.probs[~preds.mask] == 0).all()
    assert preds.best is not None
    np.testing.assert_array_equal(preds.best[~preds.mask], 0)
    if preds.seq_logprob is not None:
        assert preds.seq_logprob.shape == (len(te_x),)
        assert (preds.seq_logprob <= 1e-9).all()
    decoded = [[names[k] for k in preds.probs[i, :n].argmax(axis=1)] for i, n in enumerate(lengths)]
    gold = [[names[k] for k in y] for y in te_y]
    assert f1_score(gold, decoded) >= floor


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
        model.fit(tr_x[:48], tr_y[:48])
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
