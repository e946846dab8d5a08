"""The active-learning loop: a generator of one RoundResult per round (spaCy's pattern).

The caller consumes it and does the logging and saving. Indices refer to the whole pool.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from alrun.errors import AlrunError
from alrun.oracles import Labels
from alrun.selection import Selection
from alrun.strategies import Predictions


@dataclass
class RoundResult:
    round: int
    labeled: np.ndarray  # pool indices labelled so far, in acquisition order
    labels: np.ndarray  # their labels, as the oracle gave them
    selection: Selection  # every candidate's validation score and the kept model
    test: dict[str, Any]  # the kept model's test metrics (reporting only)
    queried: np.ndarray  # pool indices picked for the next round; empty after the last
    seconds: dict[str, float]
    skipped: np.ndarray  # pool indices the oracle skipped (rejected/ignored): never asked again
    # each stopping rule's value and verdict this round (`alrun.stopping`); the run ends early
    # when the rule `loop.stop` names says stop (then `queried` is empty)
    stopping: dict[str, Any] = field(default_factory=dict)


@dataclass
class Resume:
    """Where an interrupted run stopped: after round `round`, its next batch already chosen."""

    round: int
    labeled: np.ndarray
    labels: np.ndarray
    skipped: np.ndarray
    queried: np.ndarray


def _start(
    allowed: np.ndarray,
    label: Callable[[np.ndarray], Labels],
    initial_size: int,
    budget: int,
    rng: np.random.Generator,
    initial: np.ndarray | None,
) -> Labels:
    """The first labelled set: the seed set, else random among `allowed` (the pool less any
    evaluation sample); drawn again while all are skipped."""
    if initial is not None:
        if len(initial) > budget:
            raise AlrunError(
                f"the seed set (loop.initial_from) holds {len(initial)} items, above "
                f"loop.budget={budget}; raise the budget"
            )
        got = label(np.asarray(initial, dtype=np.int64))
    elif initial_size > len(allowed):
        raise AlrunError(
            f"loop.initial_size={initial_size} exceeds the pool ({len(allowed)} items); "
            f"lower loop.initial_size to at most {len(allowed)}"
        )
    else:
        got = label(_draw(allowed, initial_size, rng))
    skipped = got.skipped
    while len(got.idx) == 0:  # every first item skipped: nothing to train on yet
        rest = np.setdiff1d(allowed, skipped)
        if len(rest) == 0:
            raise AlrunError("every item of the pool was skipped; nothing to train on")
        got = label(_draw(rest, min(initial_size, len(rest)), rng))
        skipped = np.concatenate([skipped, got.skipped])
    return Labels(got.idx, got.labels, skipped)


def _draw(allowed: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k random items of `allowed`; over the whole pool, the same draw as before `allowed`
    existed (rng.choice(n, k)), so runs without an evaluation sample are unchanged."""
    if len(allowed) and allowed[-1] == len(allowed) - 1:  # allowed == arange(n)
        return rng.choice(len(allowed), size=k, replace=False)
    return rng.choice(allowed, size=k, replace=False)


def active_learning(
    *,
    n_pool: int,
    label: Callable[[np.ndarray], Labels],
    train: Callable[[np.ndarray, np.ndarray, int], Selection],
    evaluate: Callable[[Any], dict[str, Any]],
    predict: Callable[[Selection, np.ndarray], Predictions],
    query: Callable[[Predictions, int, np.random.Generator], np.ndarray],
    initial_size: int,
    round_size: int,
    budget: int,
    rng: np.random.Generator,
    initial: np.ndarray | None = None,
    resume: Resume | None = None,
    pool_sample: int | None = None,
    held_out: np.ndarray | None = None,
    watch: Callable[[Selection, int], tuple[dict[str, Any], bool]] | None = None,
) -> Iterator[RoundResult]:
    """`initial`: the seed set's pool indices (annotations given up front, or a cold start's
    picks), else random. `query(predictions, k, rng)`: positions of the next batch among the
    scored items (`strategies.top_k` turns a scoring strategy into one).

    The oracle may skip items (a person's reject or ignore): they leave the pool unlabelled
    and do not count towards the budget. `resume` continues a run after its last finished
    round (`rng` must hold the state it had then). `pool_sample`: score at most this many
    random unlabelled items per round (huge pools); None scores them all. `held_out`: pool
    indices never queried nor trained on (the evaluation sample). `watch(selection, round)`:
    the stopping rules' record of the round and whether to stop there (no next batch).
    """
    held = np.empty(0, dtype=np.int64) if held_out is None else np.asarray(held_out, np.int64)
    if resume is None:
        allowed = np.setdiff1d(np.arange(n_pool), held)
        first = _start(allowed, label, initial_size, budget, rng, initial)
        labeled, labels, skipped, start = first.idx, first.labels, first.skipped, 0
        queried = np.empty(0, dtype=np.int64)  # the first round trains on the seed set
    else:
        labeled, labels, skipped = resume.labeled, resume.labels, resume.skipped
        queried, start = resume.queried, resume.round + 1
    for r in range(start, n_pool):
        if len(queried):
            got = label(queried)
            labeled = np.concatenate([labeled, got.idx])
            labels = np.concatenate([labels, got.labels])
            skipped = np.concatenate([skipped, got.skipped])
        t = {"start": time.perf_counter()}
        chosen = train(labeled, labels, r)
        t["train"] = time.perf_counter()
        test = evaluate(chosen.model)
        t["test"] = time.perf_counter()
        stopping, stop = ({}, False) if watch is None else watch(chosen, r)
        t["stopping"] = time.perf_counter()
        unlabeled = np.setdiff1d(np.arange(n_pool), np.concatenate([labeled, skipped, held]))
        k = 0 if stop else min(round_size, budget - len(labeled), len(unlabeled))
        queried = _next_batch(chosen, unlabeled, k, predict, query, rng, pool_sample)
        t["query"] = time.perf_counter()
        seconds = _durations(t)
        yield RoundResult(r, labeled, labels, chosen, test, queried, seconds, skipped, stopping)
        if k <= 0:
            return


def _durations(marks: dict[str, float]) -> dict[str, float]:
    """Each phase's seconds from the clock marks taken at its end (`start` first), and the
    whole round's."""
    names = list(marks)
    out = {b: marks[b] - marks[a] for a, b in itertools.pairwise(names)}
    return {**out, "round": marks[names[-1]] - marks["start"]}


def _next_batch(
    chosen: Selection,
    unlabeled: np.ndarray,
    k: int,
    predict: Callable[[Selection, np.ndarray], Predictions],
    query: Callable[[Predictions, int, np.random.Generator], np.ndarray],
    rng: np.random.Generator,
    pool_sample: int | None,
) -> np.ndarray:
    """The next k pool indices, scored over the unlabelled pool or a random sample of it."""
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    scored = unlabeled
    if pool_sample is not None and len(unlabeled) > max(pool_sample, k):
        scored = np.sort(rng.choice(unlabeled, size=max(pool_sample, k), replace=False))
    return scored[query(predict(chosen, scored), k, rng)]
