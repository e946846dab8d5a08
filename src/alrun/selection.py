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
from alrun.tasks import Multiclass


@dataclass
class Selection:
    scores: dict[str, float]  # validation score per candidate key
    chosen: str
    model: Model  # the chosen candidate, refit on every labelled item
    validation: str  # how the scores were obtained, e.g. "5-fold CV" or "20% hold-out"
    seconds: dict[str, float] = field(default_factory=dict)  # training time per candidate


def validation_splits(
    y: np.ndarray, sel: DictConfig, seed: int
) -> tuple[list[tuple[np.ndarray, np.ndarray]], str]:
    n = len(y)
    idx = np.arange(n)
    if n <= sel.cv_max_size:
        k = min(sel.cv_folds, n)
        counts = np.bincount(y)
        if counts[counts > 0].max() >= k:  # stratify whenever sklearn can
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="The least populated class")
                folds = list(StratifiedKFold(k, shuffle=True, random_state=seed).split(idx, y))
        else:
            folds = list(KFold(k, shuffle=True, random_state=seed).split(idx))
        return folds, f"{k}-fold CV"
    counts = np.bincount(y)
    stratify = y if counts[counts > 0].min() >= 2 else None
    tr, va = train_test_split(idx, test_size=sel.val_fraction, stratify=stratify, random_state=seed)
    return [(tr, va)], f"{sel.val_fraction:.0%} hold-out"


def select_best(
    task: Multiclass,
    candidates: Mapping[str, Any],
    ctx: ModelContext,
    texts: Sequence[str],
    labels: np.ndarray,
    sel: DictConfig,
) -> Selection:
    folds, how = validation_splits(labels, sel, ctx.seed)
    scores: dict[str, float] = {}
    seconds: dict[str, float] = {}
    with progress_bar(
        f"training {len(candidates)} candidates on {len(texts)}", len(candidates) * (len(folds))
    ) as bar:
        for key, spec in candidates.items():
            t0 = time.perf_counter()
            probs = np.zeros((len(labels), ctx.n_classes))
            seen = np.zeros(len(labels), dtype=bool)
            for tr, va in folds:
                model = build_model(ctx, spec)
                model.fit([texts[i] for i in tr], labels[tr])
                probs[va] = model.predict([texts[i] for i in va]).probs
                seen[va] = True
                bar(1)
            scores[key] = task.score(labels[seen], probs[seen])
            seconds[key] = time.perf_counter() - t0
    chosen = max(scores, key=lambda k: scores[k])  # ties: first in candidate order
    t0 = time.perf_counter()
    model = build_model(ctx, candidates[chosen])
    model.fit(list(texts), labels)
    seconds[chosen] += time.perf_counter() - t0
    return Selection(scores, chosen, model, how, seconds)
