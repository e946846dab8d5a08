"""Pool invariants of the loop, with a real (cheap) candidate on a small synthetic corpus."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from alrun.errors import AlrunError
from alrun.loop import Resume, active_learning
from alrun.models import ModelContext
from alrun.oracles import Labels
from alrun.selection import select_best, validation_splits
from alrun.strategies import margin, random, top_k
from alrun.tasks import multiclass

WORDS = [
    ["goal", "match", "team", "score"],
    ["market", "shares", "profit", "bank"],
    ["film", "actor", "award", "music"],
]


def corpus(n: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    texts = [
        " ".join(rng.choice(WORDS[c], 5))
        + f" doc{i} "
        + " ".join(rng.choice([w for ws in WORDS for w in ws], 2))
        for i, c in enumerate(y)
    ]
    return texts, y


SEL = OmegaConf.create({"cv_max_size": 30, "cv_folds": 3, "val_fraction": 0.25})
CANDS = {"tfidf_logreg": {"name": "tfidf_logreg", "Cs": [10], "default_C": 10.0}}


def gold(y):
    return lambda idx: Labels(idx, y[idx], np.empty(0, dtype=np.int64))


def run(
    n_pool: int,
    initial: int,
    round_size: int,
    budget: int,
    strategy=margin,
    seed=0,
    oracle=gold,
    scored: list | None = None,
    rng: np.random.Generator | None = None,
    lazy: bool = False,
    **loop_args,
):
    texts, y = corpus(n_pool)

    def predict(sel, idx):
        if scored is not None:
            scored.append(idx.copy())
        return sel.model.predict([texts[i] for i in idx])

    task = multiclass()
    ctx = ModelContext(
        n_classes=3, seed=seed, cache_dir=Path("/nonexistent"), label_names=["a", "b", "c"]
    )

    def train(idx, labels, r):
        return select_best(task, CANDS, ctx, [texts[i] for i in idx], labels, SEL)

    results = active_learning(
        n_pool=n_pool,
        label=oracle(y),
        train=train,
        evaluate=lambda m: task.metrics(y, m.predict(texts).probs.argmax(1), ["a", "b", "c"]),
        predict=predict,
        query=top_k(strategy),
        initial_size=initial,
        round_size=round_size,
        budget=budget,
        rng=np.random.default_rng(seed) if rng is None else rng,
        **loop_args,
    )
    return results if lazy else list(results)


def test_pool_grows_by_round_size_and_stops_at_budget():
    results = run(n_pool=60, initial=6, round_size=5, budget=27)
    sizes = [len(r.labeled) for r in results]
    assert sizes == [6, 11, 16, 21, 26, 27]  # the last round is cut to the budget
    for prev, cur in itertools.pairwise(results):
        assert list(cur.labeled[: len(prev.labeled)]) == list(prev.labeled)  # order kept
        assert list(cur.labeled[len(prev.labeled) :]) == list(prev.queried)
    for r in results:
        assert len(set(r.labeled.tolist())) == len(r.labeled)  # no duplicates
        assert not set(r.queried.tolist()) & set(r.labeled.tolist())  # disjoint from labelled
    assert len(results[-1].queried) == 0


def test_stops_when_the_pool_runs_out():
    results = run(n_pool=20, initial=5, round_size=7, budget=1000, strategy=random)
    assert [len(r.labeled) for r in results] == [5, 12, 19, 20]
    assert sorted(results[-1].labeled.tolist()) == list(range(20))


def test_labels_come_from_the_oracle_in_order():
    _, y = corpus(40)
    results = run(n_pool=40, initial=4, round_size=4, budget=12)
    last = results[-1]
    assert list(last.labels) == list(y[last.labeled])


def test_skipped_items_leave_the_pool_and_do_not_count_towards_the_budget():
    asked: list[list[int]] = []

    def skip_every_third(y):
        def label(idx):
            asked.append(idx.tolist())
            keep = np.array([i for i in idx if i % 3], dtype=np.int64)
            return Labels(keep, y[keep], np.array([i for i in idx if i % 3 == 0], dtype=np.int64))

        return label

    results = run(n_pool=40, initial=6, round_size=5, budget=20, oracle=skip_every_third)
    flat = [i for batch in asked for i in batch]
    assert len(flat) == len(set(flat))  # a skipped item is never asked again
    last = results[-1]
    assert len(last.labeled) == 20 and not any(i % 3 == 0 for i in last.labeled)
    assert len(flat) > 20  # the skips were made up by later queries


def test_a_first_batch_all_skipped_draws_again():
    calls = []

    def skip_first_call(y):
        def label(idx):
            calls.append(len(idx))
            if len(calls) == 1:
                return Labels(np.empty(0, dtype=np.int64), y[:0], idx)
            return Labels(idx, y[idx], np.empty(0, dtype=np.int64))

        return label

    results = run(n_pool=30, initial=6, round_size=6, budget=12, oracle=skip_first_call)
    assert calls[:2] == [6, 6] and len(results[0].labeled) == 6


def test_pool_sample_scores_a_random_subset_of_the_unlabelled_pool():
    scored: list[np.ndarray] = []
    results = run(n_pool=80, initial=6, round_size=5, budget=21, scored=scored, pool_sample=12)
    assert [len(s) for s in scored] == [12, 12, 12]
    for res, s in zip(results, scored, strict=False):
        assert not set(s.tolist()) & set(res.labeled.tolist())  # only unlabelled items
        assert set(res.queried.tolist()) <= set(s.tolist())  # the batch comes from the sample
    assert len({tuple(s) for s in scored}) == 3  # a fresh sample each round
    full: list[np.ndarray] = []
    run(n_pool=80, initial=6, round_size=5, budget=21, scored=full)  # default: all of them
    assert [len(s) for s in full] == [74, 69, 64]


def test_resume_continues_exactly_where_the_run_stopped():
    rng = np.random.default_rng(0)
    whole, saved = [], None
    for res in run(n_pool=50, initial=5, round_size=5, budget=30, rng=rng, lazy=True):
        whole.append(res)
        if res.round == 1:  # what the checkpoint keeps at this point
            saved = (res, rng.bit_generator.state)
    res, state = saved
    rng2 = np.random.default_rng(99)
    rng2.bit_generator.state = state
    resume = Resume(res.round, res.labeled, res.labels, res.skipped, res.queried)
    rest = run(n_pool=50, initial=5, round_size=5, budget=30, rng=rng2, resume=resume)
    assert [r.round for r in rest] == [2, 3, 4, 5]
    for a, b in zip(rest, whole[2:], strict=True):
        assert a.labeled.tolist() == b.labeled.tolist()
        assert a.queried.tolist() == b.queried.tolist()
        assert a.test == b.test


def test_initial_larger_than_pool_is_an_error():
    with pytest.raises(AlrunError, match="initial_size=50 exceeds the pool"):
        run(n_pool=20, initial=50, round_size=5, budget=60)


def test_validation_uses_cv_when_small_and_holdout_when_large():
    y = np.arange(100) % 4
    folds, how = validation_splits(20, y[:20], SEL, seed=0)
    assert how == "3-fold CV" and len(folds) == 3
    assert sorted(np.concatenate([va for _, va in folds]).tolist()) == list(range(20))
    folds, how = validation_splits(100, y, SEL, seed=0)
    assert how == "25% hold-out" and len(folds) == 1 and len(folds[0][1]) == 25
    folds, how = validation_splits(20, None, SEL, seed=0)  # NER: no strata, plain k-fold
    assert how == "3-fold CV"
    assert sorted(np.concatenate([va for _, va in folds]).tolist()) == list(range(20))


def test_selection_keeps_the_best_validation_score():
    texts, y = corpus(45)
    cands = {
        **CANDS,
        "weak": {"name": "tfidf_logreg", "Cs": [1e-4], "default_C": 1e-4, "max_features": 1},
    }
    ctx = ModelContext(
        n_classes=3, seed=0, cache_dir=Path("/nonexistent"), label_names=["a", "b", "c"]
    )
    sel = select_best(multiclass(), cands, ctx, texts, y, SEL)
    assert sel.chosen == "tfidf_logreg" and sel.scores["tfidf_logreg"] > sel.scores["weak"]
    assert sel.model.predict(texts).probs.shape == (45, 3)


def test_tuning_is_seeded_only_tunes_candidates_with_a_space_and_refits_the_committee():
    texts, y = corpus(45)
    space = {
        "ngram_max": {"type": "int", "low": 1, "high": 3},
        "max_features": {"type": "int", "low": 1, "high": 200, "log": True},
    }
    weak = {**CANDS["tfidf_logreg"], "max_features": 1}  # the file's values: a poor first trial
    cands = {"tuned": weak, "fixed": CANDS["tfidf_logreg"]}
    sel = OmegaConf.merge(SEL, {"trials": 5})

    def tune(seed: int):
        ctx = ModelContext(3, seed, Path("/nonexistent"), label_names=["a", "b", "c"])
        return select_best(multiclass(), cands, ctx, texts, y, sel, {"tuned": space}, True)

    a, b, c = tune(0), tune(0), tune(1)
    assert set(a.tuned) == {"tuned"} and set(a.tuned["tuned"]) == {"ngram_max", "max_features"}
    assert a.tuned == b.tuned and a.scores == b.scores  # same seed, same trials
    assert a.tuned != c.tuned  # another seed samples other trials
    # the kept model is built from the tuned values; the committee holds every candidate
    assert set(a.members) == {"tuned", "fixed"} and a.members[a.chosen] is a.model
    assert a.tuned["tuned"]["max_features"] > 1  # tuning beat the poor defaults
    if a.chosen == "tuned":
        assert a.spec["max_features"] == a.tuned["tuned"]["max_features"]


def test_held_out_items_are_never_asked_trained_on_or_queried():
    from alrun.heldout import draw

    held = draw(60, 15, seed=3)
    assert len(held) == 15 and len(set(held.tolist())) == 15
    assert held.tolist() == draw(60, 15, seed=3).tolist()  # seeded
    assert held.tolist() != draw(60, 15, seed=4).tolist()
    asked: list[int] = []

    def recording(y):
        def label(idx):
            asked.extend(idx.tolist())
            return Labels(idx, y[idx], np.empty(0, dtype=np.int64))

        return label

    results = run(n_pool=60, initial=5, round_size=10, budget=1000, oracle=recording, held_out=held)
    assert not set(asked) & set(held.tolist())
    for r in results:
        assert not set(r.labeled.tolist()) & set(held.tolist())
        assert not set(r.queried.tolist()) & set(held.tolist())
    # the pool runs out at the 45 items outside the sample
    assert len(results[-1].labeled) == 45


def test_an_evaluation_sample_excludes_the_seed_set_and_must_leave_a_pool():
    from alrun.heldout import draw

    seeds = np.arange(10)
    assert not set(draw(30, 10, seed=0, exclude=seeds).tolist()) & set(seeds.tolist())
    with pytest.raises(AlrunError, match=r"eval.size=20 leaves nothing .* besides the seed set"):
        draw(30, 20, seed=0, exclude=seeds)


def test_without_held_out_items_the_first_draw_is_unchanged():
    a = run(n_pool=40, initial=6, round_size=5, budget=11)
    b = run(n_pool=40, initial=6, round_size=5, budget=11, held_out=np.empty(0, dtype=np.int64))
    assert [r.labeled.tolist() for r in a] == [r.labeled.tolist() for r in b]
    rng = np.random.default_rng(0)
    assert a[0].labeled.tolist() == rng.choice(40, size=6, replace=False).tolist()


def test_a_run_saved_before_the_eval_settings_existed_still_resumes():
    from alrun.config import changed_keys

    mine = {"seed": 0, "eval.size": 0, "eval.level": 0.95, "eval.bootstrap": 1000}
    assert changed_keys({"seed": 0}, mine) == ""  # saved before: eval.* at their old meaning
    assert "eval.size: 0 -> 50" in changed_keys({"seed": 0}, {**mine, "eval.size": 50})
    assert "seed: 0 -> 1" in changed_keys({"seed": 0}, {**mine, "seed": 1})


def test_the_loop_ends_when_the_watched_rule_says_stop():
    calls = []

    def watch(sel, r):
        calls.append(r)
        return {"r": r}, r == 2

    results = run(n_pool=60, initial=6, round_size=5, budget=50, watch=watch)
    assert [len(r.labeled) for r in results] == [6, 11, 16]
    assert calls == [0, 1, 2]
    assert len(results[-1].queried) == 0  # nothing left asked: the run ends
    assert [r.stopping for r in results] == [{"r": 0}, {"r": 1}, {"r": 2}]
