"""The CRF with contextual features: frozen encoder word vectors made into what a CRF can use.

The CRF's hand-made lexical features stall at about 0.80 F1 on CoNLL-2003 from 30k labelled
tokens: they know a word only by its spelling. Each word's frozen MiniLM vector (a middle
layer, token_vectors.py) adds what the context says about it, in two forms a linear-chain CRF
learns from cheaply (the cluster-feature trick of CRF taggers, with contextual vectors):

- a `dims`-dimensional PCA projection as real-valued features, and
- the ids of the nearest k-means centroid at a few granularities (`clusters`), for the word and
  its neighbours (binary features, like Brown clusters).

The projection and centroids are fitted without labels on the pool's words only (never the
test split's), with a fixed seed, so every round and seed of one pool reads the same features.
They are saved with the model, so a saved model tags new text the same way. Measured in
experiments/conll_candidates (F1 against tokens and fit seconds against the plain CRF).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from alrun.errors import AlrunError
from alrun.models.base import MODELS, ModelContext, sentences_fingerprint
from alrun.models.crf import CRFTagger, sentence_features
from alrun.models.embeddings import PACKAGED
from alrun.models.token_vectors import WordVectorTable, word_vector_table

MAP_FILE = "word_features.npz"
SAMPLE = 100_000  # words the projection and the centroids are fitted on (enough, and fast)


class WordFeatureMap:
    """Word vector -> (PCA projection, nearest centroid id at each granularity)."""

    def __init__(self, mean: np.ndarray, components: np.ndarray, centroids: list[np.ndarray]):
        self.mean, self.components, self.centroids = mean, components, centroids

    @classmethod
    def fit(cls, vectors: np.ndarray, dims: int, clusters: Sequence[int]) -> WordFeatureMap:
        """PCA to `dims` (scaled so the first component has unit variance), then k-means in
        that space for each k; seeded (0), on at most SAMPLE words."""
        from sklearn.cluster import MiniBatchKMeans
        from sklearn.decomposition import PCA

        rng = np.random.default_rng(0)
        if len(vectors) > SAMPLE:
            vectors = vectors[np.sort(rng.choice(len(vectors), SAMPLE, replace=False))]
        vectors = vectors.astype(np.float32)
        dims = min(dims, *vectors.shape)
        pca = PCA(dims, random_state=0).fit(vectors)
        scale = float(np.sqrt(max(pca.explained_variance_[0], 1e-12)))
        comps = (pca.components_ / scale).astype(np.float32)
        mean = pca.mean_.astype(np.float32)
        proj = (vectors - mean) @ comps.T
        cents = []
        for k in clusters:
            k = min(int(k), len(proj))
            km = MiniBatchKMeans(k, random_state=0, batch_size=4096, n_init=1).fit(proj)
            cents.append(km.cluster_centers_.astype(np.float32))
        return cls(mean, comps, cents)

    def transform(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(projection [n, dims], nearest centroid id [n, granularities])."""
        proj = (vectors.astype(np.float32) - self.mean) @ self.components.T
        ids = np.zeros((len(proj), len(self.centroids)), dtype=np.int64)
        for g, c in enumerate(self.centroids):
            d = (c * c).sum(axis=1)[None, :] - 2.0 * proj @ c.T
            ids[:, g] = d.argmin(axis=1)
        return proj, ids

    def save(self, path: Path) -> None:
        arrays = {f"centroids{g}": c for g, c in enumerate(self.centroids)}
        arrays |= {"mean": self.mean, "components": self.components}
        np.savez(path, **arrays)  # type: ignore[arg-type]  # numpy's stub: allow_pickle

    @classmethod
    def load(cls, path: Path) -> WordFeatureMap:
        with np.load(path) as f:
            n = sum(1 for k in f.files if k.startswith("centroids"))
            return cls(f["mean"], f["components"], [f[f"centroids{g}"] for g in range(n)])


class ContextFeatures:
    """CRFsuite items for sentences: lexical features + the map's features; recent sentences'
    items are kept, so the pool is featurised once per run, not every round."""

    def __init__(self, table: WordVectorTable, fmap: WordFeatureMap, size: int = 60000) -> None:
        self.table, self.fmap, self.size = table, fmap, size
        self.items: OrderedDict[tuple[str, ...], Any] = OrderedDict()
        self.names = [f"v{q}" for q in range(fmap.components.shape[0])]

    def __call__(self, sentences: Sequence[Sequence[str]]) -> list[Any]:
        keys = [tuple(s) for s in sentences]
        todo = list(dict.fromkeys(k for k in keys if k not in self.items))
        if todo:
            vecs = self.table(todo)
            lengths = [len(v) for v in vecs]
            proj, ids = self.fmap.transform(np.concatenate(vecs) if vecs else np.zeros((0, 1)))
            at = 0
            for key, n in zip(todo, lengths, strict=True):
                self.items[key] = self._item(key, proj[at : at + n], ids[at : at + n])
                at += n
            while len(self.items) > max(self.size, len(keys)):
                self.items.popitem(last=False)
        return [self.items[k] for k in keys]

    def _item(self, tokens: Sequence[str], proj: np.ndarray, ids: np.ndarray) -> Any:
        import pycrfsuite

        lexical = sentence_features(tokens)
        n, out = len(tokens), []
        for i in range(n):
            d = dict.fromkeys(lexical[i], 1.0)
            d.update(zip(self.names, proj[i].tolist(), strict=True))
            for j, off in ((i, ""), (i - 1, "-1"), (i + 1, "+1")):
                if 0 <= j < n:
                    for g, c in enumerate(ids[j].tolist()):
                        d[f"{off}c{g}={c}"] = 1.0
            out.append(d)
        return pycrfsuite.ItemSequence(out)


_MAPS: dict[tuple, ContextFeatures] = {}


class ContextCRF(CRFTagger):
    """CRFTagger whose items add the word-vector projection and cluster ids."""

    def __init__(
        self,
        ctx: ModelContext,
        crf: dict[str, Any],
        vectors: dict[str, Any],
        dims: int,
        clusters: Sequence[int],
    ) -> None:
        super().__init__(ctx, **crf)
        self.vectors, self.dims, self.clusters = vectors, dims, list(clusters)
        self.featurizer: ContextFeatures | None = None

    def _table(self) -> WordVectorTable:
        v = self.vectors
        args = (v["encoder"], v["layer"], v["max_length"], v["batch_size"], v["precision"])
        return word_vector_table(self.ctx, *args)

    def _fitted(self, sentences: Sequence[Sequence[str]]) -> ContextFeatures:
        """The run's feature map, fitted on the pool's words (or, with no pool known, as when a
        benchmark trains directly, on the training sentences'); one per process and pool."""
        if self.featurizer is not None:
            return self.featurizer
        basis = self.ctx.pool_sentences or sentences
        table = self._table()
        basis_id = (
            self.ctx.pool_fingerprint if self.ctx.pool_sentences else sentences_fingerprint(basis)
        )
        key = (table.path, self.dims, tuple(self.clusters), basis_id)
        if key not in _MAPS:
            _MAPS.clear()  # one pool at a time: a sweep's next job frees the last one's items
            vecs = np.concatenate(table(basis))
            _MAPS[key] = ContextFeatures(table, WordFeatureMap.fit(vecs, self.dims, self.clusters))
        self.featurizer = _MAPS[key]
        return self.featurizer

    def fit(self, sentences: Sequence[Sequence[str]], tags: Sequence[np.ndarray]) -> None:
        self._fitted(sentences)
        super().fit(sentences, tags)

    def features(self, sentences: Sequence[Sequence[str]]) -> list[Any]:
        return self._fitted(sentences)(sentences)

    def save(self, path: Path) -> None:
        """model.crfsuite plus the feature map (word_features.npz); the encoder is not copied."""
        super().save(path)
        assert self.featurizer is not None, "fit first"
        self.featurizer.fmap.save(path / MAP_FILE)

    def load(self, path: Path) -> None:
        super().load(path)
        self.featurizer = ContextFeatures(self._table(), WordFeatureMap.load(path / MAP_FILE))


@MODELS.register
def minilm_crf_ner(
    ctx: ModelContext,
    c1: float = 0.05,
    c2: float = 0.05,
    max_iterations: int = 150,
    encoder: str = PACKAGED,
    layer: int = 4,
    dims: int = 64,
    clusters: Sequence[int] = (64, 256, 1024),
    max_length: int = 128,
    batch_size: int = 64,
    precision: str = "auto",
) -> ContextCRF:
    checks = {
        "c1": c1 >= 0,
        "c2": c2 >= 0,
        "max_iterations": max_iterations >= 1,
        "layer": layer >= 1,
        "dims": dims >= 1,
        "clusters": all(int(k) >= 2 for k in clusters),
        "max_length": max_length >= 3,
        "batch_size": batch_size >= 1,
    }
    for key, ok in checks.items():
        if not ok:
            raise AlrunError(f"minilm_crf_ner: bad {key}={locals()[key]!r}")
    crf = {"c1": c1, "c2": c2, "max_iterations": max_iterations}
    vectors = {
        "encoder": encoder,
        "layer": layer,
        "max_length": max_length,
        "batch_size": batch_size,
        "precision": precision,
    }
    return ContextCRF(ctx, crf, vectors, dims, clusters)
