"""Logistic regression whose regularisation is chosen on held-out folds, and TF-IDF + LR."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from alrun.models import MODELS, ModelContext, expand_probs
from alrun.strategies import Predictions


class TunedLogReg:
    """Multinomial LR with C picked by inner cross-validated log-loss on the training labels.

    A fixed C=1 underfits at 10-20 labels; the best C moves as the labelled set grows, so it is
    re-chosen at every fit (never on test data: only the labels passed to `fit` are used).
    """

    def __init__(
        self,
        n_classes: int,
        Cs: Sequence[float],
        default_C: float,
        seed: int,
        max_iter: int = 1000,
        inner_folds: int = 3,
    ) -> None:
        self.n_classes, self.Cs, self.default_C = n_classes, list(Cs), default_C
        self.seed, self.max_iter, self.inner_folds = seed, max_iter, inner_folds
        self.C: float = default_C
        self._clf: LogisticRegression | None = None
        self._only: int | None = None  # the single class seen, when only one was

    def _new(self, C: float) -> LogisticRegression:
        # newton-cg: ~15x faster than lbfgs on wide sparse TF-IDF here, same solution
        return LogisticRegression(
            C=C, solver="newton-cg", max_iter=self.max_iter, random_state=self.seed
        )

    def _choose_C(self, X, y: np.ndarray) -> float:
        counts = np.bincount(y)
        k = min(self.inner_folds, int(counts[counts > 0].min()))
        if k < 2 or len(self.Cs) == 1:
            return self.default_C  # too few examples per class to validate anything
        folds = list(StratifiedKFold(k, shuffle=True, random_state=self.seed).split(X, y))
        losses = []
        for C in self.Cs:
            loss = 0.0
            for tr, va in folds:
                clf = self._new(C).fit(X[tr], y[tr])
                p = expand_probs(clf.predict_proba(X[va]), clf.classes_, self.n_classes)
                loss -= np.log(np.clip(p[np.arange(len(va)), y[va]], 1e-12, None)).sum()
            losses.append(loss)
        return self.Cs[int(np.argmin(losses))]  # first (smallest) C wins ties

    def fit(self, X, y: np.ndarray) -> TunedLogReg:
        present = np.unique(y)
        if len(present) == 1:
            self._only, self._clf = int(present[0]), None
            return self
        self._only = None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.C = self._choose_C(X, y)
            self._clf = self._new(self.C).fit(X, y)
        return self

    def predict_proba(self, X) -> np.ndarray:
        if self._clf is None:
            out = np.zeros((X.shape[0], self.n_classes))
            out[:, self._only] = 1.0
            return out
        return expand_probs(self._clf.predict_proba(X), self._clf.classes_, self.n_classes)

    def state(self) -> dict[str, Any]:
        """The fitted state: sklearn's estimator plus the chosen C (for joblib)."""
        return {"classifier": self._clf, "only_class": self._only, "C": self.C}

    def restore(self, state: dict[str, Any]) -> None:
        self._clf, self._only, self.C = state["classifier"], state["only_class"], state["C"]


class TfidfLogReg:
    """Sparse lexical baseline: TF-IDF fitted on the labelled texts only, then tuned LR."""

    def __init__(
        self,
        ctx: ModelContext,
        max_features: int,
        ngram_max: int,
        sublinear_tf: bool,
        Cs: Sequence[float],
        default_C: float,
    ) -> None:
        self.vec = TfidfVectorizer(
            max_features=max_features,
            ngram_range=(1, ngram_max),
            sublinear_tf=sublinear_tf,
            strip_accents="unicode",
            min_df=1,
        )
        self.lr = TunedLogReg(ctx.n_classes, Cs, default_C, ctx.seed)

    def fit(self, texts: Sequence[str], labels: np.ndarray) -> None:
        self.lr.fit(self.vec.fit_transform(texts), labels)

    def predict(self, texts: Sequence[str]) -> Predictions:
        return Predictions(self.lr.predict_proba(self.vec.transform(texts)))

    def save(self, path: Path) -> None:
        """sklearn's documented persistence: joblib (a pickle: load only trusted files)."""
        joblib.dump({"vectorizer": self.vec, **self.lr.state()}, path / "model.joblib")

    def load(self, path: Path) -> None:
        state = joblib.load(path / "model.joblib")
        self.vec = state["vectorizer"]
        self.lr.restore(state)


@MODELS.register
def tfidf_logreg(
    ctx: ModelContext,
    max_features: int = 50000,
    ngram_max: int = 2,
    sublinear_tf: bool = True,
    Cs: Sequence[float] = (1, 10, 100, 1000),
    default_C: float = 100.0,
) -> TfidfLogReg:
    return TfidfLogReg(ctx, max_features, ngram_max, sublinear_tf, Cs, default_C)
