"""minilm_token_cls batches chunks of similar length: training batches grouped by length in a
random, seeded order; prediction batches longest first, results back in the input's order."""

from __future__ import annotations

import numpy as np

from alrun.models.token_cls import length_batches, sorted_batches

LENGTHS = np.array([5, 1, 9, 3, 7, 2, 8, 4, 6, 0])


def padding(lengths: np.ndarray, batches: list[np.ndarray]) -> int:
    return sum(int(lengths[b].max() * len(b) - lengths[b].sum()) for b in batches)


def test_training_batches_group_similar_lengths_in_a_seeded_random_order():
    orders = set()
    for seed in range(8):
        batches = length_batches(LENGTHS, 3, np.random.default_rng(seed))
        assert sorted(np.concatenate(batches).tolist()) == list(range(10))  # each chunk once
        groups = sorted(sorted(LENGTHS[b].tolist()) for b in batches)
        assert groups == [[0], [1, 2, 3], [4, 5, 6], [7, 8, 9]]
        assert padding(LENGTHS, batches) == 9  # 2 + 1 + 0 in each full batch
        again = length_batches(LENGTHS, 3, np.random.default_rng(seed))
        assert [b.tolist() for b in again] == [b.tolist() for b in batches]  # reproducible
        orders.add(tuple(int(LENGTHS[b].max()) for b in batches))
    assert len(orders) > 1  # the order of the batches is shuffled


def test_lengths_are_grouped_within_pools_of_batches_and_ties_stay_random():
    lengths = np.arange(8)
    rng = np.random.default_rng(3)
    batches = length_batches(lengths, 2, rng, pool=2)  # two pools of 4 shuffled chunks
    pools = np.random.default_rng(3).permutation(8).reshape(2, 4)
    want = [sorted(p.tolist())[i : i + 2] for p in pools for i in (0, 2)]  # 2 lowest, 2 highest
    assert sorted(sorted(b.tolist()) for b in batches) == sorted(want)
    same = np.full(8, 4)
    picks = {tuple(sorted(length_batches(same, 2, np.random.default_rng(s))[0])) for s in range(8)}
    assert len(picks) > 1  # equal lengths: which chunks share a batch is still random


def test_prediction_batches_are_sorted_longest_first():
    batches = sorted_batches([3, 1, 2, 5, 2], 2)
    assert [b.tolist() for b in batches] == [[3, 0], [2, 4], [1]]  # ties in input order
    assert sorted_batches([], 64) == []
