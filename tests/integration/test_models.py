"""Each embedding-based candidate, for real, on BBC articles (the packaged MiniLM, offline):
fitting and overfitting a tiny batch, the embedding cache, TF-IDF and the row-space logistic
regression against scikit-learn. Their quality floors: benchmarks/quality_floors.py."""

from __future__ import annotations

import warnings

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


@pytest.fixture(scope="module")
def tiny(split):
    """Two training articles of each topic, and labels crossing the topics: the first of each
    pair keeps its topic, the second gets the next one. Only a model that fits what it is
    told, not what the texts are about, predicts these labels back."""
    (tr_x, tr_y), _ = split
    picks = [i for k in range(5) for i in np.flatnonzero(tr_y == k)[:2]]
    texts = [tr_x[i] for i in picks]
    topics = tr_y[picks]
    crossed = np.array([(t + n % 2) % 5 for n, t in enumerate(topics)])
    return texts, topics, crossed


# Settings for a batch of 10: fitting it, not generalising (quality floors, accuracy on 100
# test articles after 60 training ones: benchmarks/quality_floors.py).
TINY = [
    {"name": "minilm_embed_centroid", "max_length": 128, "max_windows": 1},
    {"name": "minilm_embed_logreg", "max_length": 128, "max_windows": 1},
]
# One update an epoch; scale 1: the centroid start is far from certain (~0.3 on its label)
FINETUNE = {"name": "minilm_finetune", "max_length": 32, "batch_size": 10, "epochs": 10}
FINETUNE |= {"lr": 3e-4, "warmup": 0.0, "scale": 1.0}


def _fit_predict(spec, texts, labels, cache_dir) -> np.ndarray:
    ctx = ModelContext(n_classes=5, seed=0, cache_dir=cache_dir, corpus=texts)
    model = build_model(ctx, spec)
    model.fit(texts, labels)
    probs = model.predict(texts).probs
    assert probs.shape == (len(texts), 5)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    return probs


@pytest.mark.parametrize("spec", TINY, ids=[s["name"] for s in TINY])
def test_candidate_fits_and_overfits_a_tiny_batch(tiny, cache_dir, spec):
    texts, topics, crossed = tiny
    for labels in (topics, crossed):
        probs = _fit_predict(spec, texts, labels, cache_dir)
        np.testing.assert_array_equal(probs.argmax(axis=1), labels)  # its training labels back


@pytest.mark.full  # default run: test_predict's minilm_finetune round trip trains it too
def test_fine_tuning_fits_a_tiny_batch_beyond_its_centroid_start(tiny, cache_dir):
    """minilm_finetune starts as the nearest-centroid classifier, which already predicts a
    tiny batch's labels back: its training loop must make them more likely than that start
    (a fit with a vanishing learning rate)."""
    texts, _, crossed = tiny
    start = _fit_predict({**FINETUNE, "lr": 1e-12, "epochs": 1}, texts, crossed, cache_dir)
    trained = _fit_predict(FINETUNE, texts, crossed, cache_dir)
    np.testing.assert_array_equal(trained.argmax(axis=1), crossed)
    before, after = start[np.arange(10), crossed], trained[np.arange(10), crossed]
    assert (after > before).all() and after.mean() > before.mean() + 0.05, (before, after)


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


def test_bfloat16_and_int8_embeddings_stay_close_to_float32(split):
    from alrun.models import embeddings

    (tr_x, _), _ = split
    texts = tr_x[:6]
    ref = embeddings.encode(texts, embeddings.PACKAGED, 128, 4, 2, "float32")
    for precision, floor in (("bfloat16", 0.999), ("int8", 0.97)):
        other = embeddings.encode(texts, embeddings.PACKAGED, 128, 4, 2, precision)
        np.testing.assert_allclose(np.linalg.norm(other, axis=1), 1.0, atol=1e-5)
        cos = (ref * other).sum(axis=1)
        assert cos.min() > floor, (precision, cos)
        assert not np.array_equal(other, ref)  # really another precision
    assert embeddings.resolve_precision("auto") in ("float32", "bfloat16")


def test_precision_is_part_of_the_embedding_cache_key(split, tmp_path):
    import hashlib

    from alrun.errors import AlrunError
    from alrun.models import embeddings

    (tr_x, _), _ = split
    ctx = ModelContext(n_classes=5, seed=0, cache_dir=tmp_path, corpus=tr_x[:4])
    f32 = embeddings.EmbeddingTable(ctx, embeddings.PACKAGED, 64, 1, 8, "float32")
    bf16 = embeddings.EmbeddingTable(ctx, embeddings.PACKAGED, 64, 1, 8, "bfloat16")
    assert f32.path != bf16.path
    assert sorted(p.name for p in (tmp_path / "embeddings").glob("*.npy")) == sorted(
        [f32.path.name, bf16.path.name]
    )
    # float32 keeps the key earlier versions wrote, so their cache entries stay valid
    old = f"{embeddings.PACKAGED}|64|1|{ctx.corpus_fingerprint}"
    assert f32.path.name == hashlib.sha256(old.encode()).hexdigest()[:32] + ".npy"
    assert not np.array_equal(f32.matrix, bf16.matrix)
    # `auto` resolves before keying: it shares the entry of the precision it stands for
    auto = embeddings.EmbeddingTable(ctx, embeddings.PACKAGED, 64, 1, 8, "auto")
    assert auto.path == (bf16.path if auto.precision == "bfloat16" else f32.path)
    with pytest.raises(AlrunError, match="precision='float16'"):
        embeddings.resolve_precision("float16")


def test_every_order_of_the_same_texts_shares_one_cache_entry(split, tmp_path):
    """Each seed splits the same texts into another pool and test order: one entry for all."""
    from alrun.models import embeddings

    (tr_x, _), _ = split
    first = ModelContext(n_classes=5, seed=0, cache_dir=tmp_path, corpus=tr_x[:4])
    again = ModelContext(n_classes=5, seed=1, cache_dir=tmp_path, corpus=[*tr_x[3::-1], tr_x[0]])
    a = embeddings.EmbeddingTable(first, embeddings.PACKAGED, 64, 1, 8, "float32")
    b = embeddings.EmbeddingTable(again, embeddings.PACKAGED, 64, 1, 8, "float32")
    assert a.path == b.path and len(list((tmp_path / "embeddings").glob("*.npy"))) == 1
    assert len(b.matrix) == 4  # distinct texts only
    np.testing.assert_array_equal(a(tr_x[:4]), b(tr_x[:4]))
    other = ModelContext(n_classes=5, seed=0, cache_dir=tmp_path, corpus=tr_x[1:5])
    assert embeddings.cache_file(other, embeddings.PACKAGED, 64, 1, "float32") != a.path


@pytest.mark.parametrize(
    ("n", "max_features", "ngram_max", "sublinear_tf"),
    [(60, 50000, 2, True), (60, 3000, 2, True), (30, None, 1, False), (40, 500, 3, True)],
)
def test_memoised_tfidf_equals_sklearn_vectorizer(
    split, monkeypatch, n, max_features, ngram_max, sublinear_tf
):
    from sklearn.feature_extraction.text import TfidfVectorizer

    from alrun.models.linear import TermCounts, Tfidf

    (tr_x, _), (te_x, _) = split
    for memo in (20_000, 0):  # texts memoised, or the memo full: analysed every time
        monkeypatch.setattr(TermCounts, "_by_settings", {})
        monkeypatch.setattr(TermCounts, "max_docs", memo)
        ref = TfidfVectorizer(
            max_features=max_features,
            ngram_range=(1, ngram_max),
            sublinear_tf=sublinear_tf,
            strip_accents="unicode",
            min_df=1,
        )
        ours = Tfidf(max_features, ngram_max, sublinear_tf, "unicode")
        for texts in (tr_x[:n], tr_x[n // 2 : n + n // 2]):  # refit on other texts
            X, Y = ref.fit_transform(texts), ours.fit_transform(texts)
            assert ours.vocabulary == ref.vocabulary_  # same terms, same columns
            np.testing.assert_allclose(X.toarray(), Y.toarray(), rtol=0, atol=1e-12)
            np.testing.assert_allclose(
                ref.transform(te_x).toarray(), ours.transform(te_x).toarray(), atol=1e-12
            )
            saved = ours.to_sklearn()  # what TfidfLogReg.save writes
            np.testing.assert_allclose(
                saved.transform(te_x).toarray(), ref.transform(te_x).toarray(), atol=1e-12
            )


@pytest.mark.parametrize("features", ["tfidf", "embeddings"])
def test_row_space_logreg_equals_logreg_on_all_columns(split, cache_dir, features):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    from alrun.models import embeddings
    from alrun.models.linear import TunedLogReg

    (tr_x, tr_y), (te_x, _) = split
    if features == "tfidf":
        vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
        X, T = vec.fit_transform(tr_x), vec.transform(te_x)
    else:
        ctx = ModelContext(n_classes=5, seed=0, cache_dir=cache_dir, corpus=tr_x + te_x)
        table = embeddings.embedding_table(ctx, embeddings.PACKAGED, 64, 1, 32, "auto")
        # float64, as the row space computes: sklearn on float32 rows rounds at ~1e-4 itself
        X, T = table(tr_x).astype(np.float64), table(te_x).astype(np.float64)
    assert X.shape[1] > X.shape[0]  # the case the row space handles
    for C in (1.0, 1000.0):
        ours = TunedLogReg(5, [C], C, seed=0).fit(X, tr_y)
        with warnings.catch_warnings():  # at tol 1e-10 the line search hits rounding: fine
            warnings.simplefilter("ignore")
            ref = LogisticRegression(C=C, solver="newton-cg", tol=1e-10, max_iter=1000)
            ref.fit(X, tr_y)
        assert ours.state()["classifier"].coef_.shape == ref.coef_.shape
        np.testing.assert_allclose(ours.predict_proba(T), ref.predict_proba(T), atol=1e-4)
    tuned = TunedLogReg(5, [1, 10, 100, 1000], 100.0, seed=0).fit(X, tr_y)
    assert tuned.C in (1, 10, 100, 1000)
    assert (tuned.predict_proba(T).argmax(1) == ref.predict(T)).mean() > 0.9


def test_tfidf_bits_do_not_depend_on_what_the_process_analysed_before(split, monkeypatch):
    from alrun.models.linear import TermCounts, Tfidf

    (tr_x, _), (te_x, _) = split
    runs = []
    for order in (1, -1):  # term ids are handed out in first-seen order: reverse it
        monkeypatch.setattr(TermCounts, "_by_settings", {})
        vec = Tfidf(50000, 2, True, "unicode")
        for text in (te_x + tr_x)[::order]:
            vec.counts(text)
        X, T = vec.fit_transform(tr_x[:40]), vec.transform(te_x)
        runs.append((X, T))
    (X1, T1), (X2, T2) = runs
    for a, b in ((X1, X2), (T1, T2)):
        assert np.array_equal(a.indptr, b.indptr) and np.array_equal(a.indices, b.indices)
        assert np.array_equal(a.data, b.data)  # bit for bit: resumed runs repeat exactly
