"""Oracles answer label queries: the simulated one reveals gold labels, the web one asks a person.

An oracle's `label(idx)` returns the indices it labelled and their labels; indices it skipped
(a person's reject or ignore) leave the pool without a label. `round_done` and `close` are
optional hooks the runner calls after each trained round and at the end.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from alrun.registry import Registry


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


class SimulatedOracle:
    """Answers from the gold labels the loop itself never reads."""

    def __init__(self, pool: Any) -> None:
        self._gold = pool.labels

    def label(self, idx: np.ndarray) -> Labels:
        idx = np.asarray(idx, dtype=np.int64)
        return Labels(idx, self._gold[idx], np.empty(0, dtype=np.int64))


ORACLES: Registry = Registry("oracle", "oracle")


@ORACLES.register
def simulated(ctx: OracleContext) -> SimulatedOracle:
    return SimulatedOracle(ctx.pool)


@ORACLES.register
def web(
    ctx: OracleContext,
    host: str = "127.0.0.1",
    port: int = 8080,
    db: str | None = None,
    token: str | None = None,
    user: str | None = None,
    lease_seconds: float = 120.0,
    linger_seconds: float = 3.0,
) -> Any:
    from alrun.web.oracle import WebOracle  # the server and SQLAlchemy only when asked for

    return WebOracle(
        ctx,
        host=host,
        port=port,
        db=db,
        token=token,
        user=user,
        lease_seconds=lease_seconds,
        linger_seconds=linger_seconds,
    )
