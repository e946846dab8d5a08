"""A soft vote of the other candidates: the weighted mean of their class probabilities.

Selection validates it for free from its members' out-of-fold probabilities (see
`alrun.selection`); the weights are equal, or fitted to minimise the out-of-fold log-loss
(never to in-sample predictions). Averaging a lexical and two embedding models cancels much of
each one's few-label variance, which is what a kept model needs at 10-300 labels.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import minimize

from alrun.models.base import MODELS, Model, ModelContext, build_model
from alrun.strategies import Predictions

ENSEMBLE = "ensemble"


def fit_weights(probs: Sequence[Sequence[np.ndarray]], labels: np.ndarray) -> np.ndarray:
    """Simplex weights of M members minimising the log-loss of their weighted mean.

    probs[m][r]: member m's out-of-fold probs[n, C] in CV repeat r. Softmax-parametrised,
    started from equal weights, so a flat optimum stays equal.
    """
    y = np.asarray(labels, dtype=np.int64)
    gold = np.stack([np.concatenate([p[np.arange(len(y)), y] for p in member]) for member in probs])

    def loss(a: np.ndarray) -> float:
        w = np.exp(a - a.max())
        w /= w.sum()
        return float(-np.log(np.clip(w @ gold, 1e-12, None)).mean())

    a = minimize(loss, np.zeros(len(probs)), method="Nelder-Mead", options={"xatol": 1e-4}).x
    w = np.exp(a - a.max())
    return w / w.sum()


class Ensemble:
    """Members fitted on the same labels; predict = weighted mean of their probabilities."""

    def __init__(
        self,
        ctx: ModelContext,
        members: Mapping[str, dict[str, Any]] | None = None,
        weights: str | Mapping[str, float] = "equal",
    ) -> None:
        self.ctx = ctx
        self.specs = dict(members or {})
        self.models: dict[str, Model] = {}
        w = weights if isinstance(weights, Mapping) else dict.fromkeys(self.specs, 1.0)
        total = sum(w.values()) or 1.0
        self.weights = {k: float(v) / total for k, v in w.items()}

    @classmethod
    def of(cls, models: Mapping[str, Model], weights: Mapping[str, float], ctx: ModelContext):
        """An ensemble of members already fitted (selection refits them once, for both)."""
        out = cls(ctx, {}, weights)
        out.models = dict(models)
        return out

    def fit(self, texts: Sequence[str], labels: np.ndarray) -> None:
        if not self.specs:
            raise ValueError("an ensemble needs its members' specs to fit; selection builds it")
        for key, spec in self.specs.items():
            self.models[key] = build_model(self.ctx, spec)
            self.models[key].fit(texts, labels)

    def predict(self, texts: Sequence[str]) -> Predictions:
        probs = sum(w * self.models[k].predict(texts).probs for k, w in self.weights.items())
        return Predictions(np.asarray(probs))

    def save(self, path: Path) -> None:
        """Each member in its own folder, in its own format; the weights in ensemble.json."""
        for key, model in self.models.items():
            (path / key).mkdir()
            model.save(path / key)
        (path / "ensemble.json").write_text(
            json.dumps({"weights": self.weights}, indent=2) + "\n", encoding="utf-8"
        )

    def load(self, path: Path) -> None:
        for key, spec in self.specs.items():
            self.models[key] = build_model(self.ctx, spec)
            self.models[key].load(path / key)


@MODELS.register
def ensemble(
    ctx: ModelContext,
    members: Mapping[str, dict[str, Any]] | Sequence[str] | None = None,
    weights: str | Mapping[str, float] = "oof",
) -> Ensemble:
    """`members`: candidate keys to vote (default: every other candidate); `weights`:
    `equal` or `oof` (fitted to the out-of-fold log-loss). A saved ensemble holds its
    members' specs and the weights it used."""
    specs = members if isinstance(members, Mapping) else {}
    return Ensemble(ctx, specs, weights)
