"""NER: conlleval-exact entity counts, IOB reading, label selection, items of sentences."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from alrun.data import load_token_splits, read_conll, to_iob2
from alrun.errors import AlrunError
from alrun.models import ModelContext, build_model
from alrun.tasks import Ner, entities, entity_scores

# A hand-made case. Sentence 1: a correct PER, an ORG cut short (boundary error), a LOC
# tagged PER (type error). Sentence 2: predictions open entities with I- right after O
# (conlleval starts an entity there) and switch type mid-entity. Sentences 3-4: an ORG at a
# sentence end and one at the next sentence's start, which must not merge.
GOLD = [
    ["B-PER", "I-PER", "O", "B-ORG", "I-ORG", "O", "B-LOC"],
    ["O", "B-LOC", "I-LOC", "O", "B-PER", "O"],
    ["B-ORG"],
    ["B-ORG", "O"],
]
PRED = [
    ["B-PER", "I-PER", "O", "B-ORG", "O", "O", "B-PER"],
    ["O", "I-LOC", "I-LOC", "O", "I-PER", "I-ORG"],
    ["B-ORG"],
    ["I-ORG", "O"],
]


def test_chunks_are_found_as_conlleval_finds_them():
    assert entities(PRED[1]) == [(1, 3, "LOC"), (4, 5, "PER"), (5, 6, "ORG")]
    assert entities(["B-PER", "B-PER", "I-PER"]) == [(0, 1, "PER"), (1, 3, "PER")]
    assert entities(["I-PER", "I-ORG", "O", "I-ORG"]) == [
        (0, 1, "PER"),
        (1, 2, "ORG"),
        (3, 4, "ORG"),
    ]


def test_entity_scores_equal_a_hand_count():
    s = entity_scores(GOLD, PRED)
    # by hand: gold 7 entities, predicted 8, correct 5 (PER s1, LOC s2, PER s2, ORG s3, ORG s4)
    assert s["precision"] == pytest.approx(5 / 8)
    assert s["recall"] == pytest.approx(5 / 7)
    assert s["f1"] == pytest.approx(2 * 5 / (7 + 8))
    assert s["token_accuracy"] == pytest.approx(10 / 16)  # tags equal on 10 of 16 tokens
    per = s["per_type"]
    assert (per["PER"]["precision"], per["PER"]["recall"]) == pytest.approx((2 / 3, 1.0))
    assert (per["ORG"]["precision"], per["ORG"]["recall"]) == pytest.approx((2 / 4, 2 / 3))
    assert (per["LOC"]["precision"], per["LOC"]["recall"]) == pytest.approx((1.0, 1 / 2))
    assert [per[t]["support"] for t in ("LOC", "ORG", "PER")] == [2, 3, 2]


def test_entity_scores_agree_with_seqeval_default_mode():
    seqeval = pytest.importorskip("seqeval.metrics")
    g = np.random.default_rng(0)
    tags = ["O", "O", "O", "B-PER", "I-PER", "B-ORG", "I-ORG", "I-LOC"]
    gold = [list(g.choice(tags, size=g.integers(1, 15))) for _ in range(300)]
    pred = [[t if g.random() < 0.7 else str(g.choice(tags)) for t in s] for s in gold]
    ours = entity_scores(gold, pred)
    assert ours["precision"] == pytest.approx(seqeval.precision_score(gold, pred))
    assert ours["recall"] == pytest.approx(seqeval.recall_score(gold, pred))
    assert ours["f1"] == pytest.approx(seqeval.f1_score(gold, pred))


def test_iob1_is_normalised_to_iob2():
    iob1 = ["I-PER", "I-PER", "B-PER", "O", "I-LOC", "I-ORG", "I-ORG"]
    assert to_iob2(iob1, "x") == ["B-PER", "I-PER", "B-PER", "O", "B-LOC", "B-ORG", "I-ORG"]
    assert to_iob2(["B-LOC", "I-LOC"], "x") == ["B-LOC", "I-LOC"]  # IOB2 unchanged


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("John S-PER\nran O\n", r"line 3: tag 'S-PER' is not O, B-TYPE or I-TYPE"),
        ("John NNP X-PER\nran VBD O\n", r"line 3: tag 'X-PER' is not O, B-TYPE"),
        ("ran O\nJohn B-\n", r"line 4: tag 'B-' is not O, B-TYPE or I-TYPE.*give every"),
        ("John NNP B-NP B-PER\nran O\n", r"line 4: 2 columns, but line 3 has 4; every token"),
        ("John\n", r"line 3: expected `token tag` columns, got 'John'"),
    ],
)
def test_malformed_conll_stops_at_its_line_with_the_fix(tmp_path, body, message):
    f = tmp_path / "bad.conll"
    f.write_text("-DOCSTART- O\n\n" + body, encoding="utf-8")
    with pytest.raises(AlrunError, match=r"bad.conll " + message):
        read_conll(f)


CONLL = """-DOCSTART- -X- -X- O

EU NNP B-NP I-ORG
rejects VBZ B-VP O
German JJ B-NP I-MISC
lamb NN I-NP O

Peter NNP B-NP I-PER
Blackburn NNP I-NP I-PER

-DOCSTART- -X- -X- O

Paris NNP B-NP I-LOC
wins VBZ B-VP O
"""


def cfg(tmp_path: Path, **dataset):
    return OmegaConf.create({"data_dir": str(tmp_path)}), OmegaConf.create(dataset)


def test_conll_four_columns_iob1_documents_and_sentences(tmp_path):
    (tmp_path / "train.conll").write_text(CONLL, encoding="utf-8")
    (tmp_path / "test.conll").write_text(CONLL, encoding="utf-8")
    c, d = cfg(tmp_path, path="train.conll", test_path="test.conll")
    docs = load_token_splits(c, d, 0, "document")
    assert len(docs.pool) == 2 and [len(s) for s in docs.pool.sentences] == [2, 1]
    assert docs.pool.label_names == [
        "O",
        "B-ORG",
        "I-ORG",
        "B-MISC",
        "I-MISC",
        "B-PER",
        "I-PER",
        "B-LOC",
        "I-LOC",
    ]
    names = docs.pool.label_names
    assert [names[t] for t in docs.pool.labels[0][1]] == ["B-PER", "I-PER"]
    sents = load_token_splits(c, d, 0, "sentence")
    assert len(sents.pool) == 3 and sents.pool.doc_ids == ["d0", "d0", "d1"]
    assert Ner().cost(sents.pool, np.array([0, 1])) == {"documents": 1, "sentences": 2, "tokens": 6}


def test_label_subset_and_renaming(tmp_path):
    (tmp_path / "train.conll").write_text(CONLL, encoding="utf-8")
    c, d = cfg(
        tmp_path,
        path="train.conll",
        test_path="train.conll",
        labels=["PER", "LOC"],
        label_map={"PER": "PERSON"},
    )
    pool = load_token_splits(c, d, 0, "document").pool
    assert pool.label_names == ["O", "B-PERSON", "I-PERSON", "B-LOC", "I-LOC"]
    assert pool.labels[0][0].tolist() == [0, 0, 0, 0]  # ORG and MISC became O
    assert [pool.label_names[t] for t in pool.labels[0][1]] == ["B-PERSON", "I-PERSON"]


@pytest.mark.parametrize(
    ("dataset", "message"),
    [
        ({"labels": ["PER", "PERSON"]}, r"dataset.labels lists \['PERSON'\], which never occur"),
        ({"labels": ["PER"], "label_map": {"LOC": "X"}}, r"renames \['LOC'\], which are not in"),
        ({"path": "missing.conll"}, "data file not found"),
        ({"path": "."}, "is a directory"),
    ],
)
def test_bad_ner_dataset_config(tmp_path, dataset, message):
    (tmp_path / "train.conll").write_text(CONLL, encoding="utf-8")
    c, d = cfg(tmp_path, **{"path": "train.conll", "test_path": "train.conll", **dataset})
    with pytest.raises(AlrunError, match=message):
        load_token_splits(c, d, 0, "document")


def test_token_jsonl_reader_and_its_errors(tmp_path):
    rows = [
        {"tokens": ["Ann", "met", "Bob"], "tags": ["B-PER", "O", "B-PER"], "doc": "a"},
        {"tokens": ["in", "Rome"], "tags": ["O", "I-LOC"], "doc": "a"},
        {"tokens": ["Hi"], "tags": ["O"], "doc": "b"},
    ]
    f = tmp_path / "t.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    c, d = cfg(tmp_path, path="t.jsonl", test_path="t.jsonl", doc_field="doc")
    pool = load_token_splits(c, d, 0, "document").pool
    assert pool.ids == ["a", "b"] and [len(s) for s in pool.sentences] == [2, 1]
    assert [pool.label_names[t] for t in pool.labels[0][1]] == ["O", "B-LOC"]  # IOB1 -> IOB2
    f.write_text(json.dumps({"tokens": ["a", "b"], "tags": ["O"]}) + "\n", encoding="utf-8")
    with pytest.raises(AlrunError, match=r"t.jsonl line 1: 2 tokens but 1 tags"):
        load_token_splits(c, d, 0, "document")


def test_document_items_join_their_sentences_predictions(conll_slice):
    names = conll_slice["names"]
    sents, tags = conll_slice["train"]
    ctx = ModelContext(
        n_classes=len(names), seed=0, cache_dir=Path("/nonexistent"), label_names=names
    )
    model = build_model(ctx, {"name": "crf_ner", "max_iterations": 20})
    model.fit(sents[:200], tags[:200])
    task = Ner()
    docs = [sents[200:203], sents[203:205]]  # two items of 3 and 2 sentences
    joined = task.predict(model, docs)
    single = model.predict(sents[200:205])
    n = [sum(len(s) for s in d) for d in docs]
    assert joined.mask.sum(axis=1).tolist() == n
    np.testing.assert_allclose(
        joined.seq_logprob, [single.seq_logprob[:3].sum(), single.seq_logprob[3:].sum()]
    )
    first = np.concatenate([single.probs[j, : len(sents[200 + j])] for j in range(3)])
    np.testing.assert_allclose(joined.probs[0, : n[0]], first)
    decoded = task.decode(joined, docs)
    assert [len(s) for s in decoded[0]] == [len(s) for s in docs[0]]  # sentence cuts kept
