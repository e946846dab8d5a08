"""Strategies: hand-computed scores, and the contract every strategy must keep."""

from __future__ import annotations

import numpy as np
import pytest

from alrun.strategies import STRATEGIES, Predictions, entropy, least_confidence, margin, select

P = np.array([[0.7, 0.2, 0.1], [0.4, 0.35, 0.25], [1.0, 0.0, 0.0], [0.5, 0.5, 0.0]])


def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def test_least_confidence_by_hand():
    np.testing.assert_allclose(least_confidence(Predictions(P), rng()), [0.3, 0.6, 0.0, 0.5])


def test_margin_by_hand():
    np.testing.assert_allclose(margin(Predictions(P), rng()), [-0.5, -0.05, -1.0, 0.0])


def test_entropy_by_hand():
    def h(*ps):
        return -sum(p * np.log(p) for p in ps if p > 0)

    expected = [h(0.7, 0.2, 0.1), h(0.4, 0.35, 0.25), 0.0, np.log(2)]
    np.testing.assert_allclose(entropy(Predictions(P), rng()), expected)
    assert np.isfinite(entropy(Predictions(P), rng())).all()  # 0 log 0 handled


def test_uncertainty_order_picks_hand_chosen_items():
    # Row 3 (a coin flip between two classes) is the most uncertain by margin; row 2 the least.
    scores = margin(Predictions(P), rng())
    assert list(select(scores, 2, rng())) == [3, 1]
    assert list(select(entropy(Predictions(P), rng()), 1, rng())) == [1]


def test_select_breaks_ties_at_random_not_by_position():
    scores = np.zeros(1000)
    picked = select(scores, 10, np.random.default_rng(5))
    assert sorted(picked) != list(range(10))
    assert list(picked) == list(select(scores, 10, np.random.default_rng(5)))  # seeded


@pytest.mark.parametrize("name", STRATEGIES.names())
@pytest.mark.parametrize("k", [1, 7, 50, 60])
def test_contract(name, k):
    probs = np.random.default_rng(3).dirichlet(np.ones(4), size=50)
    scores = STRATEGIES.get(name)(Predictions(probs), rng())
    assert scores.shape == (50,) and np.isfinite(scores).all()
    batch = select(scores, k, rng())
    assert len(batch) == min(k, 50)  # exact size, or the whole pool when it runs out
    assert len(set(batch.tolist())) == len(batch)  # no duplicates
    assert batch.min() >= 0 and batch.max() < 50
    # the batch holds the top scores
    assert scores[batch].min() >= np.sort(scores)[::-1][len(batch) - 1]


def test_random_is_reproducible_and_seed_dependent():
    preds = Predictions(np.full((30, 3), 1 / 3))
    a = select(STRATEGIES.get("random")(preds, rng()), 5, rng())
    b = select(STRATEGIES.get("random")(preds, rng()), 5, rng())
    c = select(STRATEGIES.get("random")(preds, np.random.default_rng(9)), 5, rng())
    assert list(a) == list(b) and list(a) != list(c)


def test_select_nothing():
    assert len(select(np.ones(5), 0, rng())) == 0
