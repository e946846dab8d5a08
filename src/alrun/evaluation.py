"""The evaluation sample: metrics on a small labelled random sample, with bootstrap intervals.

Without a gold test set, a person labels N uniformly random pool items that never enter
training; each round the kept model is scored on them. On 50-200 items the point value alone
misleads, so every headline metric comes with a percentile bootstrap interval. Items (documents,
or sentences when they are the unit) are what is resampled, never tokens or entities: errors
cluster within an item, and resampling smaller pieces would treat them as independent and make
the interval too narrow.

Speed: per-item sufficient statistics are computed once (multiclass: correct, per-class tp,
gold and predicted counts; NER: matched, gold and predicted entities), the resamples are a
weight matrix W[n_boot, n_items] of multinomial counts, and every resample's counts are one
matrix product W @ counts, from which the metrics follow in closed form.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from alrun.data.tags import entities

# What the evaluation sample reports, per task: the metrics that get an interval.
EVAL_METRICS: dict[str, tuple[str, ...]] = {
    "multiclass": ("accuracy", "macro_f1"),
    "ner": ("f1", "precision", "recall"),
}


def item_counts(task_name: str, gold: Any, pred: Any, label_names: Sequence[str]) -> np.ndarray:
    """Per-item sufficient statistics, float64 [n_items, k]: the metrics of any weighting of
    the items are `metrics_of_counts(task_name, weights @ counts)`.

    multiclass: [1, correct, tp_0..tp_C-1, gold_0.., pred_0..] (C = len(label_names)).
    ner: [matched entities, gold entities, predicted entities], counted as `entity_scores`
    counts them (conlleval chunks, a match is the same span and type).
    """
    if task_name == "multiclass":
        return _multiclass_counts(gold, pred, len(label_names))
    if task_name == "ner":
        return _ner_counts(gold, pred, label_names)
    raise ValueError(f"no evaluation sample statistics for task {task_name!r}")


def _multiclass_counts(gold: Any, pred: Any, n_classes: int) -> np.ndarray:
    g = np.asarray(list(gold), dtype=np.int64)
    p = np.asarray(list(pred), dtype=np.int64)
    if g.shape != p.shape:
        raise ValueError(f"{len(g)} gold labels but {len(p)} predictions")
    both = np.concatenate([g, p])
    if len(both) and (both.min() < 0 or both.max() >= n_classes):
        raise ValueError(f"class ids must lie in 0..{n_classes - 1}")
    eye = np.eye(n_classes)
    g1, p1 = eye[g], eye[p]
    ones = np.ones((len(g), 1))
    correct = (g == p).astype(np.float64)[:, None]
    return np.hstack([ones, correct, g1 * p1, g1, p1])


def _ner_counts(gold: Any, pred: Any, label_names: Sequence[str]) -> np.ndarray:
    gold, pred = list(gold), list(pred)
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold items but {len(pred)} predicted items")
    out = np.zeros((len(gold), 3))
    for i, (g_item, p_item) in enumerate(zip(gold, pred, strict=True)):
        for g, p in zip(g_item, p_item, strict=True):
            if len(g) != len(p):
                raise ValueError(f"sentence of {len(g)} gold tags has {len(p)} predicted tags")
            ge = set(entities([label_names[t] for t in g]))
            pe = set(entities([label_names[t] for t in p]))
            out[i] += (len(ge & pe), len(ge), len(pe))
    return out


def metrics_of_counts(task_name: str, counts: np.ndarray) -> dict[str, np.ndarray]:
    """Headline metrics from summed counts [..., k] (any leading shape, e.g. one row per
    resample), computed as `Multiclass.metrics` / `entity_scores` compute them."""
    c = np.asarray(counts, dtype=np.float64)
    if task_name == "multiclass":
        n_classes = (c.shape[-1] - 2) // 3
        tp, n_gold, n_pred = np.split(c[..., 2:], [n_classes, 2 * n_classes], axis=-1)
        # sklearn's F1 = 2tp / (2tp + fp + fn) = 2tp / (gold + pred); 0 when both are 0
        f1 = _safe_divide(2 * tp, n_gold + n_pred)
        return {"accuracy": _safe_divide(c[..., 1], c[..., 0]), "macro_f1": f1.mean(axis=-1)}
    if task_name == "ner":
        tp, n_gold, n_pred = c[..., 0], c[..., 1], c[..., 2]
        p, r = _safe_divide(tp, n_pred), _safe_divide(tp, n_gold)
        return {"f1": _safe_divide(2 * p * r, p + r), "precision": p, "recall": r}
    raise ValueError(f"no evaluation sample statistics for task {task_name!r}")


def _safe_divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, 0 where den is 0 (zero_division=0, as the task metrics do)."""
    num, den = np.broadcast_arrays(np.asarray(num, float), np.asarray(den, float))
    return np.divide(num, den, out=np.zeros(num.shape), where=den != 0)


def resample_weights(n_items: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """W[n_boot, n_items], float64: how often each item is drawn in each resample of
    n_items draws with replacement (each row a multinomial count vector summing to n_items)."""
    idx = rng.integers(0, n_items, size=(n_boot, n_items))
    idx += np.arange(n_boot, dtype=idx.dtype)[:, None] * n_items
    counts = np.bincount(idx.ravel(), minlength=n_boot * n_items)
    return counts.reshape(n_boot, n_items).astype(np.float64)


def bootstrap_intervals(
    task_name: str,
    gold: Any,
    pred: Any,
    label_names: Sequence[str],
    rng: np.random.Generator,
    n_boot: int = 1000,
    level: float = 0.95,
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap interval of each headline metric, resampling items.

    gold/pred: multiclass, one class id per item; NER, per item a list of sentences, each an
    int array of tag ids into label_names (as `Ner.metrics` takes them). The percentile
    interval needs no normal approximation and stays inside the metric's range; resampling
    whole items keeps the errors that cluster within a document or sentence together.
    """
    if not 0 < level < 1:
        raise ValueError(f"level={level} must lie strictly between 0 and 1")
    if n_boot < 1:
        raise ValueError(f"n_boot={n_boot} must be at least 1")
    counts = item_counts(task_name, gold, pred, label_names)
    if len(counts) == 0:
        raise ValueError("the evaluation sample is empty")
    weights = resample_weights(len(counts), n_boot, rng)
    values = metrics_of_counts(task_name, weights @ counts)
    tail = (1 - level) / 2
    out = {}
    for name in EVAL_METRICS[task_name]:
        low, high = np.quantile(values[name], [tail, 1 - tail])
        out[name] = (float(low), float(high))
    return out


def eval_report(
    task_name: str,
    gold: Any,
    pred: Any,
    label_names: Sequence[str],
    point: dict[str, Any],
    rng: np.random.Generator,
    n_boot: int = 1000,
    level: float = 0.95,
) -> dict[str, Any]:
    """A round's `row["eval"]`: each headline metric's point value (from `point`, the task's
    own metrics on the sample), `<metric>_low`, `<metric>_high`, the sample size `n` and the
    interval's `level`.

    The point value is not forced inside the interval: for a skewed statistic (macro F1 with
    rare classes) the percentile interval may sit beside it, and that is worth seeing.
    """
    gold, pred = list(gold), list(pred)
    intervals = bootstrap_intervals(task_name, gold, pred, label_names, rng, n_boot, level)
    out: dict[str, Any] = {}
    for name, (low, high) in intervals.items():
        out |= {name: float(point[name]), f"{name}_low": low, f"{name}_high": high}
    return out | {"n": len(gold), "level": level}
