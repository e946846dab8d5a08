"""AutoNLP-style model selection: every candidate on validation carved from the labelled set.

Validation on a small, actively chosen labelled set is noisy and biased (the items are the
hard ones, and accuracy on 20 of them moves in steps of 5 points), so a winner by a point of
accuracy is often a winner by chance. Candidates are therefore ranked by a proper scoring rule
(`selection.rank_by`: log-loss or Brier score of their pooled out-of-fold probabilities; the
task's metric is still reported), and the cross-validation is repeated with other folds while
the set is small. With `selection.switch_confidence` > 0 the previous round's model (the
incumbent) is kept unless a challenger's lower loss holds in at least that share of paired
bootstrap resamples of the validation items (measured in experiments/bbc_selection and off by
default: with log-loss ranking it kept weaker models longer). `rank_by: metric` is the plain
rule (highest validation metric). A lone candidate is not validated: there is nothing to choose.

The `ensemble` candidate is a soft vote of the others: its out-of-fold probabilities are the
weighted mean of theirs (weights equal, or fitted to the out-of-fold log-loss), so it costs no
extra training to validate. The winner is refit on all labelled data. Test data never enters
this module.

A candidate whose model file says `validation: holdout` (the networks: each fold retrains one,
so k folds cost k fits) trains once on (1 - `selection.val_fraction`) of the labelled items and
is scored on the rest, even while the others cross-validate. Its hold-out items are a subset of
the CV items (k-fold CV scores every item), so then every candidate is ranked, and its metric
and mean loss reported, on the items all of them validated.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from omegaconf import DictConfig
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

from alrun.models import Model, ModelContext, build_model
from alrun.models.ensemble import ENSEMBLE, Ensemble, fit_weights
from alrun.progress import progress_bar
from alrun.tasks import Multiclass, Ner, proper_loss

Task = Multiclass | Ner


@dataclass
class Selection:
    scores: dict[str, float]  # validation metric per candidate key (empty: not validated)
    chosen: str
    model: Model  # the chosen candidate, refit on every labelled item
    # how the scores were obtained, e.g. "5-fold CV x3", "20% hold-out" or, with candidates
    # validated differently, "5-fold CV x2; minilm_token_cls: 20% hold-out"
    validation: str
    seconds: dict[str, float] = field(default_factory=dict)  # training time per candidate
    tuned: dict[str, dict[str, Any]] = field(default_factory=dict)  # best params per candidate
    spec: dict[str, Any] = field(default_factory=dict)  # the kept model's config, tuned values in
    members: dict[str, Model] = field(default_factory=dict)  # refit candidates (committee)
    losses: dict[str, float] = field(default_factory=dict)  # mean validation loss (rank_by)
    why: str = ""  # why the kept model was kept


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
    return [holdout_split(n, y, sel, seed)], f"{sel.val_fraction:.0%} hold-out"


def holdout_split(
    n: int, y: np.ndarray | None, sel: DictConfig, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) positions: `selection.val_fraction` of the n items held out,
    stratified by y whenever every class has two items and both parts room for each class."""
    counts = np.bincount(y) if y is not None else np.zeros(1, dtype=int)
    present = counts[counts > 0]
    held = math.ceil(sel.val_fraction * n)  # sklearn's size of the test part
    fits = y is not None and present.min() >= 2 and min(held, n - held) >= len(present)
    tr, va = train_test_split(
        np.arange(n), test_size=sel.val_fraction, stratify=y if fits else None, random_state=seed
    )
    return tr, va


def repeated_splits(
    n: int, y: np.ndarray | None, sel: DictConfig, seed: int
) -> tuple[list[list[tuple[np.ndarray, np.ndarray]]], str]:
    """`validation_splits` repeated with other shuffles while the set is small (up to
    `selection.repeat_max_size` items, `selection.cv_repeats` times): a mean over several
    partitions of 20 items is far steadier than one. The first repeat is the plain split."""
    folds, how = validation_splits(n, y, sel, seed)
    repeats = int(sel.get("cv_repeats", 1) or 1)
    if n > sel.get("repeat_max_size", 0) or n > sel.cv_max_size or repeats <= 1:
        return [folds], how
    more = [validation_splits(n, y, sel, seed + r)[0] for r in range(1, repeats)]
    return [folds, *more], f"{how} x{repeats}"


Splits = list[list[tuple[np.ndarray, np.ndarray]]]  # repeats of folds of (train, validation)
VALIDATIONS = ("cv", "holdout")  # a model file's `validation:` (absent: cv)


def candidate_splits(
    n: int, y: np.ndarray | None, sel: DictConfig, seed: int, validation: str = "cv"
) -> tuple[Splits, str]:
    """A candidate's folds: `repeated_splits` (cv), or the one hold-out split that
    `validation_splits` makes past `cv_max_size` (holdout): the same items, drawn from the
    same seed, so a hold-out candidate's items are among every other candidate's."""
    if validation == "holdout":
        return [[holdout_split(n, y, sel, seed)]], f"{sel.val_fraction:.0%} hold-out"
    return repeated_splits(n, y, sel, seed)


@dataclass
class Validated:
    """One candidate's out-of-fold record, pooled over the repeats."""

    metric: float  # the task's validation metric, mean over repeats
    losses: np.ndarray  # per labelled item, mean over repeats; NaN where never validated
    probs: list[np.ndarray] | None  # multiclass: out-of-fold probs[n, C] of each repeat
    seen: list[np.ndarray]  # per repeat: the items validated
    preds: list[np.ndarray]  # per repeat: each item's out-of-fold decoded prediction

    @property
    def items(self) -> np.ndarray:
        """The items validated in any repeat."""
        return np.logical_or.reduce(self.seen)

    def on(
        self, items: np.ndarray, task: Task, labels: np.ndarray, names: Sequence[str]
    ) -> Validated:
        """This record on `items` only: its metric and losses there (like with like)."""
        seen = [s & items for s in self.seen]
        scores = [task.score(labels[s], p[s], names) for s, p in zip(seen, self.preds, strict=True)]
        losses = np.where(items, self.losses, np.nan)
        return Validated(float(np.mean(scores)), losses, self.probs, seen, self.preds)


def validate(
    task: Task,
    spec: dict[str, Any],
    ctx: ModelContext,
    inputs: Sequence[Any],
    labels: np.ndarray,
    repeats: Splits,
    rule: str,
    bar: Any = None,
) -> Validated:
    """Train on each fold's training part, predict its validation part, pool the predictions."""
    n = len(labels)
    loss_sum, loss_n = np.zeros(n), np.zeros(n)
    metrics, probs, seen_all, preds_all = [], [], [], []
    for folds in repeats:
        pred = np.empty(n, dtype=object)  # out-of-fold predicted label of every item
        seen = np.zeros(n, dtype=bool)
        oof: np.ndarray | None = None
        for tr, va in folds:
            model = build_model(ctx, spec)
            model.fit(*task.fit_data([inputs[i] for i in tr], labels[tr]))
            va_inputs = [inputs[i] for i in va]
            preds = task.predict(model, va_inputs)
            for i, d in zip(va, task.decode(preds, va_inputs), strict=True):
                pred[i] = d
            seen[va] = True
            if rule != "metric":
                loss_sum[va] += task.item_losses(preds, labels[va], rule)
                loss_n[va] += 1
            if preds.probs.ndim == 2:
                if oof is None:
                    oof = np.zeros((n, preds.probs.shape[1]))
                oof[va] = preds.probs
            if bar is not None:
                bar(1)
        metrics.append(task.score(labels[seen], pred[seen], ctx.label_names))
        seen_all.append(seen)
        preds_all.append(pred)
        if oof is not None:
            probs.append(oof)
    loss = _mean(loss_sum, loss_n)
    return Validated(float(np.mean(metrics)), loss, probs or None, seen_all, preds_all)


def _mean(total: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Per-item mean loss over the repeats that validated it; NaN where none did."""
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _vote(
    task: Task,
    parts: Sequence[Validated],
    weights: np.ndarray,
    labels: np.ndarray,
    rule: str,
    label_names: Sequence[str],
) -> Validated:
    """The soft vote's out-of-fold record from its members': their probs, weighted, on the
    items all of them validated (a member with one split lends it to every repeat)."""
    probs, preds, seen_all, metrics = [], [], [], []
    loss_sum, loss_n = np.zeros(len(labels)), np.zeros(len(labels))
    y = np.asarray(labels, dtype=np.int64)
    for at, seen in _aligned(parts):
        ps = (w * _probs(v)[r] for w, v, r in zip(weights, parts, at, strict=True))
        p = np.asarray(sum(ps))  # an array already: typeshed's sum() of Any says int
        probs.append(p)
        preds.append(p.argmax(axis=1))
        seen_all.append(seen)
        metrics.append(task.score(y[seen], p[seen].argmax(axis=1), label_names))
        if rule != "metric":
            loss_sum[seen] += proper_loss(p[seen], y[seen], rule)
            loss_n[seen] += 1
    return Validated(float(np.mean(metrics)), _mean(loss_sum, loss_n), probs, seen_all, preds)


def _probs(v: Validated) -> list[np.ndarray]:
    """A vote member's out-of-fold probabilities (multiclass members always have them)."""
    assert v.probs is not None, "a soft vote needs class probabilities"
    return v.probs


def _aligned(parts: Sequence[Validated]) -> list[tuple[list[int], np.ndarray]]:
    """Per repeat of a vote: each member's repeat (a member with fewer repeats, a hold-out,
    repeats its last) and the items every member validated there."""
    out = []
    for r in range(max(len(v.seen) for v in parts)):
        at = [min(r, len(v.seen) - 1) for v in parts]
        seen = np.logical_and.reduce([v.seen[i] for v, i in zip(parts, at, strict=True)])
        out.append((at, seen))
    return out


def bootstrap_better(diff: np.ndarray, resamples: int, rng: np.random.Generator) -> float:
    """Share of paired bootstrap resamples of the items in which the mean of `diff`
    (incumbent's loss minus challenger's, per item) is above 0: the challenger is better."""
    diff = diff[~np.isnan(diff)]
    if len(diff) == 0:
        return 0.0
    rows = rng.integers(0, len(diff), size=(resamples, len(diff)))
    return float((diff[rows].mean(axis=1) > 0).mean())


def keep(
    losses: Mapping[str, np.ndarray],
    incumbent: str | None,
    rule: str,
    confidence: float,
    rng: np.random.Generator,
    resamples: int = 1000,
) -> tuple[str, str]:
    """(kept key, why): the lowest mean loss, unless the incumbent is not beaten beyond noise."""
    mean = {k: float(np.nanmean(v)) for k, v in losses.items()}
    best = min(mean, key=lambda k: mean[k])  # ties: first in candidate order
    lowest = f"lowest validation {rule} ({mean[best]:.4f})"
    if incumbent is None or incumbent not in mean or confidence <= 0:
        return best, lowest
    if best == incumbent:
        return best, f"incumbent, {lowest}"
    share = bootstrap_better(losses[incumbent] - losses[best], resamples, rng)
    versus = f"{rule} {mean[best]:.4f} vs {mean[incumbent]:.4f}"
    if share >= confidence:
        return best, (
            f"beat incumbent {incumbent} ({versus}) in {share:.0%} of {resamples} bootstrap "
            f"resamples (>= {confidence:.0%})"
        )
    return incumbent, (
        f"incumbent kept: {best} ({versus}) better in only {share:.0%} of {resamples} "
        f"bootstrap resamples (< {confidence:.0%})"
    )


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
) -> dict[str, Any]:
    """Optuna TPE over the search space, on validation folds only; seeded, so reproducible.

    The defaults in the model file are the first trial, so tuning never does worse than them
    on validation.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.enqueue_trial({k: spec[k] for k in space if k in spec})
    study.optimize(lambda t: score({**spec, **suggest(t, space)}), n_trials=trials)
    return {k: study.best_params[k] for k in space}


def select_best(
    task: Task,
    candidates: Mapping[str, Any],
    ctx: ModelContext,
    inputs: Sequence[Any],
    labels: np.ndarray,
    sel: DictConfig,
    spaces: Mapping[str, Mapping[str, Any]] | None = None,
    refit_all: bool = False,
    incumbent: str | None = None,
) -> Selection:
    """inputs/labels: the labelled items as the task defines them (texts, or sentence lists).

    With `sel.trials` > 0, each candidate with a search space in `spaces` is tuned first (on
    its own validation splits). `refit_all` refits every candidate on all labelled items (a
    query-by-committee needs them), not just the winner. `incumbent`: the key kept last round.
    """
    trials = int(sel.get("trials", 0) or 0)
    spaces = spaces or {}
    specs = {k: {p: v for p, v in s.items() if p != "validation"} for k, s in candidates.items()}
    if len(candidates) == 1 and not (trials and spaces):  # nothing to choose between
        return _lone(task, specs, ctx, inputs, labels)
    rule = str(sel.get("rank_by", "metric"))
    base = [k for k, s in candidates.items() if s["name"] != ENSEMBLE]
    plans, how = _plans(candidates, base, len(labels), task.strata(labels), sel, ctx.seed)
    data = (task, ctx, inputs, labels, rule)
    done, seconds, tuned = _validate_all(data, specs, plans, spaces, trials)
    weights = _votes(data, specs, base, done, seconds)
    done, on = _like_with_like(data, done, base)
    scores = {k: done[k].metric for k in candidates}
    losses = {k: float(np.nanmean(done[k].losses)) for k in candidates} if rule != "metric" else {}
    if rule == "metric":
        chosen = max(scores, key=lambda k: scores[k])  # ties: first in candidate order
        why = f"highest validation {task.selection_metric} ({scores[chosen]:.4f}){on}"
    else:
        chosen, why = keep(
            {k: done[k].losses for k in candidates},
            incumbent,
            rule,
            float(sel.get("switch_confidence", 0.0)),
            np.random.default_rng([ctx.seed, 1]),
        )
        why += on
    need = set(base) if refit_all else set(weights.get(chosen, {chosen: 1.0}))
    members: dict[str, Model] = {}
    for key in [k for k in base if k in need]:
        t0 = time.perf_counter()
        members[key] = build_model(ctx, specs[key])
        members[key].fit(*task.fit_data(list(inputs), labels))
        seconds[key] += time.perf_counter() - t0
    if chosen in weights:
        w = weights[chosen]
        model: Model = Ensemble.of({m: members[m] for m in w}, w, ctx)
        spec = {**specs[chosen], "members": {m: specs[m] for m in w}, "weights": w}
    else:
        model, spec = members[chosen], specs[chosen]
    return Selection(scores, chosen, model, how, seconds, tuned, spec, members, losses, why)


def _lone(
    task: Task, specs: dict[str, Any], ctx: ModelContext, inputs: Sequence[Any], labels: np.ndarray
) -> Selection:
    """One candidate and nothing to tune: fit it on everything, validate nothing."""
    (key,) = specs
    t0 = time.perf_counter()
    model = build_model(ctx, specs[key])
    model.fit(*task.fit_data(list(inputs), labels))
    seconds = {key: time.perf_counter() - t0}
    return Selection(
        {}, key, model, "none", seconds, {}, specs[key], {key: model}, {}, "the only candidate"
    )


def _validate_all(
    data: tuple[Any, ...],
    specs: dict[str, Any],
    plans: Mapping[str, tuple[Splits, str]],
    spaces: Mapping[str, Mapping[str, Any]],
    trials: int,
) -> tuple[dict[str, Validated], dict[str, float], dict[str, dict[str, Any]]]:
    """Every non-vote candidate's (the keys of `plans`) out-of-fold predictions on its own
    splits (tuned first where asked); `specs` takes the tuned values. Returns the
    validations, seconds and tuned values by key."""
    task, ctx, inputs, labels, rule = data
    done: dict[str, Validated] = {}
    seconds: dict[str, float] = {}
    tuned: dict[str, dict[str, Any]] = {}
    work = sum(
        (trials if trials and spaces.get(k) else 1) * sum(len(f) for f in splits)
        for k, (splits, _) in plans.items()
    )
    with progress_bar(f"training {len(plans)} candidates on {len(labels)}", work) as bar:
        for j, (key, (repeats, _)) in enumerate(plans.items()):
            t0 = time.perf_counter()
            seen: dict[str, Validated] = {}

            def score(
                s: dict[str, Any], seen: dict[str, Validated] = seen, repeats: Splits = repeats
            ) -> float:
                v = validate(task, s, ctx, inputs, labels, repeats, rule, bar)
                seen[json.dumps(s, sort_keys=True, default=str)] = v
                return v.metric if rule == "metric" else -float(np.nanmean(v.losses))

            if trials and spaces.get(key):
                tuned[key] = _tune(specs[key], spaces[key], trials, (ctx.seed + j) % 2**32, score)
                specs[key] = {**specs[key], **tuned[key]}
                done[key] = seen[json.dumps(specs[key], sort_keys=True, default=str)]
            else:
                score(specs[key])
                done[key] = next(iter(seen.values()))
            seconds[key] = time.perf_counter() - t0
    return done, seconds, tuned


def _like_with_like(
    data: tuple[Any, ...], done: dict[str, Validated], base: list[str]
) -> tuple[dict[str, Validated], str]:
    """Every record on the items all non-vote candidates validated, when they validated
    different ones (a hold-out candidate among cross-validated ones), and the note that says
    so ('' when they all validated the same items)."""
    task, ctx, _, labels, _ = data
    common = np.logical_and.reduce([done[k].items for k in base])
    if all(np.array_equal(done[k].items, common) for k in base):
        return done, ""
    out = {k: v.on(common, task, labels, ctx.label_names) for k, v in done.items()}
    return out, f" on the {int(common.sum())} items every candidate validated"


def _plans(
    candidates: Mapping[str, Any],
    base: list[str],
    n: int,
    y: np.ndarray | None,
    sel: DictConfig,
    seed: int,
) -> tuple[dict[str, tuple[Splits, str]], str]:
    """Each non-vote candidate's splits (by its `validation:`), and how they were validated:
    one way, or the cross-validated candidates' way first and then who held out, e.g.
    "5-fold CV x2; minilm_token_cls: 20% hold-out"."""
    plans = {
        k: candidate_splits(n, y, sel, seed, candidates[k].get("validation", "cv")) for k in base
    }
    groups: dict[str, list[str]] = {}
    for key in sorted(base, key=lambda k: candidates[k].get("validation") == "holdout"):
        groups.setdefault(plans[key][1], []).append(key)
    first, *rest = groups
    return plans, "; ".join([first, *(f"{', '.join(groups[h])}: {h}" for h in rest)])


def vote_weights(parts: Sequence[Validated], labels: np.ndarray, how: str) -> np.ndarray:
    """A soft vote's member weights: `equal`, or `oof`, fitted to the members' out-of-fold
    probabilities on the items every member validated."""
    if how != "oof":
        return np.full(len(parts), 1 / len(parts))
    aligned = _aligned(parts)
    rows = np.logical_and.reduce([seen for _, seen in aligned])
    probs = [[_probs(v)[at[m]][rows] for at, _ in aligned] for m, v in enumerate(parts)]
    return fit_weights(probs, np.asarray(labels)[rows])


def _votes(
    data: tuple[Any, ...],
    specs: dict[str, Any],
    base: list[str],
    done: dict[str, Validated],
    seconds: dict[str, float],
) -> dict[str, dict[str, float]]:
    """Each soft vote validated from its members' out-of-fold probabilities (no training):
    adds to `done` and `seconds`, returns each vote's member weights."""
    task, ctx, _, labels, rule = data
    weights: dict[str, dict[str, float]] = {}
    for key in [k for k, s in specs.items() if s["name"] == ENSEMBLE]:
        members = list(specs[key].get("members") or base)
        parts = [done[m] for m in members]
        w = vote_weights(parts, labels, specs[key].get("weights", "equal"))
        weights[key] = {m: float(x) for m, x in zip(members, w, strict=True)}
        done[key] = _vote(task, parts, w, labels, rule, ctx.label_names)
        seconds[key] = 0.0
    return weights
