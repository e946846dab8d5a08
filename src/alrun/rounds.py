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
from alrun.stopping import Watch
from alrun.strategies import Predictions


def pool_features(cfg: DictConfig, ctx: ModelContext, pool: Any) -> np.ndarray:
    """The pool's document vectors (`features`), for cold start and diversity strategies."""
    from alrun.models.embeddings import embedding_table

    f = cfg.features
    table = embedding_table(ctx, f.encoder, f.max_length, f.max_windows, f.batch_size, f.precision)
    return table(pool.texts)


def round_seed(seed: int, r: int) -> int:
    """Round r's training seed, derived from the run's (a refit of that round uses it too)."""
    return int(np.random.default_rng([seed, r]).integers(2**31 - 1))


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
    evalset: Any = None  # the labelled evaluation sample (eval.size), when there is one
    eval_cfg: DictConfig | None = None  # cfg.eval: the interval's level and resamples
    stops: Watch | None = None  # the stopping rules and their stop set (stopping.stop_set)

    def __post_init__(self) -> None:
        task = self.parts.task
        self.test_inputs = (
            None if self.test is None else task.inputs(self.test, range(len(self.test)))
        )
        self.eval_inputs = (
            None if self.evalset is None else task.inputs(self.evalset, range(len(self.evalset)))
        )
        self.stop_inputs = None if self.stops is None else task.inputs(self.pool, self.stops.items)

    def train(self, labeled: np.ndarray, labels: np.ndarray, r: int) -> Selection:
        seed = round_seed(self.ctx.seed, r)
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
        """The kept model on held-out data: the test split's metrics (reporting only) and the
        evaluation sample's with their bootstrap interval (`eval`); without a test split the
        sample's point metrics stand in for it (`heldout` names the source)."""
        out: dict[str, Any] = {}
        task = self.parts.task
        if self.test is not None:
            pred = self._predict(model, self.test_inputs)
            out = task.metrics(self.test.labels, pred, self.test.label_names)
        if self.evalset is not None:
            from alrun.evaluation import eval_report

            data, cfg = self.evalset, self.eval_cfg
            pred = self._predict(model, self.eval_inputs)
            point = task.metrics(data.labels, pred, data.label_names)
            rng = np.random.default_rng([self.ctx.seed, 13, len(self.rows)])
            level, n_boot = (0.95, 1000) if cfg is None else (cfg.level, cfg.bootstrap)
            report = eval_report(
                task.name, data.labels, pred, data.label_names, point, rng, n_boot, level
            )
            if self.test is None:
                out = {**point, "heldout": f"evaluation sample ({len(data)} items)"}
            out["eval"] = report
        return out

    def watch(self, sel: Selection, r: int) -> tuple[dict[str, Any], bool]:
        """The kept model on the stop set: each stopping rule's value this round, and whether
        the rule `loop.stop` names ends the run here."""
        assert self.stops is not None, "watch() without stopping rules"
        task, inputs = self.parts.task, self.stop_inputs
        preds = task.predict(sel.model, inputs)
        return self.stops.observe(r, preds, task.decode(preds, inputs))

    def _predict(self, model: Any, inputs: Any) -> Any:
        """The kept model's decoded predictions (labels, or tag ids per sentence)."""
        task = self.parts.task
        return task.decode(task.predict(model, inputs), inputs)

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
