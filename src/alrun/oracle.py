"""Oracles answer label queries. The simulated one reveals gold labels; a person plugs in here."""

from __future__ import annotations

import numpy as np

from alrun.data import TextDataset
from alrun.registry import Registry


class SimulatedOracle:
    """Answers from the gold labels the loop itself never reads."""

    def __init__(self, pool: TextDataset) -> None:
        self._gold = pool.labels

    def label(self, idx: np.ndarray) -> np.ndarray:
        return self._gold[np.asarray(idx, dtype=np.int64)]


ORACLES: Registry = Registry("oracle", "oracle")


@ORACLES.register
def simulated(pool: TextDataset) -> SimulatedOracle:
    return SimulatedOracle(pool)
