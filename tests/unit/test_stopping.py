"""Stopping rules against hand-computed cases, and the loop ending when one says stop."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from alrun.errors import AlrunError
from alrun.stopping import (
    Rule,
    Watch,
    draw_stop_set,
    entity_agreement,
    kappa,
    least_confidence,
    rules_from,
    stop_round,
)
from alrun.strategies import Predictions, sequence_predictions
from alrun.tasks import multiclass, ner

STOPPING = {
    "stabilizing": {"threshold": 0.99, "window": 3},
    "uncertainty": {"threshold": 0.05, "window": 3},
}


def test_kappa_by_hand():
    # po = 3/4; marginals a (2, 2), b (1, 3): pe = (2*1 + 2*3) / 16 = 1/2; (3/4 - 1/2) / (1/2)
    assert kappa([0, 0, 1, 1], [0, 1, 1, 1]) == pytest.approx(0.5)
    assert kappa([0, 1, 2], [0, 1, 2]) == 1.0
    # chance-level agreement: po = 1/2, pe = 1/2
    assert kappa([0, 1, 0, 1], [0, 0, 1, 1]) == pytest.approx(0.0)
    # both constant and equal: perfect agreement (the formula's 0/0)
    assert kappa([2, 2, 2], [2, 2, 2]) == 1.0
    assert kappa([2, 2], [1, 1]) == 0.0
    with pytest.raises(ValueError, match="same items"):
        kappa([0, 1], [0])


def test_entity_agreement_counts_boundary_and_type_changes_as_disagreement():
    a = [
        ["B-PER", "I-PER", "O", "B-LOC"],  # PER 0-2, LOC 3-4
        ["B-ORG", "O"],  # ORG 0-1
    ]
    b = [
        ["B-PER", "O", "O", "B-ORG"],  # PER 0-1 (boundary), ORG 3-4 (type)
        ["B-ORG", "O"],  # the same ORG
    ]
    # one shared entity of 3 + 3: 2 * 1 / 6
    assert entity_agreement(a, b) == pytest.approx(1 / 3)
    assert entity_agreement(a, a) == 1.0
    assert entity_agreement([["O", "O"]], [["O", "O"]]) == 1.0  # no entity either side
    assert entity_agreement([["B-PER"]], [["O"]]) == 0.0
    # symmetric
    assert entity_agreement(b, a) == entity_agreement(a, b)


def test_least_confidence_by_hand():
    p = Predictions(np.array([[0.7, 0.2, 0.1], [0.5, 0.5, 0.0]]))
    assert least_confidence(p) == pytest.approx([0.3, 0.5])
    # sequences: the least confident real token; padding never counts
    seq = sequence_predictions([np.array([[0.9, 0.1], [0.6, 0.4]]), np.array([[0.99, 0.01]])])
    assert least_confidence(seq) == pytest.approx([0.4, 0.01])


def test_a_rule_stops_after_window_rounds_past_its_threshold():
    up = Rule("stabilizing", 0.9, 2)
    values = [None, 0.95, 0.8, 0.91, 0.92, 0.99]
    assert [up.stops(values[: r + 1]) for r in range(len(values))] == [
        False,
        False,
        False,
        False,
        True,
        True,
    ]
    assert stop_round(values, up) == 4
    down = Rule("uncertainty", 0.1, 1)  # waits for values at or below
    assert stop_round([0.3, 0.2, 0.1, 0.05], down) == 2
    assert stop_round([0.3, 0.2], down) is None


def test_loop_stop_settings_merge_with_the_rule_defaults_and_bad_ones_are_named():
    rules, chosen = rules_from(STOPPING, {"rule": "stabilizing", "threshold": 0.95})
    assert chosen == "stabilizing"
    assert rules["stabilizing"] == Rule("stabilizing", 0.95, 3)  # window from stopping.*
    assert rules["uncertainty"] == Rule("uncertainty", 0.05, 3)
    assert rules_from(STOPPING, "uncertainty")[1] == "uncertainty"
    assert rules_from(STOPPING, None)[1] is None
    with pytest.raises(AlrunError, match="unknown rule 'kappa'; choose stabilizing or uncertainty"):
        rules_from(STOPPING, "kappa")
    with pytest.raises(AlrunError, match=r"unknown keys \['patience'\]"):
        rules_from(STOPPING, {"rule": "stabilizing", "patience": 2})
    with pytest.raises(AlrunError, match=r"loop.stop.window \(stabilizing\)=0"):
        rules_from(STOPPING, {"rule": "stabilizing", "window": 0})
    with pytest.raises(AlrunError, match=r"stopping.uncertainty.threshold=1.5"):
        rules_from({**STOPPING, "uncertainty": {"threshold": 1.5, "window": 1}}, None)


def test_the_stop_set_is_seeded_sorted_and_outside_the_evaluation_sample():
    a = draw_stop_set(100, 30, seed=4, exclude=np.arange(10))
    assert a.tolist() == draw_stop_set(100, 30, seed=4, exclude=np.arange(10)).tolist()
    assert a.tolist() == sorted(a.tolist()) and len(set(a.tolist())) == 30
    assert a.min() >= 10
    assert len(draw_stop_set(20, 1000, seed=0)) == 20  # a small pool: all of it


def _watch(task, tmp_path: Path | None, stop: str | None = None) -> Watch:
    rules, chosen = rules_from(
        {
            "stabilizing": {"threshold": 0.5, "window": 2},
            "uncertainty": {"threshold": 0.2, "window": 1},
        },
        stop,
    )
    return Watch(task, ["a", "b"], np.arange(4), rules, chosen, state_dir=tmp_path)


def _probs(labels: list[int]) -> Predictions:
    return Predictions(np.array([[0.9, 0.1] if y == 0 else [0.2, 0.8] for y in labels]))


def test_watch_records_values_by_hand_and_a_resumed_watch_continues_the_same(tmp_path):
    rounds = [[0, 0, 1, 1], [0, 1, 1, 1], [0, 1, 1, 1], [1, 1, 1, 1]]
    w = _watch(multiclass(), None, stop="stabilizing")
    got = [w.observe(r, _probs(y), np.array(y)) for r, y in enumerate(rounds)]
    values = [rec["stabilizing"]["value"] for rec, _ in got]
    # round 1 vs 0: kappa 0.5 (by hand above); round 2 = round 1: 1.0; round 3: all 1 vs
    # (0, 1, 1, 1): po 3/4, pe = (0*1 + 4*3)/16 = 3/4 -> 0
    assert values == [None, pytest.approx(0.5), 1.0, pytest.approx(0.0)]
    assert [stop for _, stop in got] == [False, False, True, False]
    assert got[0][0]["uncertainty"]["value"] == pytest.approx((0.1 + 0.1 + 0.2 + 0.2) / 4)
    assert got[0][0]["uncertainty"]["stop"] is True  # 0.15 <= 0.2, window 1
    # a run killed after round 1's checkpoint, or during round 2 after its stop-set
    # predictions were saved but before its checkpoint: both resume after round 1
    for observed in (2, 3):
        state = tmp_path / f"killed-{observed}"
        state.mkdir()
        first = _watch(multiclass(), state, stop="stabilizing")
        recs = [
            first.observe(r, _probs(y), np.array(y))[0] for r, y in enumerate(rounds[:observed])
        ]
        rows = [{"round": r, "stopping": rec} for r, rec in enumerate(recs[:2])]
        again = _watch(multiclass(), state, stop="stabilizing")
        again.resume(rows)
        for r in (2, 3):
            assert again.observe(r, _probs(rounds[r]), np.array(rounds[r])) == got[r]


def test_watch_agreement_for_ner_is_entity_f1_of_successive_rounds():
    task = ner()
    names = ["O", "B-PER", "I-PER"]
    rules, _ = rules_from(STOPPING, None)
    w = Watch(task, names, np.arange(2), rules, None)
    first = [[np.array([1, 2, 0])], [np.array([0, 0])]]  # PER 0-2
    second = [[np.array([1, 0, 0])], [np.array([0, 1])]]  # PER 0-1, PER 1-2
    marg = [np.full((3, 3), 1 / 3), np.full((2, 3), 1 / 3)]
    w.observe(0, sequence_predictions(marg), first)
    rec, stop = w.observe(1, sequence_predictions(marg), second)
    assert rec["stabilizing"]["value"] == 0.0 and stop is False
    assert rec["uncertainty"]["value"] == pytest.approx(2 / 3)


def test_a_run_config_without_stopping_settings_composes_the_defaults():
    from alrun.config import AlrunConfig

    cfg = OmegaConf.structured(AlrunConfig)
    assert cfg.loop.stop is None and cfg.stopping.stop_set == 1000
    assert cfg.stopping.stabilizing.threshold == 0.99 and cfg.stopping.uncertainty.window == 3


def test_the_annotator_shows_the_agreement_with_last_round():
    from alrun.oracles.web import score_of

    row = {
        "test": {"accuracy": 0.9},
        "validation": {},
        "chosen": "tfidf_logreg",
        "round": 3,
        "labeled": 40,
        "stopping": {"stop_set": 9, "stabilizing": {"value": 0.97, "stop": False}},
    }
    assert score_of(row, "accuracy")["agreement"] == 0.97
    assert score_of({**row, "stopping": {}}, "accuracy")["agreement"] is None
