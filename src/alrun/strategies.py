"""Query strategies: pure functions of predictions (+ an explicit RNG) -> informativeness.

Higher score = more worth labelling. `select` turns scores into a batch of pool indices.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from alrun.registry import Registry


@dataclass
class Predictions:
    """What a model says about N items.

    Multiclass: probs[N, C], rows sum to 1. Sequences (NER): probs[N, T, C] per-token tag
    marginals padded to the longest item, mask[N, T] marking real tokens; seq_logprob[N] is
    log P(best tag sequence) and best[N, T] that sequence, where the model computes them (a
    CRF's Viterbi path); otherwise strategies and decoding fall back to the marginals.
    """

    probs: np.ndarray
    mask: np.ndarray | None = None
    seq_logprob: np.ndarray | None = None
    best: np.ndarray | None = None
    # every candidate's predictions on the same items (query-by-committee strategies only)
    committee: list[Predictions] | None = None
    # the items' document vectors (diversity-aware strategies only; see `features` in config)
    features: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.probs)


def sequence_predictions(
    marginals: Sequence[np.ndarray],
    seq_logprob: Sequence[float] | None = None,
    best: Sequence[np.ndarray] | None = None,
) -> Predictions:
    """Pad per-item [T_i, C] marginals (and optional best paths) into one Predictions."""
    n = len(marginals)
    width = max((len(m) for m in marginals), default=0)
    n_tags = marginals[0].shape[1] if n else 0
    probs = np.zeros((n, width, n_tags), dtype=np.float32)
    mask = np.zeros((n, width), dtype=bool)
    for i, m in enumerate(marginals):
        probs[i, : len(m)] = m
        mask[i, : len(m)] = True
    best_arr = None
    if best is not None:
        best_arr = np.zeros((n, width), dtype=np.int64)
        for i, b in enumerate(best):
            best_arr[i, : len(b)] = b
    lp = None if seq_logprob is None else np.asarray(seq_logprob, dtype=np.float64)
    return Predictions(probs, mask, lp, best_arr)


Strategy = Callable[..., np.ndarray]
STRATEGIES: Registry[Strategy] = Registry("strategy", "strategy")


def _is_seq(preds: Predictions) -> bool:
    return preds.probs.ndim == 3


def _mask(preds: Predictions) -> np.ndarray:
    """The token mask of sequence predictions (`sequence_predictions` always sets one)."""
    if preds.mask is None:
        raise ValueError("sequence predictions need a token mask (see sequence_predictions)")
    return preds.mask


def _best_logprob(preds: Predictions) -> np.ndarray:
    """log P(best sequence): the model's own where given, else sum of log max-marginals."""
    if preds.seq_logprob is not None:
        return np.asarray(preds.seq_logprob, dtype=np.float64)
    top = np.log(np.clip(preds.probs.max(axis=2), 1e-12, 1.0)).astype(np.float64)
    return np.where(_mask(preds), top, 0.0).sum(axis=1)


@STRATEGIES.register
def random(preds: Predictions, rng: np.random.Generator) -> np.ndarray:
    """Passive baseline: uniform scores, so the batch is a uniform sample."""
    return rng.random(len(preds.probs))


@STRATEGIES.register
def least_confidence(preds: Predictions, rng: np.random.Generator) -> np.ndarray:
    """1 - p(top class); for sequences 1 - P(best tag sequence).

    For long items P(best sequence) underflows towards 0 and the scores tie near 1, which is
    why MNLP exists; -expm1 keeps the ordering as long as float64 can.
    """
    if _is_seq(preds):
        return -np.expm1(_best_logprob(preds))
    return 1.0 - preds.probs.max(axis=1)


@STRATEGIES.register
def margin(preds: Predictions, rng: np.random.Generator) -> np.ndarray:
    """-(p1 - p2): a small gap between the two best classes is informative."""
    if preds.probs.shape[1] < 2:
        return np.zeros(len(preds.probs))
    top2 = np.sort(preds.probs, axis=1)[:, -2:]
    return -(top2[:, 1] - top2[:, 0])


def _entropy(p: np.ndarray, axis: int) -> np.ndarray:
    p = p.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p), 0.0)
    return -terms.sum(axis=axis)


@STRATEGIES.register
def entropy(preds: Predictions, rng: np.random.Generator) -> np.ndarray:
    """Shannon entropy of the class distribution (0 log 0 = 0)."""
    return _entropy(preds.probs, axis=1)


@STRATEGIES.register
def mnlp(preds: Predictions, rng: np.random.Generator) -> np.ndarray:
    """Maximum normalised log-probability (Shen et al. 2018): -log P(best sequence) / length.

    Normalising by length removes least confidence's bias towards long sentences.
    """
    n = np.maximum(_mask(preds).sum(axis=1), 1)
    return -_best_logprob(preds) / n


@STRATEGIES.register
def token_entropy(
    preds: Predictions, rng: np.random.Generator, reduction: str = "mean"
) -> np.ndarray:
    """Per-token tag entropy reduced over the item's tokens (baal's mean/max/sum)."""
    mask = _mask(preds)
    ent = np.where(mask, _entropy(preds.probs, axis=2), 0.0)
    if reduction == "sum":
        return ent.sum(axis=1)
    if reduction == "max":
        return ent.max(axis=1, initial=0.0)
    if reduction == "mean":
        return ent.sum(axis=1) / np.maximum(mask.sum(axis=1), 1)
    raise ValueError(f"strategy.reduction={reduction!r}; choose mean, max or sum")


COMMITTEE = {"committee_vote_entropy"}  # strategies that need every candidate's predictions


def _votes(p: Predictions) -> np.ndarray:
    if _is_seq(p):
        return p.best if p.best is not None else p.probs.argmax(axis=2)
    return p.probs.argmax(axis=1)


def _masked_mean(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return np.where(mask, values, 0.0).sum(axis=1) / np.maximum(mask.sum(axis=1), 1)


@STRATEGIES.register
def committee_vote_entropy(preds: Predictions, rng: np.random.Generator) -> np.ndarray:
    """Query-by-committee: the candidates trained this round vote (Dagan & Engelson 1995).

    Score = entropy of the vote distribution; for sequences the per-token vote entropy averaged
    over the item's tokens (Settles & Craven 2008). With a few members the votes take few
    values, so ties are broken by the entropy of the members' mean distribution (x 1e-3).
    """
    members = preds.committee
    if not members or len(members) < 2:
        raise ValueError(
            "committee_vote_entropy needs a committee of at least 2 candidates; "
            "list more under candidates="
        )
    votes = np.stack([_votes(m) for m in members])  # [M, N] or [M, N, T]
    n_classes = preds.probs.shape[-1]
    share = np.stack([(votes == c).mean(axis=0) for c in range(n_classes)], axis=-1)
    mean = np.mean([m.probs for m in members], axis=0)
    if _is_seq(preds):
        mask = _mask(preds)
        vote_h = _masked_mean(_entropy(share, axis=2), mask)
        mean_h = _masked_mean(_entropy(mean, axis=2), mask)
    else:
        vote_h, mean_h = _entropy(share, axis=1), _entropy(mean, axis=1)
    return vote_h + 1e-3 * mean_h


BATCH = {"diverse_margin"}  # strategies that choose the whole batch: fn(preds, rng, k)
FEATURES = BATCH  # strategies that need Predictions.features


def _kmeans(X: np.ndarray, k: int, rng: np.random.Generator, weights=None):
    from sklearn.cluster import KMeans

    seed = int(rng.integers(2**31 - 1))
    return KMeans(k, n_init=3, random_state=seed).fit(X, sample_weight=weights)


def _nearest_distinct(dist: np.ndarray) -> np.ndarray:
    """For each centre (column of dist[N, k]), the nearest item not already taken."""
    taken: list[int] = []
    for c in range(dist.shape[1]):
        for i in np.argsort(dist[:, c], kind="stable"):
            if int(i) not in taken:
                taken.append(int(i))
                break
    return np.asarray(taken, dtype=np.int64)


@STRATEGIES.register
def diverse_margin(
    preds: Predictions, rng: np.random.Generator, k: int = 1, beta: int = 10
) -> np.ndarray:
    """Diverse mini-batch (Zhdanov 2019): the beta*k smallest-margin items, clustered into k
    groups by k-means on their document vectors weighted by uncertainty (1 - margin); the
    item nearest each centre. A round of 10-20 then covers 10-20 kinds of doubt instead of
    buying near-copies of one. Returns positions of the batch, most uncertain first."""
    if preds.features is None:
        raise ValueError("diverse_margin needs document vectors (Predictions.features)")
    n = len(preds.probs)
    k = min(k, n)
    uncertainty = 1.0 + margin(preds, rng)  # 1 - (p1 - p2), in [0, 1]
    pre = select(uncertainty, min(n, max(k, beta * k)), rng)
    if len(pre) <= k:
        return pre
    X = np.asarray(preds.features[pre], dtype=np.float64)
    w = np.clip(uncertainty[pre], 1e-6, None)
    km = _kmeans(X, k, rng, w)
    picks = pre[_nearest_distinct(km.transform(X))]
    return picks[np.argsort(-uncertainty[picks], kind="stable")]


def cold_start(X: np.ndarray, k: int, rng: np.random.Generator, method: str) -> np.ndarray:
    """k pool positions for the first batch, before any model exists.

    `random`: a uniform sample. `kmeans`: the item nearest each of k k-means centres.
    `typiclust` (Hacohen, Dekel & Weinshall 2022): k k-means clusters; from each the most
    typical item, typicality = 1 / mean distance to its min(20, size - 1) nearest neighbours
    in its cluster (dense regions, not outliers: what a few labels generalise from).
    """
    n = len(X)
    k = min(k, n)
    if method == "random":
        return rng.choice(n, size=k, replace=False)
    from sklearn.neighbors import NearestNeighbors

    X = np.asarray(X, dtype=np.float64)
    km = _kmeans(X, k, rng)
    if method == "kmeans":
        return _nearest_distinct(km.transform(X))
    if method != "typiclust":
        raise ValueError(f"unknown cold start {method!r}; choose random, kmeans or typiclust")
    picks = []
    sizes = np.bincount(km.labels_, minlength=k)
    for c in np.argsort(-sizes, kind="stable"):
        members = np.flatnonzero(km.labels_ == c)
        if len(members) == 0:
            continue
        if len(members) <= 2:
            picks.append(int(members[0]))
            continue
        nn = min(20, len(members) - 1)
        dist, _ = NearestNeighbors(n_neighbors=nn + 1).fit(X[members]).kneighbors(X[members])
        typicality = 1.0 / (dist[:, 1:].mean(axis=1) + 1e-12)  # column 0: the item itself
        picks.append(int(members[np.argmax(typicality)]))
    return np.asarray(picks, dtype=np.int64)


Query = Callable[[Predictions, int, np.random.Generator], np.ndarray]


def top_k(strategy: Strategy) -> Query:
    """A scoring strategy as a batch query: the k best scores (`select`)."""
    return lambda preds, k, rng: select(strategy(preds, rng), k, rng)


def as_query(name: str, strategy: Strategy) -> Query:
    """The loop's query(preds, k, rng) for a registered strategy, batch-choosing or scoring."""
    if name in BATCH:
        return lambda preds, k, rng: strategy(preds, rng, k=k)
    return top_k(strategy)


def select(scores: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Positions of the k highest scores; ties broken at random (not by pool order)."""
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    k = min(k, len(scores))
    tiebreak = rng.random(len(scores))
    order = np.lexsort((tiebreak, -np.asarray(scores, dtype=np.float64)))
    return order[:k].astype(np.int64)
