"""Every check of one run's settings, in one place: `check` before any data is read, and
`check_data` right after loading (what needs the pool's size). `check` also builds the run's
parts by name (task, strategy, candidate specs), typed as `RunParts`."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from alrun.config import CONF_DIR, check_label_set, to_dict
from alrun.errors import AlrunError
from alrun.models import MODELS
from alrun.oracles import ORACLES
from alrun.selection import VALIDATIONS
from alrun.strategies import COMMITTEE, FEATURES, STRATEGIES, Predictions, as_query
from alrun.tasks import TASKS
from alrun.tracking import LOGGERS


@dataclass
class RunParts:
    """What a run's config selects by name, checked and built before any data is read."""

    task: Any  # Multiclass | Ner
    query: Any  # query(predictions, k, rng) -> positions of the next batch
    features: bool  # the pool's document vectors are needed (cold start, diversity)
    # key -> model spec: name + hyper-parameters, and `validation:` where the model file sets
    # it (cv or holdout; select_best takes it off before building the model)
    candidates: dict[str, dict[str, Any]]
    spaces: dict[str, dict[str, Any]]  # key -> Optuna search space (selection.trials)
    committee: bool  # the strategy needs every candidate's predictions


def _serving(group: str, task: str) -> list[str]:
    """The options of conf/<group>/ whose `tasks:` list `task` (for error messages)."""
    found = []
    for f in sorted((CONF_DIR / group).glob("*.yaml")):
        try:
            node = OmegaConf.load(f)
            tasks = node.get("tasks") or (node.get("dataset") or {}).get("tasks") or []
        except Exception:  # an unreadable option file only shortens the hint
            continue
        if task in tasks:
            found.append(f.stem)
    return found


def _one_of(options: list[str]) -> str:
    return ", ".join(options[:-1]) + f" or {options[-1]}" if len(options) > 1 else "".join(options)


COLD_STARTS = ["random", "kmeans", "typiclust"]


def check(cfg: DictConfig) -> RunParts:
    """Every setting of the run, checked in the order a user fixes them; then the parts."""
    _check_loop(cfg.loop)
    _check_stopping(cfg)
    for group in ("dataset", "task", "strategy", "oracle", "logger"):
        node = cfg.get(group)
        if not isinstance(node, DictConfig) or "name" not in node:
            raise AlrunError(f"config group `{group}` is missing or has no `name:`")
    _check_candidates(cfg)
    _check_tasks(cfg)
    task = cfg.task.name
    if task == "multiclass" and OmegaConf.is_list(cfg.dataset.get("labels")) and cfg.dataset.labels:
        labels = [str(x) for x in cfg.dataset.labels]
        check_label_set(labels, f"dataset.labels={labels}")
    if cfg.loop.unit not in ("document", "sentence"):
        raise AlrunError(f"loop.unit={cfg.loop.unit!r}; choose document or sentence")
    if cfg.loop.unit == "sentence" and task != "ner":
        raise AlrunError(
            f"loop.unit=sentence: a {task} item is a whole document; use loop.unit=document "
            "(sentence units are for task=ner)"
        )
    _check_selection(cfg)
    if cfg.loop.initial_strategy not in COLD_STARTS:
        raise AlrunError(
            f"loop.initial_strategy={cfg.loop.initial_strategy!r}; choose {_one_of(COLD_STARTS)}"
        )
    _check_ensembles(cfg)
    _check_eval(cfg)
    return _build(cfg)


def _check_eval(cfg: DictConfig) -> None:
    """The evaluation sample's settings, and held-out labels for a pool without gold."""
    ev = cfg.eval
    if ev.size < 0 or not 0 < ev.level < 1 or ev.bootstrap < 100:
        raise AlrunError(
            f"eval.size={ev.size} (0: none, else how many random pool items to hold out), "
            f"eval.level={ev.level} (in (0, 1), e.g. 0.95), eval.bootstrap={ev.bootstrap} "
            "(at least 100 resamples, e.g. 1000)"
        )
    from alrun.data.unlabelled import is_raw

    if not is_raw(cfg.dataset):
        return
    if cfg.oracle.name == "simulated":
        from alrun.oracles.simulated import NO_GOLD

        raise AlrunError(f"dataset.path={cfg.dataset.get('path')}: {NO_GOLD}")
    if not ev.size and not cfg.dataset.get("test_path"):
        raise AlrunError(
            "this pool has no gold labels, so no learning curve without held-out labels: set "
            "eval.size=N (you label N random items first; they never train the model, e.g. "
            "eval.size=50) or dataset.test_path=FILE (an annotated file)"
        )


def _check_loop(loop: DictConfig) -> None:
    for key in ("initial_size", "round_size", "budget"):
        if loop[key] < 1:
            raise AlrunError(f"loop.{key}={loop[key]} must be at least 1; e.g. loop.{key}=10")
    if loop.get("pool_sample") is not None and loop.pool_sample < 1:
        raise AlrunError(
            f"loop.pool_sample={loop.pool_sample}: give how many unlabelled items to score per "
            "round (e.g. loop.pool_sample=20000), or null to score them all"
        )
    if loop.budget < loop.initial_size and not loop.get("initial_from"):
        raise AlrunError(
            f"loop.budget={loop.budget} is below loop.initial_size={loop.initial_size}; "
            f"raise loop.budget to at least {loop.initial_size} or lower loop.initial_size "
            f"to at most {loop.budget}"
        )


def _check_stopping(cfg: DictConfig) -> None:
    """loop.stop and the stopping rules' settings (`alrun.stopping.rules_from` checks them)."""
    from alrun.stopping import configured

    st = cfg.stopping
    _, stop = configured(cfg)
    if st.stop_set < 0 or (stop is not None and st.stop_set == 0):
        raise AlrunError(
            f"stopping.stop_set={st.stop_set}: how many random pool items the stopping rules "
            "watch, e.g. stopping.stop_set=1000"
            + (" (loop.stop needs them; or set loop.stop=null)" if stop is not None else "")
        )


def _check_candidates(cfg: DictConfig) -> None:
    """At least one candidate, each with a name; an empty list names the task's default."""
    task = cfg.task.name
    if not cfg.models:
        models, default, first = _serving("model", task), None, None
        with contextlib.suppress(Exception):  # the task's default list, for the hint only
            for entry in OmegaConf.load(CONF_DIR / "task" / f"{task}.yaml").defaults:
                if isinstance(entry, DictConfig) and "/candidates" in entry:
                    default = str(entry["/candidates"])
            first = str(OmegaConf.load(CONF_DIR / "candidates" / f"{default}.yaml").defaults[0])
        example = first or (models[0] if models else None)
        raise AlrunError(
            "candidates is empty: no model to train; name at least one"
            + (f", e.g. candidates=[{example}]" if example else "")
            + (f" (models for {task}: {', '.join(models)})" if models else "")
            + (
                f", or leave candidates= out for the task's default (candidates={default})"
                if default
                else ""
            )
        )
    for key, model in cfg.models.items():
        if not isinstance(model, DictConfig) or "name" not in model:
            raise AlrunError(f"models.{key} needs a `name:`; see conf/model/ for examples")


def _check_tasks(cfg: DictConfig) -> None:
    """The strategy, the dataset and every candidate serve the run's task."""
    task = cfg.task.name
    for where, node, group in (
        ("strategy", cfg.strategy, "strategy"),
        ("dataset", cfg.dataset, "dataset"),
        *((f"models.{key}", m, "model") for key, m in cfg.models.items()),
    ):
        tasks = list(node.get("tasks") or [])
        if not tasks or task in tasks:
            continue
        options = _serving(group, task)
        if not options:
            fix = f"pick a {group} whose `tasks:` lists {task!r}"
        elif group == "strategy":
            fix = f"choose a strategy for {task}: strategy={_one_of(options)}"
        elif group == "dataset":
            fix = (
                f"drop task= (the dataset picks its task), or choose a dataset for {task}: "
                f"dataset={_one_of(options)}"
            )
        else:
            fix = (
                f"choose candidates for {task}, e.g. candidates=[{options[0]}] "
                f"(models for {task}: {', '.join(options)})"
            )
        raise AlrunError(f"{where} {node.name!r} supports tasks {tasks}, not {task!r}; {fix}")


def _check_selection(cfg: DictConfig) -> None:
    sel = cfg.selection
    if not 0 < sel.val_fraction < 1 or sel.cv_folds < 2:
        raise AlrunError("selection.val_fraction must be in (0, 1) and selection.cv_folds >= 2")
    if cfg.get("threads") is not None and cfg.threads < 1:
        raise AlrunError(f"threads={cfg.threads}; give a positive count, or null for all cores")
    if sel.trials < 0:
        raise AlrunError(f"selection.trials={sel.trials}; give 0 (no tuning) or more trials")
    if sel.rank_by not in ("log_loss", "brier", "metric"):
        raise AlrunError(f"selection.rank_by={sel.rank_by!r}; choose log_loss, brier or metric")
    if sel.cv_repeats < 1 or not 0 <= sel.switch_confidence <= 1:
        raise AlrunError(
            f"selection.cv_repeats={sel.cv_repeats} must be >= 1 and selection."
            f"switch_confidence={sel.switch_confidence} in [0, 1] (e.g. 0.9)"
        )


def _check_ensembles(cfg: DictConfig) -> None:
    for key, model in cfg.models.items():
        if model.name != "ensemble":
            continue
        others = [k for k, m in cfg.models.items() if m.name != "ensemble"]
        members = list(model.get("members") or others)
        unknown = [m for m in members if m not in others]
        if len(others) < 2 or unknown or model.get("weights", "equal") not in ("equal", "oof"):
            raise AlrunError(
                f"models.{key}: a soft vote of at least 2 other candidates (members={members}, "
                f"candidates {others}; unknown: {unknown}) with weights equal or oof; e.g. "
                "candidates=[minilm_embed_logreg,minilm_embed_centroid,ensemble]"
            )


def params(node: DictConfig, drop: tuple[str, ...] = ("name",)) -> dict[str, Any]:
    """A config block as keyword arguments for its factory (`name` and bookkeeping dropped)."""
    return {k: v for k, v in to_dict(node).items() if k not in drop}


def _build(cfg: DictConfig) -> RunParts:
    """Everything selected by name: unknown parameters fail here, not in round 7."""
    TASKS.check_params(cfg.task.name, params(cfg.task), "task")
    STRATEGIES.check_params(
        cfg.strategy.name, params(cfg.strategy, ("name", "tasks")), "strategy", positional=2
    )
    spaces = _check_models(cfg)
    ORACLES.check_params(cfg.oracle.name, params(cfg.oracle), "oracle", positional=1)
    if cfg.oracle.name == "web":
        from alrun.oracles.web import check_access, check_team

        check_access(cfg.oracle.host, cfg.oracle.get("token"))
        check_team(cfg.oracle.get("overlap", 1), cfg.oracle.get("reviewers"))
    LOGGERS.check_params(cfg.logger.name, params(cfg.logger, ("name", "group")), "logger")
    task = TASKS.get(cfg.task.name)(**params(cfg.task))
    strategy = partial(STRATEGIES.get(cfg.strategy.name), **params(cfg.strategy, ("name", "tasks")))
    cold_start = cfg.loop.initial_strategy != "random" and not cfg.loop.get("initial_from")
    features = cfg.strategy.name in FEATURES or cold_start  # a seed set wins over a cold start
    _check_precision("features.precision", cfg.features.precision)
    committee = cfg.strategy.name in COMMITTEE
    if committee and len(cfg.models) < 2:
        raise AlrunError(
            f"strategy {cfg.strategy.name!r} is a query-by-committee: it needs at least 2 "
            f"candidates, got {list(cfg.models)}; e.g. "
            + ("'candidates=[crf_ner,spacy_ner]'" if task.name == "ner" else "candidates=default")
        )
    _try_strategy(strategy, task.name, cfg.strategy.name)
    return RunParts(
        task=task,
        query=as_query(cfg.strategy.name, strategy),
        features=features,
        candidates={key: params(spec, ("tasks", "search")) for key, spec in cfg.models.items()},
        spaces=spaces,
        committee=committee,
    )


def _check_models(cfg: DictConfig) -> dict[str, dict[str, Any]]:
    """Each candidate's parameters, validation, search space and precision; returns the
    search spaces."""
    spaces: dict[str, dict[str, Any]] = {}
    for key, spec in cfg.models.items():
        MODELS.check_params(
            spec.name,
            params(spec, ("name", "tasks", "search", "validation")),
            f"models.{key}",
            positional=1,
        )
        _check_validation(key, spec.get("validation", "cv"), cfg.selection.val_fraction)
        if spec.get("search"):
            spaces[key] = _check_space(key, spec)
        if "precision" in spec:  # an embedding candidate: a bad precision fails now, not later
            _check_precision(f"models.{key}.precision", spec.precision)
    return spaces


def _check_validation(key: str, validation: Any, val_fraction: float) -> None:
    """A model file's `validation:`: its own k-fold CV like the others, or one hold-out."""
    if validation not in VALIDATIONS:
        raise AlrunError(
            f"models.{key}.validation={validation!r}; choose cv (k-fold cross-validation like "
            f"the other candidates, the default) or holdout (one fit a round, scored on a "
            f"{val_fraction:.0%} hold-out: for candidates slow to train), e.g. "
            f"models.{key}.validation=holdout"
        )


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
