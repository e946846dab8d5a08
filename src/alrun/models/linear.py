"""Logistic regression whose regularisation is chosen on held-out folds, and TF-IDF + LR."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any, ClassVar

import joblib
import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import TfidfTransformer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from threadpoolctl import ThreadpoolController

from alrun.models.base import MODELS, ModelContext, expand_probs
from alrun.strategies import Predictions


class RowSpace:
    """Exact change of basis for L2-regularised linear models with more features than rows.

    The penalised optimum of a linear model on X (n rows, d > n features) lies in the span of
    X's rows (the representer theorem): w = V z with V an orthonormal basis of that span. In
    that basis the features are Z = X V = U S (from the eigendecomposition X X' = U S^2 U', an
    n x n problem), ||w|| = ||z||, and every subset of the rows keeps its optimum in the same
    span, so the inner CV folds are exact too. Solving on Z (n x n) instead of X (n x 50,000
    TF-IDF columns) is the same model, two orders of magnitude cheaper; `lift` maps the
    coefficients back to X's columns. Directions with eigenvalue below `rtol` x the largest
    (duplicated rows) carry no data and are dropped. Used up to `max_rows` rows (the n x n
    eigendecomposition grows as n^3; beyond, sklearn's solver runs on X itself).
    """

    max_rows = 3000

    def __init__(self, X, rtol: float = 1e-10) -> None:
        self.X = X.astype(np.float64) if not sp.issparse(X) else X.astype(np.float64).tocsr()
        K = self.X @ self.X.T
        K = K.toarray() if sp.issparse(K) else np.asarray(K)
        lam, U = np.linalg.eigh((K + K.T) / 2)
        keep = lam > rtol * max(float(lam[-1]), 0.0)
        if not keep.any():  # every row is zero: one zero column, the intercept does the work
            self.Z, self._back = np.zeros((len(lam), 1)), np.zeros((len(lam), 1))
            return
        root = np.sqrt(lam[keep])
        self.Z = U[:, keep] * root  # n x r, Z Z' = X X'
        self._back = U[:, keep] / root  # Z-coefficients -> coefficients of X's rows

    def lift(self, coef_z: np.ndarray) -> np.ndarray:
        """Coefficients on Z's columns (k x r) -> on X's columns (k x d), dense."""
        a = coef_z @ self._back.T  # k x n: w = a X
        return np.asarray((self.X.T @ a.T).T)


@cache
def _blas() -> ThreadpoolController:
    return ThreadpoolController()


class TunedLogReg:
    """Multinomial LR with C picked by inner cross-validated log-loss on the training labels.

    A fixed C=1 underfits at 10-20 labels; the best C moves as the labelled set grows, so it is
    re-chosen at every fit (never on test data: only the labels passed to `fit` are used).
    With more features than labelled rows (TF-IDF, and embeddings below 384 labels) every fit
    runs in the rows' span (`RowSpace`), solved to a tight tolerance: the same optimum.
    """

    def __init__(
        self,
        n_classes: int,
        Cs: Sequence[float],
        default_C: float,
        seed: int,
        max_iter: int = 1000,
        inner_folds: int = 3,
        tol: float = 1e-6,
    ) -> None:
        self.n_classes, self.Cs, self.default_C = n_classes, list(Cs), default_C
        self.seed, self.max_iter, self.inner_folds, self.tol = seed, max_iter, inner_folds, tol
        self.C: float = default_C
        self._clf: LogisticRegression | None = None
        self._only: int | None = None  # the single class seen, when only one was

    def _new(self, C: float) -> LogisticRegression:
        # newton-cg: ~15x faster than lbfgs on wide sparse TF-IDF here, same solution
        return LogisticRegression(
            C=C, solver="newton-cg", max_iter=self.max_iter, tol=self.tol, random_state=self.seed
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
        # small dense problems: threaded BLAS costs more in hand-offs than it gains (an
        # eigendecomposition of 200 x 200 took 80 ms on 2 threads, 6 ms on one)
        with _blas().limit(limits=1, user_api="blas"), warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            small = X.shape[1] > X.shape[0] and X.shape[0] <= RowSpace.max_rows
            basis = RowSpace(X) if small else None
            Z = basis.Z if basis is not None else X
            self.C = self._choose_C(Z, y)
            clf = self._new(self.C).fit(Z, y)
        if basis is not None:  # a plain sklearn estimator on X's own columns
            clf = copy.copy(clf)
            clf.coef_ = basis.lift(clf.coef_)
            clf.n_features_in_ = X.shape[1]
        self._clf = clf
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


class TermCounts:
    """Each text's term counts under one analyser, memoised per process as ids into a table.

    Analysing a text (accents, lower case, regex tokens, n-grams) is most of the cost of fitting
    TF-IDF on a fold and of scoring the pool, and depends on the text alone, so it is done once
    per text per process and shared by every fold, round and candidate. At most `max_docs`
    texts are kept (about 5 KB each for a news article: 250 MB at most), so a huge pool cannot
    fill memory; texts past that are analysed every time (about 3,000 articles/s here, against
    55,000/s memoised).
    """

    max_docs = 50_000
    _by_settings: ClassVar[dict[tuple, TermCounts]] = {}

    def __init__(self, ngram_max: int, strip_accents: str | None) -> None:
        self.params = {
            "analyzer": "word",
            "ngram_range": (1, ngram_max),
            "strip_accents": strip_accents,
        }
        self.analyse = TfidfVectorizer(**self.params).build_analyzer()
        self.terms: list[str] = []  # term id -> term
        self.ids: dict[str, int] = {}  # term -> term id
        self.docs: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # text -> (ids, counts)

    @classmethod
    def get(cls, ngram_max: int, strip_accents: str | None) -> TermCounts:
        key = (ngram_max, strip_accents)
        if key not in cls._by_settings:
            cls._by_settings[key] = cls(ngram_max, strip_accents)
        return cls._by_settings[key]

    def __call__(self, text: str, force: bool = True) -> tuple[np.ndarray, np.ndarray] | None:
        """(sorted unique term ids, their counts) of a text; None when the memo is full, the
        text is not in it, and `force` is false (the caller analyses it by itself)."""
        got = self.docs.get(text)
        if got is not None or not (force or len(self.docs) < self.max_docs):
            return got
        ids, terms, get = self.ids, self.terms, self.ids.get
        seq = []
        for term in self.analyse(text):
            i = get(term)
            if i is None:
                i = ids[term] = len(terms)
                terms.append(term)
            seq.append(i)
        ids_, counts = np.unique(np.asarray(seq, dtype=np.int64), return_counts=True)
        got = (ids_.astype(np.int32), counts.astype(np.int32))  # half the memory of int64
        if len(self.docs) < self.max_docs:
            self.docs[text] = got
        return got


class Tfidf:
    """TfidfVectorizer(min_df=1, max_features, sublinear_tf, ngram_range, strip_accents), fitted
    from memoised term counts: the same vocabulary (alphabetical columns, the same most frequent
    `max_features` terms, ties broken by the same sort) and the same weights, computed by
    sklearn's TfidfTransformer. `to_sklearn` gives the equivalent fitted TfidfVectorizer."""

    def __init__(
        self, max_features: int | None, ngram_max: int, sublinear_tf: bool, strip_accents: str
    ) -> None:
        self.max_features, self.sublinear_tf = max_features, sublinear_tf
        self.counts = TermCounts.get(ngram_max, strip_accents)
        self.tfidf = TfidfTransformer(sublinear_tf=sublinear_tf)
        self.term_ids = np.zeros(0, dtype=np.int64)  # column -> term id
        self._column = np.zeros(0, dtype=np.int32)
        self._vocabulary: dict[str, int] | None = None

    def _rows(self, texts: Sequence[str], force: bool):
        rows = [self.counts(t, force) for t in texts]
        indptr = np.zeros(len(texts) + 1, dtype=np.int64)
        np.cumsum([len(r[0]) if r is not None else 0 for r in rows], out=indptr[1:])
        return rows, indptr

    def fit_transform(self, texts: Sequence[str]):
        rows, indptr = self._rows(texts, force=True)
        ids = np.concatenate([r[0] for r in rows]) if rows else np.zeros(0, dtype=np.int32)
        data = np.concatenate([r[1] for r in rows]).astype(np.float64) if rows else ids * 0.0
        present, col = np.unique(ids, return_inverse=True)
        if len(present) == 0:
            raise ValueError("empty vocabulary; perhaps the documents only contain stop words")
        names = np.array([self.counts.terms[i] for i in present])
        alpha = np.argsort(names, kind="stable")  # sklearn sorts its vocabulary by term
        rank = np.empty_like(alpha)
        rank[alpha] = np.arange(len(alpha))
        X = sp.csr_matrix((data, rank[col], indptr), shape=(len(texts), len(present)))
        term_ids = present[alpha]
        if self.max_features is not None and len(present) > self.max_features:
            # CountVectorizer._limit_features: the most frequent terms, same argsort
            tfs = np.asarray(X.sum(axis=0)).ravel()
            keep = np.zeros(len(tfs), dtype=bool)
            keep[(-tfs).argsort()[: self.max_features]] = True
            X, term_ids = X[:, np.flatnonzero(keep)], term_ids[keep]
        X.sort_indices()  # one layout whatever order texts were first analysed in: same bits
        self.term_ids, self._vocabulary = term_ids, None
        self._column = np.full(len(self.counts.terms), -1, dtype=np.int32)  # term id -> column
        self._column[term_ids] = np.arange(len(term_ids))
        return self.tfidf.fit_transform(X)

    @property
    def vocabulary(self) -> dict[str, int]:
        if self._vocabulary is None:
            terms = self.counts.terms
            self._vocabulary = {terms[i]: j for j, i in enumerate(self.term_ids)}
        return self._vocabulary

    def transform(self, texts: Sequence[str]):
        rows, _ = self._rows(texts, force=False)
        cols, vals, lens = [], [], []
        vocabulary = self.vocabulary if any(r is None for r in rows) else {}
        for text, r in zip(texts, rows, strict=True):
            if r is None:  # not memoised: analyse it here, like sklearn does
                counts: dict[int, int] = {}
                for term in self.counts.analyse(text):
                    j = vocabulary.get(term)
                    if j is not None:
                        counts[j] = counts.get(j, 0) + 1
                c = np.fromiter(counts, dtype=np.int32, count=len(counts))
                v = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
            else:
                ids, n = r
                inside = ids < len(self._column)  # terms first seen after the fit: not in it
                c = self._column[ids[inside]]
                v = n[inside][c >= 0].astype(np.float64)
                c = c[c >= 0]
            cols.append(c)
            vals.append(v)
            lens.append(len(c))
        indptr = np.zeros(len(texts) + 1, dtype=np.int64)
        np.cumsum(lens, out=indptr[1:])
        X = sp.csr_matrix(
            (
                np.concatenate(vals) if vals else np.zeros(0),
                np.concatenate(cols) if cols else np.zeros(0, dtype=np.int32),
                indptr,
            ),
            shape=(len(texts), len(self.term_ids)),
        )
        X.sort_indices()
        return self.tfidf.transform(X, copy=False)

    def to_sklearn(self) -> TfidfVectorizer:
        """The equivalent fitted sklearn vectoriser (what `save` writes)."""
        vec = TfidfVectorizer(
            **self.counts.params,
            vocabulary=self.vocabulary,
            sublinear_tf=self.sublinear_tf,
            min_df=1,
        )
        vec.idf_ = self.tfidf.idf_
        return vec


CHUNK = 10_000  # texts scored at a time


def chunked_proba(texts: Sequence[str], proba) -> Predictions:
    """proba(texts) in chunks of CHUNK texts: a pool of 100,000s of articles never holds its
    whole feature matrix (TF-IDF rows) at once."""
    starts = range(0, len(texts), CHUNK) if len(texts) > CHUNK else [0]
    return Predictions(np.concatenate([proba(texts[i : i + CHUNK]) for i in starts]))


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
        self.vec: Tfidf | TfidfVectorizer = Tfidf(max_features, ngram_max, sublinear_tf, "unicode")
        self.lr = TunedLogReg(ctx.n_classes, Cs, default_C, ctx.seed)

    def fit(self, texts: Sequence[str], labels: np.ndarray) -> None:
        self.lr.fit(self.vec.fit_transform(texts), labels)

    def predict(self, texts: Sequence[str]) -> Predictions:
        return chunked_proba(texts, lambda part: self.lr.predict_proba(self.vec.transform(part)))

    def save(self, path: Path) -> None:
        """sklearn's documented persistence: joblib (a pickle: load only trusted files)."""
        vec = self.vec.to_sklearn() if isinstance(self.vec, Tfidf) else self.vec
        joblib.dump({"vectorizer": vec, **self.lr.state()}, path / "model.joblib")

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
