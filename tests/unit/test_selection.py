"""Selection by proper scoring rules: hand-computed losses, the incumbent rule, the soft vote."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from alrun.models import ModelContext, build_model
from alrun.models.ensemble import Ensemble, fit_weights
from alrun.selection import bootstrap_better, keep, repeated_splits, select_best, validate
from alrun.strategies import Predictions
from alrun.tasks import multiclass, ner, proper_loss

WORDS = [["goal", "match", "team"], ["market", "shares", "bank"], ["film", "actor", "music"]]


def corpus(n: int) -> tuple[list[str], np.ndarray]:
    """Three topics, each text a few of its words plus noise words of any topic."""
    rng = np.random.default_rng(0)
    y = np.arange(n) % 3
    noise = [w for ws in WORDS for w in ws]
    return [" ".join([*rng.choice(WORDS[c], 3), *rng.choice(noise, 3)]) for c in y], y


NAMES = ["a", "b", "c"]
SEL = OmegaConf.create(
    {
        "cv_max_size": 60,
        "cv_folds": 3,
        "val_fraction": 0.25,
        "rank_by": "log_loss",
        "cv_repeats": 2,
        "repeat_max_size": 60,
        "switch_confidence": 0.9,
    }
)
LEX = {"name": "tfidf_logreg", "Cs": [10], "default_C": 10.0}
UNI = {"name": "tfidf_logreg", "Cs": [10], "default_C": 10.0, "ngram_max": 1, "max_features": 8}


def ctx(seed: int = 0) -> ModelContext:
    return ModelContext(n_classes=3, seed=seed, cache_dir=Path("/nonexistent"), label_names=NAMES)


def test_proper_losses_by_hand():
    p = np.array([[0.5, 0.25, 0.25], [0.1, 0.8, 0.1], [0.0, 1.0, 0.0]])
    y = np.array([0, 1, 0])
    assert proper_loss(p, y, "log_loss") == pytest.approx(
        [math.log(2), -math.log(0.8), -math.log(1e-12)]
    )
    # Brier: squared distance to the one-hot gold, summed over classes
    assert proper_loss(p, y, "brier") == pytest.approx([0.375, 0.06, 2.0])
    assert proper_loss(p, y, "error").tolist() == [0.0, 0.0, 1.0]
    with pytest.raises(ValueError, match="unknown scoring rule"):
        proper_loss(p, y, "hinge")


def test_ner_item_loss_is_the_mean_over_its_tokens():
    # one item of two sentences (2 + 1 tokens), padded to 4 positions
    probs = np.zeros((1, 4, 3))
    probs[0, :3] = [[0.5, 0.5, 0.0], [0.25, 0.75, 0.0], [1.0, 0.0, 0.0]]
    gold = np.empty(1, dtype=object)
    gold[0] = [np.array([0, 1]), np.array([0])]
    loss = ner().item_losses(Predictions(probs, np.ones((1, 4), bool)), gold, "log_loss")
    assert loss == pytest.approx([(math.log(2) - math.log(0.75) + 0.0) / 3])


def test_bootstrap_share_by_construction():
    rng = np.random.default_rng(0)
    assert bootstrap_better(np.full(10, 0.1), 200, rng) == 1.0  # always better
    assert bootstrap_better(np.full(10, -0.1), 200, rng) == 0.0
    assert bootstrap_better(np.array([np.nan, 0.2, 0.3]), 200, rng) == 1.0  # NaN: not validated
    # one big win among ties: the mean is above 0 exactly when the win is drawn at least once
    share = bootstrap_better(np.array([1.0, 0, 0, 0, 0]), 4000, rng)
    assert share == pytest.approx(1 - 0.8**5, abs=0.03)


def test_the_incumbent_stays_unless_beaten_beyond_noise():
    rng = np.random.default_rng(0)
    noisy = {"inc": np.array([1.0, 1.0, 1.0, 1.0]), "new": np.array([0.5, 1.4, 0.7, 1.3])}
    kept, why = keep(noisy, "inc", "log_loss", 0.9, rng)  # new is lower on average (0.975)
    assert kept == "inc" and why.startswith("incumbent kept: new")
    clear = {"inc": np.full(30, 1.0), "new": np.full(30, 0.6) + 0.01 * np.arange(30) % 0.05}
    kept, why = keep(clear, "inc", "log_loss", 0.9, rng)
    assert kept == "new" and why.startswith("beat incumbent inc")
    # no incumbent (round 0) or confidence 0: the lowest mean loss; ties go to the first key
    assert keep(noisy, None, "log_loss", 0.9, rng)[0] == "new"
    assert keep(noisy, "inc", "log_loss", 0.0, rng)[0] == "new"
    tie = {"x": np.ones(3), "y": np.ones(3)}
    assert keep(tie, None, "brier", 0.9, rng)[0] == "x"


def test_cv_is_repeated_only_while_the_set_is_small():
    y = np.arange(30) % 3
    reps, how = repeated_splits(30, y, SEL, seed=0)
    assert how == "3-fold CV x2" and len(reps) == 2
    for folds in reps:  # each repeat validates every item exactly once
        assert sorted(np.concatenate([va for _, va in folds]).tolist()) == list(range(30))
    assert not all(np.array_equal(a, b) for (_, a), (_, b) in zip(reps[0], reps[1], strict=True))
    _, how = repeated_splits(30, y, OmegaConf.merge(SEL, {"repeat_max_size": 20}), seed=0)
    assert how == "3-fold CV"


def test_a_lone_candidate_is_not_validated():
    texts, y = corpus(30)
    sel = select_best(multiclass(), {"lex": LEX}, ctx(), texts, y, SEL)
    assert (sel.chosen, sel.validation, sel.scores, sel.why) == (
        "lex",
        "none",
        {},
        "the only candidate",
    )
    assert sel.model.predict(texts).probs.shape == (30, 3)


def test_soft_vote_is_validated_from_its_members_out_of_fold_probabilities():
    texts, y = corpus(36)
    cands = {
        "lex": LEX,
        "uni": UNI,
        "vote": {"name": "ensemble", "members": None, "weights": "equal"},
    }
    sel = select_best(multiclass(), cands, ctx(0), texts, y, SEL)
    reps, _ = repeated_splits(36, y, SEL, ctx(0).seed)
    parts = [validate(multiclass(), s, ctx(0), texts, y, reps, "log_loss") for s in (LEX, UNI)]
    total = np.mean(
        [
            proper_loss((parts[0].probs[r] + parts[1].probs[r]) / 2, y, "log_loss")
            for r in range(len(reps))
        ],
        axis=0,
    )
    assert sel.losses["vote"] == pytest.approx(total.mean())
    assert sel.losses["lex"] == pytest.approx(np.nanmean(parts[0].losses))
    # the vote has the lowest loss here (0.366 vs 0.384 and 0.397): kept, its members refit
    assert sel.chosen == "vote" and sel.losses["vote"] < min(sel.losses["lex"], sel.losses["uni"])
    assert sel.spec["members"] == {"lex": LEX, "uni": UNI}
    alone = [build_model(ctx(0), s) for s in (LEX, UNI)]
    for m in alone:
        m.fit(texts, y)
    want = (alone[0].predict(texts).probs + alone[1].predict(texts).probs) / 2
    np.testing.assert_allclose(sel.model.predict(texts).probs, want, atol=1e-9)


def test_a_kept_vote_predicts_the_mean_and_survives_save_and_load(tmp_path):
    texts, y = corpus(30)
    members = {}
    for key, spec in (("lex", LEX), ("uni", UNI)):
        members[key] = build_model(ctx(), spec)
        members[key].fit(texts, y)
    vote = Ensemble.of(members, {"lex": 0.75, "uni": 0.25}, ctx())
    want = 0.75 * members["lex"].predict(texts).probs + 0.25 * members["uni"].predict(texts).probs
    np.testing.assert_allclose(vote.predict(texts).probs, want)
    vote.save(tmp_path)
    spec = {"name": "ensemble", "members": {"lex": LEX, "uni": UNI}, "weights": vote.weights}
    again = build_model(ctx(), spec)
    again.load(tmp_path)
    np.testing.assert_allclose(again.predict(texts).probs, want)


def test_oof_weights_favour_the_member_that_is_right():
    y = np.array([0, 1, 2, 0, 1, 2])
    right = np.eye(3)[y] * 0.9 + 0.1 / 3
    flat = np.full((6, 3), 1 / 3)
    w = fit_weights([[right], [flat]], y)
    assert w[0] > 0.95 and w.sum() == pytest.approx(1.0)
    same = fit_weights([[flat], [flat]], y)  # nothing to choose: stays equal
    assert same == pytest.approx([0.5, 0.5])
