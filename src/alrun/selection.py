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


def select_best(
    task: Task,
    candidates: Mapping[str, Any],
    ctx: ModelContext,
    inputs: Sequence[Any],
    labels: np.ndarray,
    sel: DictConfig,
) -> Selection:
    """inputs/labels: the labelled items as the task defines them (texts, or sentence lists)."""
    n = len(labels)
    folds, how = validation_splits(n, task.strata(labels), sel, ctx.seed)
    scores: dict[str, float] = {}
    seconds: dict[str, float] = {}
    with progress_bar(
        f"training {len(candidates)} candidates on {n}", len(candidates) * len(folds)
    ) as bar:
        for key, spec in candidates.items():
            t0 = time.perf_counter()
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
                bar(1)
            scores[key] = task.score(labels[seen], pred[seen], ctx.label_names)
            seconds[key] = time.perf_counter() - t0
    chosen = max(scores, key=lambda k: scores[k])  # ties: first in candidate order
    t0 = time.perf_counter()
    model = build_model(ctx, candidates[chosen])
    model.fit(*task.fit_data(list(inputs), labels))
    seconds[chosen] += time.perf_counter() - t0
    return Selection(scores, chosen, model, how, seconds)
