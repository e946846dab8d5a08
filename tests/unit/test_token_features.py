"""Pure parts of the contextual CRF's features: packing sub-words into encoder chunks, and the
word-vector map (projection + nearest centroid), on hand-made cases."""

from __future__ import annotations

import numpy as np

from alrun.models.context_crf import WordFeatureMap
from alrun.models.token_vectors import chunk_words


def test_chunks_end_at_word_boundaries():
    # words 0..3 with 2, 1, 3, 1 sub-words; None marks special tokens (skipped)
    ids = [10, 11, 20, 30, 31, 32, 40]
    words = [0, 0, 1, 2, 2, 2, 3]
    assert chunk_words(7, ids, words, 4) == [
        (7, [10, 11, 20], [0, 0, 1]),  # word 2 (3 sub-words) would not fit: next chunk
        (7, [30, 31, 32, 40], [2, 2, 2, 3]),
    ]
    assert chunk_words(0, ids, words, 100) == [(0, ids, words)]
    assert chunk_words(0, [1, 5, 2], [None, 0, None], 4) == [(0, [5], [0])]


def test_a_word_longer_than_a_chunk_keeps_its_first_sub_words():
    assert chunk_words(0, [1, 2, 3, 4, 9], [0, 0, 0, 0, 1], 2) == [
        (0, [1, 2], [0, 0]),
        (0, [9], [1]),
    ]
    assert chunk_words(0, [], [], 2) == []


def test_map_projects_then_takes_the_nearest_centroid():
    fmap = WordFeatureMap(
        mean=np.array([1.0, 1.0], dtype=np.float32),
        components=np.array([[2.0, 0.0]], dtype=np.float32),  # 2 * (x - 1)
        centroids=[np.array([[0.0], [4.0]], dtype=np.float32), np.array([[-1.0]], np.float32)],
    )
    proj, ids = fmap.transform(np.array([[1.0, 5.0], [2.5, 0.0], [1.9, 9.0]]))
    np.testing.assert_allclose(proj[:, 0], [0.0, 3.0, 1.8], rtol=1e-6)
    np.testing.assert_array_equal(ids, [[0, 0], [1, 0], [0, 0]])  # 1.8 is nearer 0 than 4


def test_map_fit_is_seeded_and_scaled(tmp_path):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(500, 6)) * np.array([5.0, 2.0, 1.0, 1.0, 1.0, 0.1])
    a, b = WordFeatureMap.fit(x, 3, [4, 8]), WordFeatureMap.fit(x, 3, [4, 8])
    np.testing.assert_array_equal(a.components, b.components)
    for ca, cb in zip(a.centroids, b.centroids, strict=True):
        np.testing.assert_array_equal(ca, cb)
    proj, ids = a.transform(x)
    assert abs(proj[:, 0].var() - 1.0) < 0.01  # first component scaled to unit variance
    assert proj.shape == (500, 3) and ids.max(axis=0).tolist() <= [3, 7]
    a.save(tmp_path / "m.npz")
    c = WordFeatureMap.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(c.transform(x)[1], ids)
