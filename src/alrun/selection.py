"""AutoNLP-style model selection: every candidate on validation carved from the labelled set.

Scores come from cross-validation while the labelled set is small (pooled out-of-fold
predictions, steadier than a mean of tiny folds), from a stratified hold-out once it is large.
The winner is refit on all labelled data. Test data never enters this module.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from omegaconf import DictConfig
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

from alrun.models import Model, ModelContext, build_model
from alrun.progress import progress_bar
from alrun.tasks import Multiclass, Ner

Task = Multiclass | Ner


@dataclass
class Selection:
    scores: dict[str, float]  # validation score per candidate key
    chosen: str
    model: Model  # the chosen candidate, refit on every labelled item
    validation: str  # how the scores were obtained, e.g. "5-fold CV" or "20% hold-out"
    seconds: dict[str, float] = field(default_factory=dict)  # training time per candidate
    tuned: dict[str, dict[str, Any]] = field(default_factory=dict)  # best params per candidate
    spec: dict[str, Any] = field(default_factory=dict)  # the kept model's config, tuned values in
    members: dict[str, Model] = field(default_factory=dict)  # refit candidates (committee)


def validation_splits(
    n: int, y: np.ndarray | None, sel: DictConfig, seed: int
) -> tuple[list[tuple[np.ndarray, np.ndarray]], str]:
    """Folds over the n labelled items, stratified by y (class labels) when given."""
    idx = np.arange(n)
    if n <= sel.cv_max_size:
        k = min(sel.cv_folds, n)
        counts = np.bincount(y) if y is not None else np.zeros(1, dtype=int)
        if counts[counts > 0].max(initial=0) >= k:  # stratify whenever sklearn can
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="The least populated class")
                folds = list(StratifiedKFold(k, shuffle=True, random_state=seed).split(idx, y))
        else:
            folds = list(KFold(k, shuffle=True, random_state=seed).split(idx))
        return folds, f"{k}-fold CV"
    counts = np.bincount(y) if y is not None else np.zeros(1, dtype=int)
    stratify = y if y is not None and counts[counts > 0].min() >= 2 else None
    tr, va = train_test_split(idx, test_size=sel.val_fraction, stratify=stratify, random_state=seed)
    return [(tr, va)], f"{sel.val_fraction:.0%} hold-out"


def _oof_score(
    task: Task,
    spec: dict[str, Any],
    ctx: ModelContext,
    inputs: Sequence[Any],
    labels: np.ndarray,
    folds: list[tuple[np.ndarray, np.ndarray]],
    bar: Any = None,
) -> float:
    """The validation score of one configuration: pooled out-of-fold predictions."""
    n = len(labels)
    pred = np.empty(n, dtype=object)  # out-of-fold predicted label of every item
    seen = np.zeros(n, dtype=bool)
    for tr, va in folds:
        model = build_model(ctx, spec)
        model.fit(*task.fit_data([inputs[i] for i in tr], labels[tr]))
        va_inputs = [inputs[i] for i in va]
        decoded = task.decode(task.predict(model, va_inputs), va_inputs)
        for i, d in zip(va, decoded, strict=True):
            pred[i] = d
        seen[va] = True
        if bar is not None:
            bar(1)
    return task.score(labels[seen], pred[seen], ctx.label_names)


def suggest(trial: Any, space: Mapping[str, Any]) -> dict[str, Any]:
    """One point of a model file's `search:` space, in Optuna's own terms."""
    out: dict[str, Any] = {}
    for name, dist in space.items():
        kind = dist["type"]
        if kind == "categorical":
            out[name] = trial.suggest_categorical(name, list(dist["choices"]))
        elif kind == "int":
            out[name] = trial.suggest_int(
                name, dist["low"], dist["high"], log=dist.get("log", False)
            )
        else:
            out[name] = trial.suggest_float(
                name, dist["low"], dist["high"], log=dist.get("log", False)
            )
    return out


def _tune(
    spec: dict[str, Any],
    space: Mapping[str, Any],
    trials: int,
    seed: int,
    score: Any,
) -> tuple[dict[str, Any], float]:
    """Optuna TPE over the search space, on validation folds only; seeded, so reproducible.

    The defaults in the model file are the first trial, so tuning never does worse than them
    on validation.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.enqueue_trial({k: spec[k] for k in space if k in spec})
    study.optimize(lambda t: score({**spec, **suggest(t, space)}), n_trials=trials)
    best = {k: study.best_params[k] for k in space}
    return best, float(study.best_value)


def select_best(
    task: Task,
    candidates: Mapping[str, Any],
    ctx: ModelContext,
    inputs: Sequence[Any],
    labels: np.ndarray,
    sel: DictConfig,
    spaces: Mapping[str, Mapping[str, Any]] | None = None,
    refit_all: bool = False,
) -> Selection:
    """inputs/labels: the labelled items as the task defines them (texts, or sentence lists).

    With `sel.trials` > 0, each candidate with a search space in `spaces` is tuned first (on
    the same validation folds); its score is then its best trial's. `refit_all` refits every
    candidate on all labelled items (a query-by-committee needs them), not just the winner.
    """
    n = len(labels)
    folds, how = validation_splits(n, task.strata(labels), sel, ctx.seed)
    trials = int(sel.get("trials", 0) or 0)
    spaces = spaces or {}
    scores: dict[str, float] = {}
    seconds: dict[str, float] = {}
    tuned: dict[str, dict[str, Any]] = {}
    specs = dict(candidates)
    work = sum((trials if trials and spaces.get(k) else 1) for k in candidates) * len(folds)
    with progress_bar(f"training {len(candidates)} candidates on {n}", work) as bar:
        for j, (key, spec) in enumerate(candidates.items()):
            t0 = time.perf_counter()

            def score(s: dict[str, Any]) -> float:
                return _oof_score(task, s, ctx, inputs, labels, folds, bar)

            if trials and spaces.get(key):
                tuned[key], scores[key] = _tune(
                    spec, spaces[key], trials, (ctx.seed + j) % 2**32, score
                )
                specs[key] = {**spec, **tuned[key]}
            else:
                scores[key] = score(spec)
            seconds[key] = time.perf_counter() - t0
    chosen = max(scores, key=lambda k: scores[k])  # ties: first in candidate order
    members: dict[str, Model] = {}
    for key in candidates if refit_all else [chosen]:
        t0 = time.perf_counter()
        members[key] = build_model(ctx, specs[key])
        members[key].fit(*task.fit_data(list(inputs), labels))
        seconds[key] += time.perf_counter() - t0
    return Selection(scores, chosen, members[chosen], how, seconds, tuned, specs[chosen], members)
