"""`alrun`: compose the config with Hydra, check it, build the parts, consume the loop.

The loop (`alrun.loop.active_learning`) yields one result a round; this module only wires the
parts together and hands each round to the recorders: the run folder and the logger.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from importlib.metadata import version
from pathlib import Path
from typing import Any

import hydra
import numpy as np
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from alrun import heldout, settings
from alrun.config import CONF_DIR, register_schema, to_dict
from alrun.data import (
    SeqDataset,
    Splits,
    check_pool,
    load_splits,
    load_token_splits,
    seed_from_prodigy,
)
from alrun.data.unlabelled import is_raw, load_raw_splits
from alrun.errors import AlrunError
from alrun.loop import active_learning
from alrun.models import ModelContext
from alrun.oracles import ORACLES, Oracle, OracleContext
from alrun.rounds import Candidates, pool_features
from alrun.run_folder import RunFolder, round_row, summarize
from alrun.stopping import Watch, configured, draw_stop_set
from alrun.strategies import cold_start
from alrun.tracking import run_logger

log = logging.getLogger("alrun")


def load_data(cfg: DictConfig) -> tuple[Splits, np.ndarray | None]:
    """The pool and test split, and the seed set's pool indices when annotations are given;
    then the pool-size checks (the settings checks that need the data)."""
    if is_raw(cfg.dataset):
        splits = load_raw_splits(cfg, cfg.dataset, cfg.task.name, cfg.loop.unit)
    elif cfg.task.name == "ner":
        splits = load_token_splits(cfg, cfg.dataset, cfg.seed, cfg.loop.unit)
    else:
        splits = load_splits(cfg, cfg.dataset, cfg.seed)
    initial = None
    if cfg.loop.initial_from:
        splits, initial = seed_from_prodigy(cfg, splits)
    check_pool(cfg, splits.pool, splits.source, None if initial is None else len(initial))
    return splits, initial


def scheduler_cpus() -> tuple[int, str] | None:
    """The CPUs a cluster scheduler gave this job, and which scheduler: SLURM's
    --cpus-per-task (hydra.launcher.cpus_per_task), Ray's num_cpus (hydra.launcher.ray.remote.
    num_cpus). None outside one. A job with a thread per core of a shared node would thrash."""
    if os.environ.get("SLURM_CPUS_PER_TASK", "").isdigit():
        return int(os.environ["SLURM_CPUS_PER_TASK"]), "SLURM"
    ray = _ray_worker()
    if ray is not None:
        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU")
        if cpus:
            return max(1, round(cpus)), "Ray"
    return None


def _ray_worker() -> Any:
    """The `ray` module when this process runs a Ray task (alrun itself never imports it)."""
    ray = sys.modules.get("ray")
    return ray if ray is not None and ray.is_initialized() else None


def job_threads(threads: int | None) -> int | None:
    """`threads`, or when null the CPUs the cluster gave the job (else every core)."""
    given = None if threads is not None else scheduler_cpus()
    if given is None:
        return threads
    log.info("threads=%d: the CPUs %s gave this job (threads=N to change)", *given)
    return given[0]


def check_job_paths(cfg: DictConfig) -> None:
    """A Ray task runs in the worker's folder (where `ray start` ran), not where `alrun -m` was
    typed: there a relative path names another folder, or none on another node."""
    hc = HydraConfig.get()
    if _ray_worker() is None or Path.cwd() == Path(hc.runtime.cwd):
        return
    paths = {
        "hydra.sweep.dir": hc.sweep.dir,
        "data_dir": cfg.data_dir,
        "cache_dir": cfg.cache_dir,
    }
    relative = [f"{k}={v}" for k, v in paths.items() if not Path(str(v)).is_absolute()]
    if relative:
        raise AlrunError(
            f"{', '.join(relative)}: relative, and this job runs in {Path.cwd()}, not in "
            f"{hc.runtime.cwd} where alrun started (a Ray worker's folder); give absolute "
            "paths every node sees, e.g. hydra.sweep.dir=$PWD/outputs/sweep "
            "data_dir=$PWD/data cache_dir=$PWD/.cache/alrun"
        )


def limit_threads(n: int | None) -> None:
    """One job's share of the cores: parallel jobs with a thread per core each thrash."""
    if n is None:
        return
    import torch
    from threadpoolctl import threadpool_limits

    threadpool_limits(n)
    torch.set_num_threads(n)


def run(cfg: DictConfig) -> dict[str, Any]:
    parts = settings.check(cfg)
    check_job_paths(cfg)
    limit_threads(job_threads(cfg.get("threads")))
    splits, initial = load_data(cfg)
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    ctx = OracleContext(splits.pool, parts.task, run_dir, to_dict(cfg))
    oracle: Oracle = ORACLES.get(cfg.oracle.name)(ctx, **settings.params(cfg.oracle))
    try:
        return _run(cfg, parts, splits, initial, oracle, run_dir)
    except BaseException:
        oracle.close()
        raise


def _run(
    cfg: DictConfig,
    parts: settings.RunParts,
    splits: Splits,
    initial: np.ndarray | None,
    oracle: Oracle,
    run_dir: Path,
) -> dict[str, Any]:
    pool, test, task = splits.pool, splits.test, parts.task
    ctx = model_context(cfg, splits)
    folder = RunFolder.for_run(cfg, parts.task, pool, ctx)
    ckpt = folder.checkpoint(asked=bool(cfg.resume))
    if ckpt is not None and ckpt.complete:
        log.info("%s: this run is complete (summary.json); nothing to resume", run_dir)
        return folder.summary()
    logger = run_logger(cfg, run_dir)
    sample = _eval_sample(cfg, pool, initial, oracle, folder)
    held = None if sample is None else sample.drawn
    feats = pool_features(cfg, ctx, pool) if parts.features else None
    evalset = None if sample is None else sample.data
    stops = _stopping_rules(cfg, task, pool, held, run_dir)
    candidates = Candidates(
        parts, pool, test, ctx, cfg.selection, feats, folder.rows, evalset, cfg.eval, stops
    )
    if ckpt is not None:
        if stops is not None:
            stops.resume(folder.rows)
        for row in folder.rows:  # the new W&B run holds the whole curve
            logger.log_round(row)
        oracle.resume_at(ckpt.resume.round + 1, len(ckpt.resume.labeled))
        done = ckpt.resume
        log.info("resuming %s after round %d (%d labelled)", run_dir, done.round, len(done.labeled))
    elif initial is None and cfg.loop.initial_strategy != "random":
        assert feats is not None  # settings.check asks for features whenever a cold start does
        initial = _cold_start(cfg, feats, held)
    for res in active_learning(
        n_pool=len(pool),
        label=oracle.label,
        train=candidates.train,
        evaluate=candidates.evaluate,
        predict=candidates.predict,
        query=parts.query,
        initial_size=cfg.loop.initial_size,
        round_size=cfg.loop.round_size,
        budget=cfg.loop.budget,
        rng=folder.rng,
        initial=initial,
        resume=None if ckpt is None else ckpt.resume,
        pool_sample=cfg.loop.pool_sample,
        held_out=held,
        watch=None if stops is None else candidates.watch,
    ):
        row = round_row(res, pool, task) | oracle.round_fields(res.round)
        folder.log_round(row, res)
        logger.log_round(row)
        oracle.round_done(row, res.selection.model)
        _log_round(row, cfg.loop.unit, task)
    _log_stop(stops, folder.rows[-1], cfg.loop)
    return _finish(folder, logger, oracle)


def _log_stop(stops: Watch | None, last: dict[str, Any], loop: DictConfig) -> None:
    """Say so when the rule `loop.stop` names ended the run before its budget."""
    if stops is None or stops.stop is None or not last["stopping"][stops.stop]["stop"]:
        return
    rule = stops.rules[stops.stop]
    log.info(
        "stopping rule %s held for %d rounds (threshold %g): stopped at %d of %d %ss",
        rule.name,
        rule.window,
        rule.threshold,
        last["labeled"],
        loop.budget,
        loop.unit,
    )


def _stopping_rules(
    cfg: DictConfig, task: Any, pool: Any, held: np.ndarray | None, run_dir: Path
) -> Watch | None:
    """The stopping rules and their stop set (none with stopping.stop_set=0)."""
    st = cfg.stopping
    if not st.stop_set:
        return None
    rules, chosen = configured(cfg)
    items = draw_stop_set(len(pool), st.stop_set, cfg.seed, held)
    return Watch(task, pool.label_names, items, rules, chosen, state_dir=run_dir)


def model_context(cfg: DictConfig, splits: Splits) -> ModelContext:
    """What every candidate may need: the corpus (pool and test) for its cached features."""
    pool, test = splits.pool, splits.test
    return ModelContext(
        n_classes=len(pool.label_names),
        seed=cfg.seed,
        cache_dir=Path(cfg.cache_dir).expanduser(),
        corpus=pool.texts + (test.texts if test is not None else []),
        label_names=pool.label_names,
        pool_sentences=_sentences(pool),
        test_sentences=_sentences(test),
    )


def _sentences(data: Any) -> list[list[str]]:
    """An NER dataset's sentences (what token features are computed for); none for texts."""
    if not isinstance(data, SeqDataset):
        return []
    return [s for item in data.sentences for s in item]


def _cold_start(cfg: DictConfig, feats: np.ndarray, held: np.ndarray | None) -> np.ndarray:
    """The cold start's picks (a seed set wins), from an RNG of their own, outside the
    evaluation sample."""
    start_rng = np.random.default_rng([cfg.seed, 7])
    allowed = np.setdiff1d(np.arange(len(feats)), [] if held is None else held)
    picks = cold_start(feats[allowed], cfg.loop.initial_size, start_rng, cfg.loop.initial_strategy)
    return allowed[picks]


def _eval_sample(
    cfg: DictConfig, pool: Any, initial: np.ndarray | None, oracle: Oracle, folder: RunFolder
) -> heldout.EvalSample | None:
    """eval.size random pool items, labelled by the oracle before the first round (a web run
    that resumes gets them from its database; a simulated one draws the same again)."""
    if not cfg.eval.size:
        return None
    drawn = heldout.draw(len(pool), cfg.eval.size, cfg.seed, exclude=initial)
    log.info("evaluation sample: %d random items, labelled before the first round", len(drawn))
    sample = heldout.label_sample(oracle, pool, drawn)
    log.info(
        "evaluation sample: %d labelled, %d skipped", len(sample.idx), len(drawn) - len(sample.idx)
    )
    folder.write_eval_sample(sample.idx, sample.data.labels, drawn)
    return sample


def _finish(folder: RunFolder, logger: Any, oracle: Oracle) -> dict[str, Any]:
    """The summary to every recorder, then the oracle (the web page shows the end)."""
    summary = summarize(folder.rows, folder.task) | oracle.summary_fields()
    folder.finish(summary, folder.rows)
    logger.finish(summary, folder.rows)
    oracle.close(summary)
    done = (f"{k}={v:.4g}" if v is not None else f"{k}=never" for k, v in summary.items())
    log.info("done: %s", ", ".join(done))
    log.info("run folder: %s", folder.path)
    return summary


def _watched(row: dict[str, Any]) -> str:
    """The stopping rules' values in the round's log line ("; stabilizing 0.993 (would stop)")."""
    return "".join(
        f"; {k} {v['value']:.3f}" + (" (would stop)" if v["stop"] else "")
        for k, v in (row.get("stopping") or {}).items()
        if isinstance(v, dict) and v["value"] is not None
    )


def _log_round(row: dict[str, Any], unit: str, task: Any) -> None:
    val = row["validation"].get(row["chosen"])
    ev = row.get("eval")
    interval = (
        ""
        if ev is None
        else " (eval sample: "
        + ", ".join(
            f"{m} {ev[m]:.3f} [{ev[m + '_low']:.3f}, {ev[m + '_high']:.3f}]"
            for m in task.headline
            if m in ev
        )
        + ")"
    )
    log.info(
        "round %d: %d %ss (%s), kept %s (%s; val %s %s, %s) -> %s %s%s%s [%.1fs]",
        row["round"],
        row["labeled"],
        unit,
        ", ".join(f"{v} {k}" for k, v in row["cost"].items()),
        row["chosen"],
        row["why"],
        task.selection_metric,
        "-" if val is None else f"{val:.3f}",
        row["validation_method"],
        "test" if row["heldout"] == "test split" else "eval sample",
        ", ".join(f"{m} {row['test'][m]:.4f}" for m in task.headline),
        interval,
        _watched(row) + _agreed(row),
        row["seconds"]["round"],
    )


def _agreed(row: dict[str, Any]) -> str:
    """ ", annotators: alpha 0.81 on 10 shared items (2 reviewed)" with oracle.overlap >= 2."""
    ag = row.get("agreement")
    if not ag:
        return ""
    name = "alpha" if "alpha" in ag else "f1"
    value = "-" if ag[name] is None else f"{ag[name]:.3f}"
    return (
        f", annotators: {'entity F1' if name == 'f1' else name} {value} on {ag['items']} shared"
        f" items ({ag['disagreed']} disagreed, {ag['reviewed']} reviewed)"
    )


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def _hydra_main(cfg: DictConfig) -> None:
    try:
        run(cfg)
    except AlrunError as e:
        print(f"alrun: error: {e}", file=sys.stderr)
        if _ray_worker() is not None:  # a task error, which Ray does not retry; exiting the
            raise  # worker is a crash, retried max_retries times with the same error
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
    # conf/hydra/launcher/ray.yaml shares its name with the Ray plugin's schema on purpose: the
    # schema checks its keys. Hydra 1.3 still does that, with a deprecation warning per compose.
    warnings.filterwarnings("ignore", message=r"\s*'hydra/launcher/ray' is validated against")
    _hydra_main()
