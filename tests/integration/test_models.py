"""Each embedding-based candidate, for real, on BBC articles (the packaged MiniLM, offline)."""

from __future__ import annotations

import numpy as np
import pytest

from alrun.models import ModelContext, build_model

pytestmark = pytest.mark.slow
LABELS = ["business", "entertainment", "politics", "sport", "tech"]


@pytest.fixture(scope="module")
def split(bbc_rows):
    rng = np.random.default_rng(7)
    idx = rng.permutation(len(bbc_rows))

    def take(ii):
        return [bbc_rows[i]["text"] for i in ii], np.array(
            [LABELS.index(bbc_rows[i]["label"]) for i in ii]
        )

    return take(idx[:60]), take(idx[60:160])


@pytest.mark.parametrize(
    ("spec", "floor"),
    [
        ({"name": "minilm_embed_centroid"}, 0.8),
        ({"name": "minilm_embed_logreg"}, 0.8),
        ({"name": "minilm_finetune", "epochs": 2, "max_length": 64}, 0.8),
    ],
)
def test_candidate_learns_bbc_topics(split, cache_dir, spec, floor):
    (tr_x, tr_y), (te_x, te_y) = split
    ctx = ModelContext(n_classes=5, seed=0, cache_dir=cache_dir, corpus=tr_x + te_x)
    model = build_model(ctx, spec)
    model.fit(tr_x, tr_y)
    probs = model.predict(te_x).probs
    assert probs.shape == (100, 5)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    assert (probs.argmax(axis=1) == te_y).mean() >= floor  # chance is 0.2


def test_embedding_cache_is_reused_and_matches_live_encoding(split, tmp_path):
    from alrun.models import embeddings

    (tr_x, _), _ = split
    ctx = ModelContext(n_classes=5, seed=0, cache_dir=tmp_path, corpus=tr_x[:12])
    first = embeddings.EmbeddingTable(ctx, embeddings.PACKAGED, 128, 2, 8)
    [cached] = (tmp_path / "embeddings").glob("*.npy")
    mtime = cached.stat().st_mtime_ns
    second = embeddings.EmbeddingTable(ctx, embeddings.PACKAGED, 128, 2, 8)
    assert cached.stat().st_mtime_ns == mtime  # read, not recomputed
    np.testing.assert_array_equal(first.matrix, second.matrix)
    live = embeddings.encode(tr_x[:3], embeddings.PACKAGED, 128, 8, 2)
    np.testing.assert_allclose(second(tr_x[:3]), live, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(live, axis=1), 1.0, atol=1e-5)
    other = embeddings.EmbeddingTable(ctx, embeddings.PACKAGED, 64, 2, 8)  # new key
    assert len(list((tmp_path / "embeddings").glob("*.npy"))) == 2
    assert not np.allclose(other.matrix, first.matrix)
