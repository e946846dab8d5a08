"""What the loop asks of the candidates each round: train them all and keep the best, score
the kept model on the test set, predict the pool for the query strategy."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
from omegaconf import DictConfig

from alrun.models import ModelContext
from alrun.progress import progress_bar
from alrun.selection import Selection, select_best
from alrun.settings import RunParts
from alrun.strategies import Predictions


def pool_features(cfg: DictConfig, ctx: ModelContext, pool: Any) -> np.ndarray:
    """The pool's document vectors (`features`), for cold start and diversity strategies."""
    from alrun.models.embeddings import embedding_table

    f = cfg.features
    table = embedding_table(ctx, f.encoder, f.max_length, f.max_windows, f.batch_size, f.precision)
    return table(pool.texts)


@dataclass
class Candidates:
    """The three callbacks `loop.active_learning` takes, over one run's pool and test set."""

    parts: RunParts
    pool: Any
    test: Any
    ctx: ModelContext  # the run's; each round gets its own seed
    selection: DictConfig  # cfg.selection
    features: np.ndarray | None  # the pool's document vectors, when a strategy needs them
    rows: list[dict[str, Any]]  # the rows logged so far (last round's kept model)

    def __post_init__(self) -> None:
        self.test_inputs = self.parts.task.inputs(self.test, range(len(self.test)))

    def train(self, labeled: np.ndarray, labels: np.ndarray, r: int) -> Selection:
        seed = int(np.random.default_rng([self.ctx.seed, r]).integers(2**31 - 1))
        task = self.parts.task
        return select_best(
            task,
            self.parts.candidates,
            dataclasses.replace(self.ctx, seed=seed),
            task.inputs(self.pool, labeled),
            labels,
            self.selection,
            spaces=self.parts.spaces,
            refit_all=self.parts.committee,
            incumbent=self.rows[-1]["chosen"] if self.rows else None,  # last round's kept one
        )

    def evaluate(self, model: Any) -> dict[str, Any]:
        task, inputs = self.parts.task, self.test_inputs
        pred = task.decode(task.predict(model, inputs), inputs)
        return task.metrics(self.test.labels, pred, self.test.label_names)

    def predict(self, sel: Selection, idx: np.ndarray) -> Predictions:
        task, committee = self.parts.task, self.parts.committee
        inputs = task.inputs(self.pool, idx)
        members = dict(sel.members) if committee else {}
        with progress_bar(f"scoring {len(idx)} pool items", len(members) + 1) as bar:
            preds = {}
            for key, model in members.items():
                preds[key] = task.predict(model, inputs)
                bar(1)
            out = preds[sel.chosen] if sel.chosen in preds else task.predict(sel.model, inputs)
            bar(1)
        if committee:
            out.committee = list(preds.values())
        if self.features is not None:
            out.features = self.features[idx]
        return out
