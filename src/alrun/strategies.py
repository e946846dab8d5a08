"""Query strategies: pure functions of predictions (+ an explicit RNG) -> informativeness.

Higher score = more worth labelling. `select` turns scores into a batch of pool indices.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from alrun.registry import Registry


@dataclass
class Predictions:
    """Class probabilities of a model for N items: probs[N, C], rows sum to 1."""

    probs: np.ndarray


Strategy = Callable[..., np.ndarray]
STRATEGIES: Registry[Strategy] = Registry("strategy", "strategy")


@STRATEGIES.register
def random(preds: Predictions, rng: np.random.Generator) -> np.ndarray:
    """Passive baseline: uniform scores, so the batch is a uniform sample."""
    return rng.random(len(preds.probs))


@STRATEGIES.register
def least_confidence(preds: Predictions, rng: np.random.Generator) -> np.ndarray:
    """1 - p(top class)."""
    return 1.0 - preds.probs.max(axis=1)


@STRATEGIES.register
def margin(preds: Predictions, rng: np.random.Generator) -> np.ndarray:
    """-(p1 - p2): a small gap between the two best classes is informative."""
    if preds.probs.shape[1] < 2:
        return np.zeros(len(preds.probs))
    top2 = np.sort(preds.probs, axis=1)[:, -2:]
    return -(top2[:, 1] - top2[:, 0])


@STRATEGIES.register
def entropy(preds: Predictions, rng: np.random.Generator) -> np.ndarray:
    """Shannon entropy of the class distribution (0 log 0 = 0)."""
    p = preds.probs
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p), 0.0)
    return -terms.sum(axis=1)


def select(scores: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Positions of the k highest scores; ties broken at random (not by pool order)."""
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    k = min(k, len(scores))
    tiebreak = rng.random(len(scores))
    order = np.lexsort((tiebreak, -np.asarray(scores, dtype=np.float64)))
    return order[:k].astype(np.int64)
