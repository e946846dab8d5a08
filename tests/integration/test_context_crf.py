"""The contextual CRF (minilm_crf_ner) for real: packaged MiniLM word vectors on a CoNLL slice,
cached once, fitted without the test split, saved and reloaded with the same features."""

from __future__ import annotations

import json

import numpy as np
import pytest

from alrun.errors import AlrunError
from alrun.models import ModelContext, build_model, load_model, save_model
from alrun.models.token_vectors import encode_words, word_vector_table

pytestmark = pytest.mark.slow

SPEC = {"name": "minilm_crf_ner", "clusters": [8, 16], "dims": 16, "max_iterations": 60}


def _ctx(conll_slice, cache, pool=60, test=20) -> ModelContext:
    names = conll_slice["names"]
    return ModelContext(
        n_classes=len(names),
        seed=0,
        cache_dir=cache,
        label_names=names,
        pool_sentences=conll_slice["train"][0][:pool],
        test_sentences=conll_slice["test"][0][:test],
    )


def test_fits_predicts_and_reloads_with_the_same_features(conll_slice, tmp_path):
    ctx = _ctx(conll_slice, tmp_path / "cache")
    x, y = conll_slice["train"][0][:40], conll_slice["train"][1][:40]
    model = build_model(ctx, SPEC)
    model.fit(x, y)
    files = list((tmp_path / "cache" / "token-vectors").glob("*.npy"))
    assert len(files) == 1  # the corpus's vectors, computed once
    assert np.load(files[0]).shape[0] == sum(
        len(s) for s in {tuple(s) for s in [*ctx.pool_sentences, *ctx.test_sentences]}
    )
    train_acc = np.mean(
        [(b[: len(t)] == t).mean() for b, t in zip(model.predict(x).best, y, strict=True)]
    )
    assert train_acc > 0.95  # it learns the labelled sentences
    test_x = conll_slice["test"][0][:20]
    before = model.predict(test_x)
    save_model(model, SPEC, ctx, tmp_path / "model", {})
    assert (tmp_path / "model" / "word_features.npz").exists()
    again, _ = load_model(tmp_path / "model", tmp_path / "other-cache")  # vectors encoded live
    after = again.predict(test_x)
    np.testing.assert_array_equal(before.best, after.best)
    np.testing.assert_allclose(before.probs, after.probs, atol=1e-4)


@pytest.mark.full
def test_a_fresh_process_state_gives_the_same_model(conll_slice, tmp_path):
    """Same corpus, same labels: the same features and predictions from a cold cache and from
    the cached vectors (what a resumed run or the next sweep job reads)."""
    from alrun.models import context_crf, token_vectors

    ctx = _ctx(conll_slice, tmp_path / "cache")
    x, y = conll_slice["train"][0][:30], conll_slice["train"][1][:30]
    probs = []
    for _ in range(2):
        context_crf._MAPS.clear()
        token_vectors._TABLES.clear()
        model = build_model(ctx, SPEC)
        model.fit(x, y)
        probs.append(model.predict(conll_slice["test"][0][:20]).probs)
    np.testing.assert_array_equal(probs[0], probs[1])


@pytest.mark.full
def test_features_are_fitted_on_the_pool_never_the_test_split(conll_slice, tmp_path):
    x, y = conll_slice["train"][0][:30], conll_slice["train"][1][:30]
    maps = []
    for test in (0, 200):  # the same pool, with and without test sentences in the corpus
        model = build_model(_ctx(conll_slice, tmp_path / f"c{test}", test=test), SPEC)
        model.fit(x, y)
        maps.append(model.featurizer.fmap)  # type: ignore[attr-defined]
    # equal up to float noise: the encoder's batches pad differently with more sentences
    np.testing.assert_allclose(maps[0].components, maps[1].components, atol=1e-4)
    for a, b in zip(maps[0].centroids, maps[1].centroids, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-3)


def test_long_sentences_are_chunked_and_cached_rows_equal_live_ones(conll_slice, tmp_path):
    long = [w for s in conll_slice["train"][0][:6] for w in s]  # ~100 words in one sentence
    sents = [long, ["EU", "rejects", "German", "call"], []]
    short = encode_words(sents, "packaged:all-MiniLM-L6-v2", 4, max_length=16)
    assert [v.shape for v in short] == [(len(long), 384), (4, 384), (0, 384)]
    assert (np.abs(short[0]).sum(axis=1) > 0).all()  # every word of every chunk has a vector
    ctx = ModelContext(2, 0, tmp_path, pool_sentences=sents[:2])
    table = word_vector_table(ctx, "packaged:all-MiniLM-L6-v2", 4, 16, 8, "float32")
    cached = table(sents[1:2])[0]
    live = table([["EU", "rejects", "German", "call", "today"]])[0]
    np.testing.assert_allclose(cached, short[1], atol=2e-3)  # float16 storage
    np.testing.assert_allclose(live[:4], cached, atol=0.5)  # context changes, but stays close


def test_bad_settings_are_refused(conll_slice, tmp_path):
    with pytest.raises(AlrunError, match="minilm_crf_ner: bad layer"):
        build_model(_ctx(conll_slice, tmp_path), {"name": "minilm_crf_ner", "layer": 0})
    with pytest.raises(AlrunError, match="bad clusters"):
        build_model(_ctx(conll_slice, tmp_path), {"name": "minilm_crf_ner", "clusters": [1]})


@pytest.mark.full  # two processes load the encoder (~40 s); the model-level tests run by default
def test_a_run_with_it_caches_pool_and_test_words_and_its_model_predicts(
    conll_slice, run_alrun, tmp_path
):
    """`alrun ... candidates=minilm_crf_ner` end to end on a CoNLL slice given as AutoTrain
    JSONL: the runner hands the candidate the pool's and the test's sentences, the kept model
    is saved with its feature map, and alrun-predict tags raw text with it."""
    from test_predict import check_ner_task, predict_cli  # same folder: on sys.path

    names = conll_slice["names"]
    data = tmp_path / "data"
    data.mkdir()
    for split, n in (("train", 120), ("test", 40)):
        x, y = conll_slice[split]
        pairs = zip(x[:n], y[:n], strict=True)
        rows = [{"tokens": t, "tags": [names[k] for k in g]} for t, g in pairs]
        (data / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    run = run_alrun(
        "dataset=custom_tokens",
        "dataset.path=train.jsonl",
        "dataset.test_path=test.jsonl",
        "loop.unit=sentence",
        "candidates=minilm_crf_ner",
        "loop.initial_size=20",
        "loop.round_size=20",
        "loop.budget=60",
        "models.minilm_crf_ner.max_iterations=40",
        "models.minilm_crf_ner.clusters=[8,16]",
        "logger=none",
        data=data,
        cache=tmp_path / "cache",
    )
    rounds = [json.loads(line) for line in (run / "rounds.jsonl").read_text().splitlines()]
    assert [r["labeled"] for r in rounds] == [20, 40, 60]
    assert {r["chosen"] for r in rounds} == {"minilm_crf_ner"}
    [vectors] = (tmp_path / "cache" / "token-vectors").glob("*.npy")
    words = {tuple(t) for split, n in (("train", 120), ("test", 40)) for t in
             conll_slice[split][0][:n]}  # fmt: skip
    assert np.load(vectors).shape == (sum(map(len, words)), 384)  # pool and test, once each
    assert (run / "model" / "word_features.npz").is_file()
    text = "EU rejects German call to boycott British lamb ."
    proc = predict_cli(run, [json.dumps({"text": text})])
    assert proc.returncode == 0, proc.stderr
    [task] = [json.loads(x) for x in proc.stdout.splitlines()]
    check_ner_task(task, text)
