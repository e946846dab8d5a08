"""`alrun`: compose the config with Hydra, build the parts by name, consume the loop."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import sys
from functools import partial
from importlib.metadata import version
from pathlib import Path
from typing import Any

import hydra
import numpy as np
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from alrun import checkpoint
from alrun.config import CONF_DIR, check, register_schema, result_config, to_dict
from alrun.data import Splits, load_splits, load_token_splits, seed_from_prodigy
from alrun.errors import AlrunError
from alrun.loop import RoundResult, active_learning
from alrun.models import MODELS, ModelContext, save_model
from alrun.oracle import ORACLES, OracleContext
from alrun.progress import progress_bar
from alrun.selection import Selection, select_best
from alrun.strategies import COMMITTEE, FEATURES, STRATEGIES, Predictions, as_query, cold_start
from alrun.tasks import TASKS
from alrun.tracking import LOGGERS, aulc, labels_to_target, plot_learning_curve, write_atomic

log = logging.getLogger("alrun")


def _params(node: DictConfig, drop: tuple[str, ...] = ("name",)) -> dict[str, Any]:
    return {k: v for k, v in to_dict(node).items() if k not in drop}


def build_parts(cfg: DictConfig) -> dict[str, Any]:
    """Everything selected by name, checked before any data is read or model trained."""
    check(cfg)
    TASKS.check_params(cfg.task.name, _params(cfg.task), "task")
    STRATEGIES.check_params(
        cfg.strategy.name, _params(cfg.strategy, ("name", "tasks")), "strategy", positional=2
    )
    spaces: dict[str, dict[str, Any]] = {}
    for key, spec in cfg.models.items():
        MODELS.check_params(
            spec.name, _params(spec, ("name", "tasks", "search")), f"models.{key}", positional=1
        )
        if spec.get("search"):
            spaces[key] = _check_space(key, spec)
        if "precision" in spec:  # an embedding candidate: a bad precision fails now, not later
            _check_precision(f"models.{key}.precision", spec.precision)
    ORACLES.check_params(cfg.oracle.name, _params(cfg.oracle), "oracle", positional=1)
    if cfg.oracle.name == "web":
        from alrun.web.oracle import check_access

        check_access(cfg.oracle.host, cfg.oracle.get("token"))
    LOGGERS.check_params(cfg.logger.name, _params(cfg.logger, ("name", "group")), "logger")
    task = TASKS.get(cfg.task.name)(**_params(cfg.task))
    strategy = partial(
        STRATEGIES.get(cfg.strategy.name), **_params(cfg.strategy, ("name", "tasks"))
    )
    features = cfg.strategy.name in FEATURES or cfg.loop.initial_strategy != "random"
    _check_precision("features.precision", cfg.features.precision)
    committee = cfg.strategy.name in COMMITTEE
    if committee and len(cfg.models) < 2:
        raise AlrunError(
            f"strategy {cfg.strategy.name!r} is a query-by-committee: it needs at least 2 "
            f"candidates, got {list(cfg.models)}; e.g. "
            + ("'candidates=[crf_ner,spacy_ner]'" if task.name == "ner" else "candidates=default")
        )
    _try_strategy(strategy, task.name, cfg.strategy.name)
    return {
        "task": task,
        "query": as_query(cfg.strategy.name, strategy),
        "features": features,
        "candidates": {key: _params(spec, ("tasks", "search")) for key, spec in cfg.models.items()},
        "spaces": spaces,
        "committee": committee,
    }


def _check_space(key: str, spec: DictConfig) -> dict[str, Any]:
    """A model file's `search:` block: known parameters, Optuna distribution types."""
    space = to_dict(spec.search)
    MODELS.check_params(spec.name, dict.fromkeys(space), f"models.{key}.search", positional=1)
    for name, dist in space.items():
        where = f"models.{key}.search.{name}"
        kind = dist.get("type") if isinstance(dist, dict) else None
        need = {"categorical": ("choices",), "int": ("low", "high"), "float": ("low", "high")}
        if kind not in need or any(k not in dist for k in need[kind]):
            raise AlrunError(
                f"{where}={dist}: give {{type: int|float, low: .., high: .., log: bool}} "
                "or {type: categorical, choices: [..]}"
            )
    return space


def _check_precision(key: str, precision: str) -> None:
    from alrun.models.embeddings import PRECISIONS

    if precision not in PRECISIONS:
        raise AlrunError(f"{key}={precision!r}: choose one of {', '.join(PRECISIONS)}")


def _try_strategy(strategy: Any, task: str, name: str) -> None:
    """Run the strategy once on made-up predictions so a bad parameter fails at start-up."""
    probs = np.full((2, 3, 3), 1 / 3) if task == "ner" else np.full((2, 3), 1 / 3)
    mask = np.ones((2, 3), dtype=bool) if task == "ner" else None
    members = [Predictions(probs, mask), Predictions(probs, mask)]
    feats = np.eye(2, 3)
    try:
        strategy(
            Predictions(probs, mask, committee=members, features=feats), np.random.default_rng(0)
        )
    except (ValueError, TypeError) as e:
        raise AlrunError(f"strategy {name!r}: {e}") from e


def _run_identity(cfg: DictConfig) -> tuple[Path, str | None, str]:
    hc = HydraConfig.get()
    group = cfg.logger.get("group")
    if group is None and hc.mode == RunMode.MULTIRUN:
        sweep = Path(hc.sweep.dir)
        group = f"{sweep.parent.name}_{sweep.name}"  # one W&B group per sweep
    return Path(hc.runtime.output_dir), group, hc.job.override_dirname or "default"


def load_data(cfg: DictConfig) -> tuple[Splits, np.ndarray | None]:
    """The pool and test split, and the seed set's pool indices when annotations are given."""
    if cfg.task.name == "ner":
        splits = load_token_splits(cfg, cfg.dataset, cfg.seed, cfg.loop.unit)
    else:
        splits = load_splits(cfg, cfg.dataset, cfg.seed)
    if cfg.loop.initial_from:
        return seed_from_prodigy(cfg, splits)
    return splits, None


def _round_row(res: RoundResult, splits: Splits, task: Any) -> dict[str, Any]:
    sel = res.selection
    return {
        "round": res.round,
        "labeled": len(res.labeled),
        "cost": task.cost(splits.pool, res.labeled),
        "validation": sel.scores,
        "validation_method": sel.validation,
        **({"validation_loss": sel.losses} if sel.losses else {}),
        "chosen": sel.chosen,
        "why": sel.why,
        **({"tuned": sel.tuned} if sel.tuned else {}),
        "test": res.test,
        "seconds": {**res.seconds, "candidates": sel.seconds},
        "queried": len(res.queried),
    }


def _limit_threads(n: int | None) -> None:
    """One job's share of the cores: parallel jobs with a thread per core each thrash."""
    if n is None:
        return
    import torch
    from threadpoolctl import threadpool_limits

    threadpool_limits(n)
    torch.set_num_threads(n)


def run(cfg: DictConfig) -> dict[str, Any]:
    parts = build_parts(cfg)
    _limit_threads(cfg.get("threads"))
    splits, initial = load_data(cfg)
    run_dir, group, name = _run_identity(cfg)
    oracle = ORACLES.get(cfg.oracle.name)(
        OracleContext(splits.pool, parts["task"], run_dir, to_dict(cfg)), **_params(cfg.oracle)
    )
    try:
        return _run(cfg, parts, splits, initial, oracle, run_dir, group, name)
    except BaseException:
        if hasattr(oracle, "close"):
            oracle.close()
        raise


def _run(
    cfg: DictConfig,
    parts: dict[str, Any],
    splits: Splits,
    initial: np.ndarray | None,
    oracle: Any,
    run_dir: Path,
    group: str | None,
    name: str,
) -> dict[str, Any]:
    task = parts["task"]
    pool, test = splits.pool, splits.test
    given = list(HydraConfig.get().overrides.task)
    overrides = dict(o.split("=", 1) for o in given if "=" in o)
    command = [o for o in given if not o.startswith("resume=")]
    settings = result_config(to_dict(cfg))
    ckpt = checkpoint.load(run_dir, settings, command, task.name == "ner", bool(cfg.resume))
    if ckpt is not None and ckpt.complete:
        log.info("%s: this run is complete (summary.json); nothing to resume", run_dir)
        return json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    tags = [
        f"dataset:{cfg.dataset.name}",
        f"task:{cfg.task.name}",
        f"strategy:{cfg.strategy.name}",
        *[f"model:{m}" for m in cfg.models],
        *cfg.tags,
    ]
    logger = LOGGERS.get(cfg.logger.name)(
        run_dir=run_dir,
        group=group,
        name=name,
        tags=tags,
        config={**to_dict(cfg), "overrides": overrides},
        **_params(cfg.logger, ("name", "group")),
    )
    base_ctx = ModelContext(
        n_classes=len(pool.label_names),
        seed=cfg.seed,
        cache_dir=Path(cfg.cache_dir).expanduser(),
        corpus=pool.texts + test.texts,
        label_names=pool.label_names,
    )
    test_inputs = task.inputs(test, range(len(test)))
    feats = _pool_features(cfg, base_ctx, pool) if parts["features"] else None
    rows: list[dict[str, Any]] = []

    def train(labeled: np.ndarray, labels: np.ndarray, r: int):
        seed = int(np.random.default_rng([cfg.seed, r]).integers(2**31 - 1))
        ctx = dataclasses.replace(base_ctx, seed=seed)
        return select_best(
            task,
            parts["candidates"],
            ctx,
            task.inputs(pool, labeled),
            labels,
            cfg.selection,
            spaces=parts["spaces"],
            refit_all=parts["committee"],
            incumbent=rows[-1]["chosen"] if rows else None,  # last round's kept model
        )

    def evaluate(model) -> dict[str, Any]:
        pred = task.decode(task.predict(model, test_inputs), test_inputs)
        return task.metrics(test.labels, pred, test.label_names)

    def predict(sel: Selection, idx: np.ndarray) -> Predictions:
        inputs = task.inputs(pool, idx)
        members = dict(sel.members) if parts["committee"] else {}
        with progress_bar(f"scoring {len(idx)} pool items", len(members) + 1) as bar:
            preds = {}
            for key, model in members.items():
                preds[key] = task.predict(model, inputs)
                bar(1)
            out = preds[sel.chosen] if sel.chosen in preds else task.predict(sel.model, inputs)
            bar(1)
        if parts["committee"]:
            out.committee = list(preds.values())
        if feats is not None:
            out.features = feats[idx]
        return out

    labeled_round: list[int] = []
    rng = np.random.default_rng(cfg.seed)
    if ckpt is not None:
        rng.bit_generator.state = ckpt.rng_state
        rows, labeled_round = ckpt.rows, ckpt.labeled_round
        for row in rows:  # the new W&B run holds the whole curve
            logger.log_round(row)
        if hasattr(oracle, "resume_at"):
            oracle.resume_at(ckpt.resume.round + 1, len(ckpt.resume.labeled))
        log.info(
            "resuming %s after round %d (%d labelled)",
            run_dir,
            ckpt.resume.round,
            len(ckpt.resume.labeled),
        )
    last: RoundResult | None = None
    metric = task.selection_metric
    if initial is None and ckpt is None and cfg.loop.initial_strategy != "random":
        # the cold start's picks (a seed set wins; a resumed run has its first batch already),
        # from an RNG of their own
        start_rng = np.random.default_rng([cfg.seed, 7])
        assert feats is not None  # build_parts asks for features whenever a cold start does
        initial = cold_start(feats, cfg.loop.initial_size, start_rng, cfg.loop.initial_strategy)

    for res in active_learning(
        n_pool=len(pool),
        label=oracle.label,
        train=train,
        evaluate=evaluate,
        predict=predict,
        query=parts["query"],
        initial_size=cfg.loop.initial_size,
        round_size=cfg.loop.round_size,
        budget=cfg.loop.budget,
        rng=rng,
        initial=initial,
        resume=None if ckpt is None else ckpt.resume,
        pool_sample=cfg.loop.pool_sample,
    ):
        row = _round_row(res, splits, task)
        rows.append(row)
        last = res
        labeled_round += [res.round] * (len(res.labeled) - len(labeled_round))
        write_atomic(run_dir / "rounds.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
        write_atomic(
            run_dir / "labeled.jsonl",
            "".join(
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
                for i, y, rd in zip(res.labeled, res.labels, labeled_round, strict=True)
            ),
        )
        if len(res.queried):  # the last round's checkpoint waits for the model and summary
            checkpoint.save(run_dir, res, rng, rows, labeled_round, settings, command)
        logger.log_round(row)
        if hasattr(oracle, "round_done"):
            oracle.round_done(row, res.selection.model)
        val = res.selection.scores.get(row["chosen"])
        log.info(
            "round %d: %d %ss (%s), kept %s (%s; val %s %s, %s) -> test %s [%.1fs]",
            res.round,
            row["labeled"],
            cfg.loop.unit,
            ", ".join(f"{v} {k}" for k, v in row["cost"].items()),
            row["chosen"],
            row["why"],
            metric,
            "-" if val is None else f"{val:.3f}",
            row["validation_method"],
            ", ".join(f"{m} {res.test[m]:.4f}" for m in task.headline),
            res.seconds["round"],
        )
    assert last is not None
    chosen = last.selection.chosen
    save_model(
        last.selection.model,
        last.selection.spec,
        base_ctx,
        run_dir / "model",
        {
            "task": task.name,
            "candidate": chosen,
            "round": last.round,
            "labeled": len(last.labeled),
            "dataset": cfg.dataset.name,
            "tokenizer": cfg.dataset.get("tokenizer") or "blank:en",
        },
    )
    plot_learning_curve(
        rows,
        run_dir / "learning_curve.png",
        f"{cfg.dataset.name} · {cfg.strategy.name} · seed {cfg.seed}",
        metrics=task.headline[:2],
        unit=cfg.loop.unit,
    )
    xs = [r["labeled"] for r in rows]
    head = task.headline[0]
    ys = [r["test"][head] for r in rows]

    def to_target(x: list[float]) -> float | None:
        v = labels_to_target(x, ys, task.target)
        return None if math.isnan(v) else round(v, 1)

    summary = {
        "final/labeled": xs[-1],
        **{f"final/cost_{k}": v for k, v in rows[-1]["cost"].items()},
        **{f"final/test_{m}": rows[-1]["test"][m] for m in task.headline},
        **{f"aulc/test_{m}": aulc(xs, [r["test"][m] for r in rows]) for m in task.headline},
        f"target/{head}": task.target,  # the same keys in every run, reached or not
        "target/labels": to_target(xs),  # linear between rounds; null: never reached
        "target/tokens": to_target([r["cost"]["tokens"] for r in rows]),
        "rounds": len(rows),
        "seconds": sum(r["seconds"]["round"] for r in rows),
    }
    write_atomic(run_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    checkpoint.save(run_dir, last, rng, rows, labeled_round, settings, command, complete=True)
    logger.finish(summary, rows)
    if hasattr(oracle, "close"):
        oracle.close(summary)
    log.info(
        "done: %s",
        ", ".join(f"{k}={v:.4g}" if v is not None else f"{k}=never" for k, v in summary.items()),
    )
    log.info("run folder: %s", run_dir)
    return summary


def _pool_features(cfg: DictConfig, ctx: ModelContext, pool: Any) -> np.ndarray:
    """The pool's document vectors (`features`), for cold start and diversity strategies."""
    from alrun.models.embeddings import embedding_table

    f = cfg.features
    table = embedding_table(ctx, f.encoder, f.max_length, f.max_windows, f.batch_size, f.precision)
    return table(pool.texts)


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def _hydra_main(cfg: DictConfig) -> None:
    try:
        run(cfg)
    except AlrunError as e:
        print(f"alrun: error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        resume = " and every saved answer; run the same command to resume"
        print(
            "alrun: interrupted; the run folder keeps every finished round"
            + (resume if cfg.oracle.name == "web" else ""),
            file=sys.stderr,
        )
        sys.exit(130)


def main() -> None:
    if sys.argv[1:] in (["--version"], ["-V"]):
        print(f"alrun {version('alrun')}")
        return
    register_schema()
    _hydra_main()
