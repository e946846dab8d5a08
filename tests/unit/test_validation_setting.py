"""A model file's `validation: cv | holdout`: a hold-out candidate fits once a selection while
the others keep their folds, every candidate is ranked on the items all of them validated, and
a bad value stops at start-up."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from alrun.config import CONF_DIR, changed_keys, register_schema
from alrun.errors import AlrunError
from alrun.models import MODELS, ModelContext
from alrun.selection import holdout_split, repeated_splits, select_best, validate
from alrun.settings import check as check_settings
from alrun.strategies import Predictions
from alrun.tasks import multiclass, proper_loss

register_schema()

SEL = OmegaConf.create(
    {
        "cv_max_size": 60,
        "cv_folds": 5,
        "val_fraction": 0.25,
        "rank_by": "log_loss",
        "cv_repeats": 2,
        "repeat_max_size": 60,
        "switch_confidence": 0.0,
    }
)
N = 20
Y = np.arange(N) % 2
TEXTS = [str(i) for i in range(N)]  # each text is its row in a lookup model's table
HELD = holdout_split(N, Y, SEL, seed=0)[1]  # the 25% hold-out of seed 0: 5 items
FITS: list[tuple[str, int]] = []  # (tag, items trained on) of every lookup fit


class Lookup:
    """Predicts row int(text) of its table, whatever it was trained on; counts its fits."""

    def __init__(self, table: list[list[float]], tag: str) -> None:
        self.table, self.tag = np.asarray(table), tag

    def fit(self, texts: Sequence[str], labels: np.ndarray) -> None:
        FITS.append((self.tag, len(texts)))

    def predict(self, texts: Sequence[str]) -> Predictions:
        return Predictions(self.table[[int(t) for t in texts]])


def lookup(ctx: ModelContext, table: list[list[float]], tag: str = "") -> Lookup:
    return Lookup(table, tag)


@pytest.fixture
def registered(monkeypatch):
    """`lookup` in the model registry for this test only (the registry mirrors conf/model/)."""
    monkeypatch.setitem(MODELS._items, "lookup", lookup)
    FITS.clear()


def ctx() -> ModelContext:
    return ModelContext(n_classes=2, seed=0, cache_dir=Path("/nonexistent"), label_names="ab")


def table(right_on_held: float, right_elsewhere: float) -> list[list[float]]:
    """The probability each item's gold class gets: one value on HELD, another elsewhere."""
    rows = []
    for i, y in enumerate(Y):
        p = right_on_held if i in HELD else right_elsewhere
        rows.append([p, 1 - p] if y == 0 else [1 - p, p])
    return rows


# sharp (cv): 0.9 on the 5 hold-out items, 0.1 on the other 15; flat (holdout): 0.6 on all.
SHARP = {"name": "lookup", "table": table(0.9, 0.1), "tag": "sharp"}
FLAT = {"name": "lookup", "table": table(0.6, 0.6), "tag": "flat", "validation": "holdout"}


def test_holdout_fits_once_cv_k_times_and_all_are_ranked_on_the_common_items(registered):
    assert sorted(HELD.tolist()) == sorted(set(HELD.tolist())) and len(HELD) == 5
    assert Y[HELD].tolist().count(0) in (2, 3)  # stratified
    sel = select_best(multiclass(), {"sharp": SHARP, "flat": FLAT}, ctx(), TEXTS, Y, SEL)
    # sharp: 5 folds x 2 repeats of 16 items, then refit on all 20 (kept); flat: one fit of 15
    assert Counter(FITS) == {("sharp", 16): 10, ("flat", 15): 1, ("sharp", 20): 1}
    assert sel.validation == "5-fold CV x2; flat: 25% hold-out"
    # on the 5 common items: sharp -log 0.9 = 0.105 < flat -log 0.6 = 0.511. Over all of its
    # own items sharp would lose: (5 * 0.105 + 15 * 2.303) / 20 = 1.75, accuracy 0.25.
    assert sel.losses == pytest.approx({"sharp": -math.log(0.9), "flat": -math.log(0.6)})
    assert sel.scores == {"sharp": 1.0, "flat": 1.0}
    assert sel.chosen == "sharp"
    assert sel.why == "lowest validation log_loss (0.1054) on the 5 items every candidate validated"
    assert "validation" not in sel.spec and set(sel.members) == {"sharp"}


def test_past_cv_max_size_everyone_shares_the_one_hold_out(registered):
    sel_ = OmegaConf.merge(SEL, {"cv_max_size": 10})
    sel = select_best(multiclass(), {"sharp": SHARP, "flat": FLAT}, ctx(), TEXTS, Y, sel_)
    assert Counter(FITS) == {("sharp", 15): 1, ("flat", 15): 1, ("sharp", 20): 1}
    assert sel.validation == "25% hold-out"  # the same items: nothing to restrict or to say
    assert sel.why == "lowest validation log_loss (0.1054)"
    assert sel.losses == pytest.approx({"sharp": -math.log(0.9), "flat": -math.log(0.6)})


def test_a_lone_holdout_candidate_still_validates_nothing(registered):
    sel = select_best(multiclass(), {"flat": FLAT}, ctx(), TEXTS, Y, SEL)
    assert FITS == [("flat", 20)] and sel.validation == "none" and "validation" not in sel.spec


def test_a_vote_of_a_holdout_and_a_cv_member_on_their_common_items():
    """Real models: the hold-out member's one split joins each CV repeat of the other."""
    rng = np.random.default_rng(0)
    words = [["goal", "match", "team"], ["market", "shares", "bank"]]
    texts = [" ".join([*rng.choice(words[c], 3), *rng.choice(words[1 - c], 2)]) for c in Y]
    lex = {"name": "tfidf_logreg", "Cs": [10], "default_C": 10.0}
    uni = {**lex, "ngram_max": 1, "max_features": 4}
    cands = {
        "lex": {**lex, "validation": "holdout"},
        "uni": uni,
        "vote": {"name": "ensemble", "members": None, "weights": "equal"},
    }
    sel = select_best(multiclass(), cands, ctx(), texts, Y, SEL)
    assert sel.validation == "5-fold CV x2; lex: 25% hold-out"
    c = ctx()
    one = validate(multiclass(), lex, c, texts, Y, [[holdout_split(N, Y, SEL, 0)]], "log_loss")
    cv = validate(multiclass(), uni, c, texts, Y, repeated_splits(N, Y, SEL, 0)[0], "log_loss")
    vote = np.mean(
        [proper_loss((one.probs[0] + p) / 2, Y, "log_loss")[HELD] for p in cv.probs], axis=0
    )
    assert sel.losses["vote"] == pytest.approx(vote.mean())
    assert sel.losses["uni"] == pytest.approx(cv.losses[HELD].mean())
    assert sel.losses["lex"] == pytest.approx(np.nanmean(one.losses))
    assert "validation" not in str(sel.spec)  # never reaches a model or the saved spec


def test_holdout_split_stratifies_only_when_each_class_fits_both_parts():
    y = np.arange(10) % 5  # 2 items a class; a 20% hold-out holds 2 items, not 5 classes
    tr, va = holdout_split(10, y, OmegaConf.merge(SEL, {"val_fraction": 0.2}), seed=0)
    assert (len(tr), len(va)) == (8, 2) and sorted([*tr, *va]) == list(range(10))


def make(*overrides: str):
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=list(overrides))


def test_the_networks_hold_out_and_a_bad_value_stops_at_start_up():
    ner = ("dataset=conll2003", "candidates=[crf_ner,spacy_ner,minilm_token_cls]")
    parts = check_settings(make(*ner))
    how = {k: s.get("validation", "cv") for k, s in parts.candidates.items()}
    assert how == {"crf_ner": "cv", "spacy_ner": "holdout", "minilm_token_cls": "holdout"}
    finetune = make("candidates=[tfidf_logreg,minilm_finetune]")
    assert check_settings(finetune).candidates["minilm_finetune"]["validation"] == "holdout"
    with pytest.raises(AlrunError) as e:
        check_settings(make(*ner, "models.spacy_ner.validation=kfold"))
    assert str(e.value).startswith("models.spacy_ner.validation='kfold'; choose cv (")
    assert "or holdout (" in str(e.value)


def test_a_run_saved_before_the_setting_resumes_with_cv():
    saved = {"seed": 0, "models.spacy_ner.name": "spacy_ner"}
    mine = {**saved, "models.spacy_ner.validation": "cv"}
    assert changed_keys(saved, mine) == ""  # it validated by CV then
    diff = changed_keys(saved, {**mine, "models.spacy_ner.validation": "holdout"})
    assert diff == "models.spacy_ner.validation: 'cv' -> 'holdout'"
