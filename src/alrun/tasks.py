"""Tasks: what a label is, how predictions are scored, and what one label costs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

from alrun.data import TextDataset
from alrun.errors import AlrunError
from alrun.registry import Registry


@dataclass
class Multiclass:
    """One label per document; selection on a validation metric, cost in documents/tokens."""

    selection_metric: str = "accuracy"
    name: str = "multiclass"

    def score(self, y_true: np.ndarray, probs: np.ndarray) -> float:
        """The single number candidates are ranked by (higher is better)."""
        return float(self.metrics(y_true, probs, None)[self.selection_metric])

    def metrics(
        self, y_true: np.ndarray, probs: np.ndarray, label_names: list[str] | None
    ) -> dict[str, Any]:
        y_pred = probs.argmax(axis=1)
        labels = np.arange(probs.shape[1])
        out: dict[str, Any] = {
            "accuracy": float(accuracy_score(y_true, y_pred)),
            "macro_f1": float(
                f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)
            ),
        }
        if label_names is not None:
            p, r, f, s = precision_recall_fscore_support(
                y_true, y_pred, labels=labels, zero_division=0
            )
            out["per_class"] = {
                name: {
                    "precision": float(p[i]),
                    "recall": float(r[i]),
                    "f1": float(f[i]),
                    "support": int(s[i]),
                }
                for i, name in enumerate(label_names)
            }
        return out

    def cost(self, data: TextDataset, idx: np.ndarray) -> dict[str, int]:
        """Labelled amount in every unit a curve may be drawn against."""
        return {
            "documents": len(idx),
            "tokens": int(sum(len(data.texts[i].split()) for i in idx)),
        }


TASKS: Registry = Registry("task", "task")


@TASKS.register
def multiclass(selection_metric: str = "accuracy") -> Multiclass:
    if selection_metric not in ("accuracy", "macro_f1"):
        raise AlrunError(f"task.selection_metric={selection_metric!r}; choose accuracy or macro_f1")
    return Multiclass(selection_metric=selection_metric)
