"""Strategies: hand-computed scores, and the contract every strategy must keep."""

from __future__ import annotations

import numpy as np
import pytest
from omegaconf import OmegaConf

from alrun.config import CONF_DIR
from alrun.strategies import (
    BATCH,
    STRATEGIES,
    Predictions,
    cold_start,
    diverse_margin,
    entropy,
    least_confidence,
    margin,
    mnlp,
    select,
    sequence_predictions,
    token_entropy,
)

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


def _preds(task: str) -> Predictions:
    """50 random items: class distributions, or tag marginals of sentences of 1-12 tokens;
    with a committee of three such members for query-by-committee."""
    g = np.random.default_rng(3)
    if task == "multiclass":
        members = [Predictions(g.dirichlet(np.ones(4), size=50)) for _ in range(3)]
    else:
        lengths = g.integers(1, 13, size=50)
        members = [
            sequence_predictions([g.dirichlet(np.ones(5), size=n) for n in lengths])
            for _ in range(3)
        ]
    out = members[0]
    out.committee = members
    out.features = g.normal(size=(50, 8))
    return out


CASES = [
    (name, task)
    for name in STRATEGIES.names()
    for task in OmegaConf.load(CONF_DIR / "strategy" / f"{name}.yaml").tasks
]


@pytest.mark.parametrize(("name", "task"), CASES)
@pytest.mark.parametrize("k", [1, 7, 50, 60])
def test_contract(name, task, k):
    if name in BATCH:  # chooses the batch itself: positions, most wanted first
        batch = STRATEGIES.get(name)(_preds(task), rng(), k=k)
        assert len(batch) == min(k, 50) and len(set(batch.tolist())) == len(batch)
        assert batch.min() >= 0 and batch.max() < 50
        return
    scores = STRATEGIES.get(name)(_preds(task), rng())
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


# --------------------------------------------------------------------------- sequences
# Two sentences, 3 tags. Sentence A (2 tokens) is sure of token 1, torn on token 2;
# sentence B (3 tokens) is fairly sure everywhere.
A = np.array([[0.9, 0.05, 0.05], [0.5, 0.3, 0.2]])
B = np.array([[0.8, 0.1, 0.1], [0.8, 0.1, 0.1], [0.7, 0.2, 0.1]])
SEQ = sequence_predictions([A, B])


def h(row):
    return -sum(p * np.log(p) for p in row if p > 0)


def test_sequence_padding_and_mask():
    assert SEQ.probs.shape == (2, 3, 3) and SEQ.mask.tolist() == [[1, 1, 0], [1, 1, 1]]
    np.testing.assert_allclose(SEQ.probs[0, 2], 0)  # padding carries no probability


def test_sequence_least_confidence_from_marginals_by_hand():
    # no model sequence probability: P(best) = product of the max marginals
    np.testing.assert_allclose(least_confidence(SEQ, rng()), [1 - 0.9 * 0.5, 1 - 0.8 * 0.8 * 0.7])


def test_sequence_least_confidence_uses_the_models_sequence_probability():
    with_lp = sequence_predictions([A, B], seq_logprob=[np.log(0.6), np.log(0.2)])
    np.testing.assert_allclose(least_confidence(with_lp, rng()), [0.4, 0.8])


def test_mnlp_by_hand_normalises_by_length():
    expected = [-(np.log(0.9) + np.log(0.5)) / 2, -(2 * np.log(0.8) + np.log(0.7)) / 3]
    np.testing.assert_allclose(mnlp(SEQ, rng()), expected)
    # least confidence prefers the longer B (0.552 > 0.55); MNLP prefers the torn A
    assert least_confidence(SEQ, rng()).argmax() == 1 and mnlp(SEQ, rng()).argmax() == 0
    with_lp = sequence_predictions([A, B], seq_logprob=[np.log(0.6), np.log(0.2)])
    np.testing.assert_allclose(mnlp(with_lp, rng()), [-np.log(0.6) / 2, -np.log(0.2) / 3])


@pytest.mark.parametrize(
    ("reduction", "expected"),
    [
        ("mean", [(h(A[0]) + h(A[1])) / 2, (2 * h(B[0]) + h(B[2])) / 3]),
        ("max", [h(A[1]), h(B[2])]),
        ("sum", [h(A[0]) + h(A[1]), 2 * h(B[0]) + h(B[2])]),
    ],
)
def test_token_entropy_reductions_by_hand(reduction, expected):
    np.testing.assert_allclose(token_entropy(SEQ, rng(), reduction=reduction), expected)


def test_token_entropy_rejects_unknown_reduction():
    with pytest.raises(ValueError, match="reduction='median'"):
        token_entropy(SEQ, rng(), reduction="median")


def _onehot(labels: list[int], n: int = 3) -> np.ndarray:
    return np.eye(n)[labels]


def test_committee_vote_entropy_by_hand():
    """Three members vote on three documents: unanimous, 2-1, all different. One-hot members
    make the tie-break term (1e-3 x entropy of the mean) equal the vote entropy itself."""
    members = [
        Predictions(_onehot([0, 0, 0])),
        Predictions(_onehot([0, 1, 1])),
        Predictions(_onehot([0, 0, 2])),
    ]
    preds = Predictions(members[0].probs, committee=members)
    ve = [0.0, -(2 / 3 * np.log(2 / 3) + 1 / 3 * np.log(1 / 3)), np.log(3)]
    scores = STRATEGIES.get("committee_vote_entropy")(preds, rng())
    assert scores == pytest.approx(np.array(ve) * 1.001)


def test_committee_ties_break_on_the_mean_distribution():
    """Same votes (all agree), but the members are less sure about item 1."""
    a = Predictions(np.array([[0.9, 0.1], [0.6, 0.4]]))
    b = Predictions(np.array([[0.95, 0.05], [0.55, 0.45]]))
    scores = STRATEGIES.get("committee_vote_entropy")(Predictions(a.probs, committee=[a, b]), rng())
    assert scores[0] < scores[1] < 1e-3


def test_committee_vote_entropy_on_sequences_by_hand():
    """Two members tag one 3-token sentence (+1 padding position): they split on token 2
    only, so the mean token vote entropy is ln 2 / 3; padding never counts."""
    m1 = sequence_predictions([_onehot([0, 1, 2])], best=[np.array([0, 1, 2])])
    m2 = sequence_predictions([_onehot([0, 2, 2])], best=[np.array([0, 2, 2])])
    short = sequence_predictions([_onehot([0, 0, 0, 0])[:1]])  # a second, 1-token item
    both = [
        sequence_predictions([m.probs[0], short.probs[0, :1]], best=[m.best[0], np.array([0])])
        for m in (m1, m2)
    ]
    preds = Predictions(both[0].probs, both[0].mask, committee=both)
    scores = STRATEGIES.get("committee_vote_entropy")(preds, rng())
    assert scores == pytest.approx([np.log(2) / 3 * 1.001, 0.0])


def test_committee_needs_two_members():
    p = Predictions(_onehot([0, 1]))
    with pytest.raises(ValueError, match="at least 2 candidates"):
        STRATEGIES.get("committee_vote_entropy")(Predictions(p.probs, committee=[p]), rng())


BLOBS = np.array(
    [
        # blob A: a dense centre (0, 0) and four points 0.1 from it; blob B likewise at (5, 5)
        *[[0, 0], [0.1, 0], [-0.1, 0], [0, 0.1], [0, -0.1]],
        *[[5, 5], [5.1, 5], [4.9, 5], [5, 5.1], [5, 4.9]],
        *[[0, 9], [0.2, 9]],  # blob C: two points at (0, 9)
    ],
    dtype=float,
)


def test_cold_start_kmeans_and_typiclust_cover_the_blobs_by_hand():
    for method in ("kmeans", "typiclust"):
        picks = cold_start(BLOBS, 3, rng(), method)
        blobs = sorted({0 if i < 5 else 1 if i < 10 else 2 for i in picks.tolist()})
        assert blobs == [0, 1, 2], method  # one item from each blob
    # typiclust takes the densest item of each blob: the centres (0, 0) and (5, 5); in the
    # two-point blob the first
    assert sorted(cold_start(BLOBS, 3, rng(), "typiclust").tolist()) == [0, 5, 10]
    assert len(set(cold_start(BLOBS, 3, rng(), "random").tolist())) == 3
    a, b = cold_start(BLOBS, 2, rng(), "kmeans"), cold_start(BLOBS, 2, rng(), "kmeans")
    np.testing.assert_array_equal(a, b)  # the explicit RNG makes it reproducible
    with pytest.raises(ValueError, match="unknown cold start"):
        cold_start(BLOBS, 2, rng(), "farthest")


def test_diverse_margin_buys_no_near_copies_by_hand():
    # items 0-3: near-copies, the most uncertain (margin 0.0-0.03); items 4-5 elsewhere,
    # less uncertain (margin 0.3); item 6 certain. Plain margin takes two near-copies.
    probs = np.array(
        [
            [0.5, 0.5],
            [0.51, 0.49],
            [0.505, 0.495],
            [0.515, 0.485],
            [0.65, 0.35],
            [0.65, 0.35],
            [1, 0],
        ]
    )
    feats = np.array([[0, 0], [0, 0.01], [0.01, 0], [0.01, 0.01], [9, 9], [9, 9.1], [-9, 0]])
    preds = Predictions(probs, features=feats)
    assert set(select(margin(preds, rng()), 2, rng()).tolist()) <= {0, 1, 2, 3}
    batch = diverse_margin(preds, rng(), k=2, beta=3)  # the 6 most uncertain, 2 clusters
    assert len(batch) == 2 and {int(batch[0]) < 4, int(batch[1]) < 4} == {True, False}
    assert int(batch[0]) < 4  # most uncertain first
    with pytest.raises(ValueError, match="document vectors"):
        diverse_margin(Predictions(probs), rng(), k=2)
