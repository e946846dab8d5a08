"""What an oracle is: `label(idx)` plus hooks the runner always calls (no-ops by default).

The simulated oracle reveals gold labels; the web one asks a person. Indices an oracle skipped
(a person's reject or ignore) leave the pool without a label.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class OracleContext:
    pool: Any  # TextDataset | SeqDataset
    task: Any  # the Task object (multiclass | ner)
    run_dir: Path
    config: dict[str, Any]  # the run's resolved config (the web oracle's resume check)


@dataclass
class Labels:
    """An oracle's answer to one query: `labels[k]` belongs to `idx[k]`."""

    idx: np.ndarray
    labels: np.ndarray
    skipped: np.ndarray


class Oracle:
    """Base of every oracle: the runner calls each hook; override those that matter."""

    def label(self, idx: np.ndarray) -> Labels:
        raise NotImplementedError

    def label_eval(self, idx: np.ndarray) -> Labels:
        """The evaluation sample's labels (eval.size), asked before the first round; an oracle
        that shows its items (the web one) marks them apart and without pre-annotations."""
        return self.label(idx)

    def resume_at(self, rnd: int, labeled: int) -> None:
        """A resumed run continues after round `rnd - 1` with `labeled` items."""

    def round_fields(self, rnd: int) -> dict[str, Any]:
        """Fields the oracle adds to round `rnd`'s row (the web one: annotator agreement)."""
        return {}

    def summary_fields(self) -> dict[str, Any]:
        """Flat `a/b` keys the oracle adds to the run's summary."""
        return {}

    def round_done(self, row: dict[str, Any], model: Any) -> None:
        """A round was trained and recorded; `model` is the kept one."""

    def close(self, summary: dict[str, Any] | None = None) -> None:
        """The run ended (`summary`) or failed (None); release what the oracle holds."""
