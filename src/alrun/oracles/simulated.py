"""The simulated oracle: answers from the gold labels the loop itself never reads."""

from __future__ import annotations

from typing import Any

import numpy as np

from alrun.errors import AlrunError
from alrun.oracles.base import Labels, Oracle

NO_GOLD = (
    "oracle=simulated answers from gold labels, and this pool has none (text only: "
    "dataset=raw_text, or dataset.label_field=null). Label it yourself with oracle=web (a "
    "person in the browser), or give a labelled file (dataset=custom_file with "
    "dataset.label_field=COLUMN, dataset=prodigy, or CoNLL)"
)


class SimulatedOracle(Oracle):
    def __init__(self, pool: Any) -> None:
        if not getattr(pool, "gold", True):
            raise AlrunError(NO_GOLD)
        self._gold = pool.labels

    def label(self, idx: np.ndarray) -> Labels:
        idx = np.asarray(idx, dtype=np.int64)
        return Labels(idx, self._gold[idx], np.empty(0, dtype=np.int64))
