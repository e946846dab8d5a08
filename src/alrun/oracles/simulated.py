"""The simulated oracle: answers from the gold labels the loop itself never reads."""

from __future__ import annotations

from typing import Any

import numpy as np

from alrun.oracles.base import Labels, Oracle


class SimulatedOracle(Oracle):
    def __init__(self, pool: Any) -> None:
        self._gold = pool.labels

    def label(self, idx: np.ndarray) -> Labels:
        idx = np.asarray(idx, dtype=np.int64)
        return Labels(idx, self._gold[idx], np.empty(0, dtype=np.int64))
