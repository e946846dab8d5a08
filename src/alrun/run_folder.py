"""Everything a run writes into its folder, written by one object with the loggers' shape.

`RunFolder.log_round` rewrites `rounds.jsonl` and `labeled.jsonl` and the checkpoint after
every round (atomically, in that order, so a kill leaves a consistent folder); `finish` saves
the kept model, the learning curve, `summary.json` and the final checkpoint. The row of a round
and the summary of a run are pure functions of what the loop yields.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from alrun import checkpoint
from alrun.config import result_config, to_dict
from alrun.loop import RoundResult
from alrun.models import ModelContext, save_model
from alrun.tracking import aulc, labels_to_target, plot_learning_curve, write_atomic


def round_row(res: RoundResult, pool: Any, task: Any) -> dict[str, Any]:
    """One line of `rounds.jsonl`: sizes, costs, validation, the kept model, test, timings.

    `test`: the held-out metrics, from the test split or, without one, the evaluation sample
    (`heldout` says which); `eval`: the evaluation sample's metrics with their interval."""
    sel = res.selection
    test = dict(res.test)
    heldout = test.pop("heldout", "test split")
    evaluation = test.pop("eval", None)
    return {
        "round": res.round,
        "labeled": len(res.labeled),
        "cost": task.cost(pool, res.labeled),
        "validation": sel.scores,
        "validation_method": sel.validation,
        **({"validation_loss": sel.losses} if sel.losses else {}),
        "chosen": sel.chosen,
        "why": sel.why,
        **({"tuned": sel.tuned} if sel.tuned else {}),
        "test": test,
        "heldout": heldout,
        **({"eval": evaluation} if evaluation is not None else {}),
        **({"stopping": res.stopping} if res.stopping else {}),
        "seconds": {**res.seconds, "candidates": sel.seconds},
        "queried": len(res.queried),
    }


def summarize(rows: list[dict[str, Any]], task: Any) -> dict[str, Any]:
    """`summary.json`: final and area-under-curve metrics, labels and tokens to the target."""
    xs = [r["labeled"] for r in rows]
    head = task.headline[0]
    ys = [r["test"][head] for r in rows]

    def to_target(x: list[float]) -> float | None:
        v = labels_to_target(x, ys, task.target)
        return None if math.isnan(v) else round(v, 1)

    return {
        "final/labeled": xs[-1],
        **{f"final/cost_{k}": v for k, v in rows[-1]["cost"].items()},
        **{f"final/test_{m}": rows[-1]["test"][m] for m in task.headline},
        **{f"aulc/test_{m}": aulc(xs, [r["test"][m] for r in rows]) for m in task.headline},
        f"target/{head}": task.target,  # the same keys in every run, reached or not
        "target/labels": to_target(xs),  # linear between rounds; null: never reached
        "target/tokens": to_target([r["cost"]["tokens"] for r in rows]),
        **_final_eval(rows[-1]),
        "rounds": len(rows),
        "seconds": sum(r["seconds"]["round"] for r in rows),
    }


def _final_eval(row: dict[str, Any]) -> dict[str, Any]:
    """The last round's evaluation-sample metrics and interval, when the run has a sample."""
    ev = row.get("eval")
    if not ev:
        return {}
    return {f"final/eval_{k}": v for k, v in ev.items() if k != "level"}


@dataclass
class RunFolder:
    """The run folder. `rng` is the loop's generator: each checkpoint saves its state."""

    path: Path
    task: Any
    pool: Any
    rng: np.random.Generator
    settings: dict[str, Any]  # what the results depend on (a resume must match them)
    command: list[str]  # the overrides that made the run, for the resume hint
    model_ctx: ModelContext
    model_info: dict[str, Any]  # dataset name, tokenizer: what alrun-predict needs
    title: str  # the learning curve's
    unit: str  # document | sentence
    rows: list[dict[str, Any]] = field(default_factory=list)
    labeled_round: list[int] = field(default_factory=list)  # the round each item was labelled
    last: RoundResult | None = None

    @classmethod
    def for_run(cls, cfg: DictConfig, task: Any, pool: Any, ctx: ModelContext) -> RunFolder:
        """The folder Hydra made for this job, with what it needs from the config."""
        given = list(HydraConfig.get().overrides.task)
        return cls(
            path=Path(HydraConfig.get().runtime.output_dir),
            task=task,
            pool=pool,
            rng=np.random.default_rng(cfg.seed),
            settings=result_config(to_dict(cfg)),
            command=[o for o in given if not o.startswith("resume=")],
            model_ctx=ctx,
            model_info={
                "dataset": cfg.dataset.name,
                "tokenizer": cfg.dataset.get("tokenizer") or "blank:en",
            },
            title=f"{cfg.dataset.name} · {cfg.strategy.name} · seed {cfg.seed}",
            unit=cfg.loop.unit,
        )

    def checkpoint(self, asked: bool) -> checkpoint.Checkpoint | None:
        """The folder's checkpoint (refused if its settings differ); restores rows and RNG."""
        ckpt = checkpoint.load(
            self.path, self.settings, self.command, self.task.name == "ner", asked
        )
        if ckpt is not None and not ckpt.complete:
            self.rng.bit_generator.state = ckpt.rng_state
            self.rows, self.labeled_round = ckpt.rows, ckpt.labeled_round
        return ckpt

    def summary(self) -> dict[str, Any]:
        """A complete run's summary.json."""
        return json.loads((self.path / "summary.json").read_text(encoding="utf-8"))

    def log_round(self, row: dict[str, Any], res: RoundResult) -> None:
        self.rows.append(row)
        self.last = res
        self.labeled_round += [res.round] * (len(res.labeled) - len(self.labeled_round))
        write_atomic(self.path / "rounds.jsonl", "".join(json.dumps(r) + "\n" for r in self.rows))
        write_atomic(self.path / "labeled.jsonl", self._labeled(res))
        if len(res.queried):  # the last round's checkpoint waits for the model and summary
            self._save_checkpoint(res)

    def _labeled(self, res: RoundResult) -> str:
        """labeled.jsonl: a record per labelled item in acquisition order, holding all that
        an export needs without the pool (the task's item and label record: text or tokens,
        NER on original text its sentences' text and offsets), and the round it came in."""
        pool, task = self.pool, self.task
        return "".join(
            json.dumps(
                {
                    "index": int(i),
                    "id": pool.ids[i],
                    **task.item_record(pool, i),
                    **task.label_record(y, pool.label_names),
                    "round": rd,
                }
            )
            + "\n"
            for i, y, rd in zip(res.labeled, res.labels, self.labeled_round, strict=True)
        )

    def write_eval_sample(self, idx: np.ndarray, labels: np.ndarray, drawn: np.ndarray) -> None:
        """eval_sample.jsonl: the held-out items (pool index, id, item, label), so what was
        held out can be checked against labeled.jsonl; drawn but skipped ones say so."""
        pool, task = self.pool, self.task
        label_of = dict(zip(idx.tolist(), labels, strict=True))
        lines = []
        for i in drawn.tolist():
            rec = {"index": i, "id": pool.ids[i], **task.item_record(pool, i)}
            if i in label_of:
                rec |= task.label_record(label_of[i], pool.label_names)
            else:
                rec["skipped"] = True
            lines.append(json.dumps(rec) + "\n")
        write_atomic(self.path / "eval_sample.jsonl", "".join(lines))

    def _save_checkpoint(self, res: RoundResult, complete: bool = False) -> None:
        checkpoint.save(
            self.path,
            res,
            self.rng,
            self.rows,
            self.labeled_round,
            self.settings,
            self.command,
            complete=complete,
        )

    def finish(self, summary: dict[str, Any], rows: list[dict[str, Any]]) -> None:
        """The kept model, the learning curve, summary.json, then the final checkpoint."""
        last = self.last
        assert last is not None, "finish() before any round"
        sel = last.selection
        info = {"task": self.task.name, "candidate": sel.chosen, "round": last.round}
        info |= {"labeled": len(last.labeled), **self.model_info}
        save_model(sel.model, sel.spec, self.model_ctx, self.path / "model", info)
        plot_learning_curve(
            rows,
            self.path / "learning_curve.png",
            self.title,
            metrics=self.task.headline[:2],
            unit=self.unit,
        )
        write_atomic(self.path / "summary.json", json.dumps(summary, indent=2) + "\n")
        self._save_checkpoint(last, complete=True)
