"""The evaluation sample: held-out labels for a pool without a gold test split.

Items chosen by the query strategy are where the model is unsure, so metrics on them are
biased low; a test set must be a uniform random sample of the pool, drawn before any model
exists, labelled by the oracle, and kept out of training, candidate selection and tuning.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from alrun.errors import AlrunError
from alrun.oracles import Oracle


def draw(n_pool: int, size: int, seed: int, exclude: np.ndarray | None = None) -> np.ndarray:
    """`size` pool indices, uniformly at random from an RNG of their own (the run's seed),
    sorted; `exclude`: items that cannot be in it (a seed set labelled up front)."""
    allowed = np.setdiff1d(np.arange(n_pool), [] if exclude is None else exclude)
    if size >= len(allowed):
        raise AlrunError(
            f"eval.size={size} leaves nothing to learn from: the pool holds {len(allowed)} items"
            + (" besides the seed set" if exclude is not None and len(exclude) else "")
            + f"; lower eval.size (e.g. eval.size={max(1, len(allowed) // 10)})"
        )
    rng = np.random.default_rng([seed, 11])
    return np.sort(rng.choice(allowed, size=size, replace=False))


@dataclass
class EvalSample:
    """The labelled evaluation sample: `data[k]` is pool item `idx[k]` with the oracle's label;
    `drawn`: every drawn index (skipped ones included), all kept out of the loop."""

    idx: np.ndarray
    data: Any  # TextDataset | SeqDataset, gold
    drawn: np.ndarray


def label_sample(oracle: Oracle, pool: Any, drawn: np.ndarray) -> EvalSample:
    """Ask the oracle for the drawn items; a skipped one (reject, ignore) leaves the sample."""
    got = oracle.label_eval(drawn)
    if len(got.idx) == 0:
        raise AlrunError(
            "every item of the evaluation sample was skipped: no held-out labels; run again "
            "and label them (or set eval.size=0 and give dataset.test_path)"
        )
    data = pool.subset(got.idx)
    data.labels, data.gold = got.labels, True  # class ids, or per-item tag arrays (object)
    # what the oracle served counts as held out too (a resumed web run serves its saved batch)
    held = np.union1d(np.asarray(drawn, np.int64), np.concatenate([got.idx, got.skipped]))
    return EvalSample(np.asarray(got.idx, dtype=np.int64), data, held.astype(np.int64))
