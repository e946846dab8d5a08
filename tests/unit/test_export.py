"""Exports from a run folder keep the original text and every span: labeled.jsonl written by
the real `RunFolder` and tasks, then `alrun-convert to-prodigy / to-iob / to-conll /
to-textcat`, checked against the original characters (Prodigy tasks without `ws` and with
double spaces, real BBC articles with newlines) and, for CoNLL runs, against the exact records
alrun always wrote."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from alrun.convert import main as convert_main
from alrun.data import prodigy, read_conll, sentences_with_offsets
from alrun.data.datasets import SeqDataset, TextDataset, seq_dataset
from alrun.data.seed import seed_from_prodigy
from alrun.data.tags import entities
from alrun.data.unlabelled import load_raw_splits
from alrun.loop import RoundResult
from alrun.run_folder import RunFolder
from alrun.tasks import Multiclass, Ner

ROOT = Path(__file__).resolve().parents[2]
TYPES = ["PERSON", "ASPECT"]


def jsonl(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


def convert(capsys, *args: object) -> tuple[int, str]:
    """`alrun-convert ARGS` in-process: (exit status, stderr)."""
    with pytest.raises(SystemExit) as e:
        convert_main([str(a) for a in args])
    return int(e.value.code or 0), capsys.readouterr().err


def write_labeled(folder: Path, task, pool, idx, labels, unit: str = "sentence") -> Path:
    """labeled.jsonl as a run writes it: `RunFolder.log_round` after one round."""
    run = RunFolder(
        path=folder,
        task=task,
        pool=pool,
        rng=np.random.default_rng(0),
        settings={},
        command=[],
        model_ctx=None,  # type: ignore[arg-type]  # only `finish` saves a model
        model_info={},
        title="",
        unit=unit,
    )
    empty = np.array([], dtype=np.int64)
    labels_arr = np.empty(len(labels), dtype=object)
    labels_arr[:] = list(labels)
    res = RoundResult(0, np.asarray(idx, dtype=np.int64), labels_arr, None, {}, empty, {}, empty)  # type: ignore[arg-type]
    run.log_round({}, res)
    return folder / "labeled.jsonl"


def raw_cfg(data: Path, path: Path, **dataset: object):
    """A dataset=raw_text NER config for `path`, like the preset's."""
    return OmegaConf.create(
        {
            "data_dir": str(data),
            "dataset": {
                "name": "raw_text",
                "raw": True,
                "path": str(path),
                "format": "auto",
                "text_field": "text",
                "id_field": None,
                "labels": TYPES,
                "tokenizer": "blank:en",
                "sentencizer": None,
                "test_path": None,
                "label_map": {},
                **dataset,
            },
            "loop": {"initial_from": None, "budget": 100, "round_size": 1, "initial_size": 1},
        }
    )


def capitalised_tags(pool: SeqDataset, i: int) -> list[np.ndarray]:
    """Synthetic labels: every run of capitalised tokens is one PERSON."""
    index = {n: k for k, n in enumerate(pool.label_names)}
    out = []
    for words in pool.sentences[i]:
        tags, prev = [], False
        for w in words:
            cap = w[:1].isupper()
            tags.append(index["I-PERSON" if cap and prev else "B-PERSON" if cap else "O"])
            prev = cap
        out.append(np.asarray(tags, dtype=np.int64))
    return out


def doc_spans(pool: SeqDataset, idx, labels) -> set[tuple[str, int, int, str]]:
    """(document, start, end, type) of every labelled span, from the pool's own offsets: what
    every export must hold."""
    out = set()
    for i, item in zip(idx, labels, strict=True):
        src = pool.source[i]  # type: ignore[index]
        for s, tags in enumerate(item):
            names = [pool.label_names[t] for t in tags]
            for a, b, typ in entities(names):
                start, end = src.tokens[s][a][0], src.tokens[s][b - 1][1]
                out.add((src.doc_id, src.offset + start, src.offset + end, typ))
    return out


def check_prodigy(tasks: list[dict], docs: dict[str, str]) -> set[tuple[str, int, int, str]]:
    """Every task's text, tokens and spans sit on the original document's characters; returns
    the spans as (document, start, end, type) in document offsets."""
    found = set()
    for t in tasks:
        doc, off, text = docs[t["meta"]["doc"]], t["meta"]["offset"], t["text"]
        assert doc[off : off + len(text)] == text
        for k, tok in enumerate(t["tokens"]):
            assert text[tok["start"] : tok["end"]] == tok["text"] and tok["id"] == k
            assert tok["ws"] == text[tok["end"] : tok["end"] + 1].isspace()
        for s in t["spans"]:
            assert text[s["start"] : s["end"]] == doc[off + s["start"] : off + s["end"]]
            assert t["tokens"][s["token_start"]]["start"] == s["start"]
            assert t["tokens"][s["token_end"]]["end"] == s["end"]
            found.add((t["meta"]["doc"], off + s["start"], off + s["end"], s["label"]))
        assert t["answer"] == "accept"
    return found


# --------------------------------------------------------------------------- (a) Prodigy files


def _toks(text: str, words: list[tuple[int, int]]) -> list[dict]:
    """Prodigy tokens as older versions export them: text, start, end, no `ws`, no `id`."""
    return [{"text": text[a:b], "start": a, "end": b} for a, b in words]


T1 = "I really  like the style ."
T2 = "Ann  Lee\nloves the  new screen."
T3 = "Fix it  now"
PRODIGY = [
    {
        "text": T1,
        "tokens": _toks(T1, [(0, 1), (2, 8), (10, 14), (15, 18), (19, 24), (25, 26)]),
        "spans": [{"start": 19, "end": 24, "label": "ASPECT"}],
        "answer": "accept",
    },
    {  # a span by token indices only, one across a double space and one across a newline
        "text": T2,
        "tokens": _toks(T2, [(0, 3), (5, 8), (9, 14), (15, 18), (20, 23), (24, 30), (30, 31)]),
        "spans": [
            {"token_start": 0, "token_end": 1, "label": "PERSON"},
            {"start": 20, "end": 30, "label": "ASPECT"},
        ],
        "answer": "accept",
        "meta": {"id": "t2"},
    },
    {  # spaCy's whitespace token, as Prodigy keeps it: dropped on reading
        "text": T3,
        "tokens": _toks(T3, [(0, 3), (4, 6), (7, 8), (8, 11)]),
        "spans": [{"start": 8, "end": 11, "label": "ASPECT"}],
        "answer": "accept",
    },
]


def test_prodigy_tasks_without_ws_keep_their_text_and_spans(tmp_path, capsys):
    """Prodigy annotations (read by `read_ner`, tokens without `ws`) seed a raw-text run; its
    labeled.jsonl exports back to Prodigy with every task's text and every span's characters
    as annotated."""
    seed = tmp_path / "seed.jsonl"
    seed.write_text("".join(json.dumps(t) + "\n" for t in PRODIGY), encoding="utf-8")
    examples, report = prodigy.read_ner(seed)  # what loop.initial_from reads them with
    assert report.converted == 3 and [e.text for e in examples] == [T1, T2, T3]
    assert [t["ws"] for t in examples[0].tokens] == [True, True, True, True, True, False]
    (tmp_path / "pool.txt").write_text("Another  text by Zoe.\nAnd one more.\n", encoding="utf-8")
    cfg = raw_cfg(tmp_path, tmp_path / "pool.txt")
    cfg.loop.initial_from = str(seed)
    splits, initial = seed_from_prodigy(cfg, load_raw_splits(cfg, cfg.dataset, "ner", "sentence"))
    pool = splits.pool
    assert isinstance(pool, SeqDataset) and len(initial) == 3
    labeled = write_labeled(tmp_path, Ner(), pool, initial, [pool.labels[i] for i in initial])
    recs = jsonl(labeled)
    assert [r["text"] for r in recs] == [[T1], [T2], [T3]]
    assert recs[1]["tokens"] == [["Ann", "Lee", "loves", "the", "new", "screen", "."]]
    assert recs[1]["offsets"] == [[[0, 3], [5, 8], [9, 14], [15, 18], [20, 23], [24, 30], [30, 31]]]
    assert recs[1]["doc"] == "t2" and recs[1]["doc_offsets"] == [0]

    code, err = convert(capsys, "to-prodigy", labeled, tmp_path / "back.jsonl")
    assert code == 0, err
    back = jsonl(tmp_path / "back.jsonl")
    assert [t["text"] for t in back] == [t["text"] for t in PRODIGY]
    want = {
        (t["text"], t["text"][a:b], label)
        for t, spans in zip(
            PRODIGY,
            [[(19, 24, "ASPECT")], [(0, 8, "PERSON"), (20, 30, "ASPECT")], [(8, 11, "ASPECT")]],
            strict=True,
        )
        for a, b, label in spans
    }
    got = {
        (t["text"], t["text"][s["start"] : s["end"]], s["label"]) for t in back for s in t["spans"]
    }
    assert got == want
    assert ("Ann  Lee", "PERSON") in {
        (t["text"][s["start"] : s["end"]], s["label"]) for t in back for s in t["spans"]
    }
    assert [t["meta"]["offset"] for t in back] == [0, 0, 0]
    check_prodigy(back, {t["meta"]["doc"]: t["text"] for t in back})
    # the tokens' ws now follows from the offsets: False before a token that follows at once
    assert [tok["ws"] for tok in back[1]["tokens"]] == [True, True, True, True, True, False, False]

    code, err = convert(capsys, "to-iob", tmp_path, tmp_path / "train.jsonl")
    assert code == 0, err
    assert "3 examples read, 3 converted" in err and "spans: 4" in err
    iob = jsonl(tmp_path / "train.jsonl")
    assert iob[1] == {
        "tokens": ["Ann", "Lee", "loves", "the", "new", "screen", "."],
        "tags": ["B-PERSON", "I-PERSON", "O", "O", "B-ASPECT", "I-ASPECT", "O"],
    }
    assert iob[2]["tokens"] == ["Fix", "it", "now"]


def test_a_token_conll_cannot_hold_fails_to_conll_but_not_to_iob(tmp_path, capsys):
    """A Prodigy token with a space inside ("New York") is kept in JSON; a CoNLL line cannot
    hold it: to-conll names the line and writes nothing."""
    text = "She moved to New York ."
    task = {
        "text": text,
        "tokens": _toks(text, [(0, 3), (4, 9), (10, 12), (13, 21), (22, 23)]),
        "spans": [{"start": 13, "end": 21, "label": "ASPECT"}],
    }
    seed = tmp_path / "seed.jsonl"
    seed.write_text(json.dumps(task) + "\n", encoding="utf-8")
    (tmp_path / "pool.txt").write_text("Some other text.\n", encoding="utf-8")
    cfg = raw_cfg(tmp_path, tmp_path / "pool.txt")
    cfg.loop.initial_from = str(seed)
    splits, initial = seed_from_prodigy(cfg, load_raw_splits(cfg, cfg.dataset, "ner", "sentence"))
    pool = splits.pool
    labeled = write_labeled(tmp_path, Ner(), pool, initial, [pool.labels[i] for i in initial])
    code, err = convert(capsys, "to-conll", labeled, tmp_path / "out.conll")
    assert code == 1 and not (tmp_path / "out.conll").exists()
    assert "skipped: a token CoNLL cannot hold" in err and "(line 1)" in err, err
    assert "nothing written" in err and "to-iob" in err
    code, err = convert(capsys, "to-iob", labeled, tmp_path / "out.jsonl")
    assert code == 0, err
    assert jsonl(tmp_path / "out.jsonl")[0]["tokens"][3] == "New York"


# --------------------------------------------------------------------------- (b) BBC articles


def bbc_articles(n: int = 5) -> list[dict[str, str]]:
    """The first `n` rows of the real BBC CSV, as csv reads them; skip without the file."""
    import os

    for d in (os.environ.get("ALRUN_DATA_DIR"), ROOT / "data", ROOT.parent / "shared" / "data"):
        path = Path(d) / "bbc-news" / "bbc-news.csv" if d else None
        if path is not None and path.exists():
            with path.open(encoding="utf-8", newline="") as f:
                rows = csv.DictReader(f)
                return [next(rows) for _ in range(n)]
    pytest.skip("bbc-news/bbc-news.csv not found; set ALRUN_DATA_DIR")


@pytest.mark.parametrize("unit", ["document", "sentence"])
def test_bbc_articles_export_every_span_at_its_original_offsets(tmp_path, capsys, unit):
    rows = bbc_articles()
    articles = {r["ArticleId"]: r["Text"] for r in rows}
    assert any("\n" in t for t in articles.values())  # titles and paragraphs: newlines
    with (tmp_path / "pool.csv").open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["ArticleId", "Text"])
        w.writerows([r["ArticleId"], r["Text"]] for r in rows)
    cfg = raw_cfg(tmp_path, tmp_path / "pool.csv", text_field="Text", id_field="ArticleId")
    pool = load_raw_splits(cfg, cfg.dataset, "ner", unit).pool
    assert isinstance(pool, SeqDataset) and pool.source is not None
    # the pool's sentences are sentences_with_offsets' sentences of the original articles
    split = sentences_with_offsets(list(articles.values()))
    want_starts = {(d, s[0][0]) for d, sents in zip(articles, split, strict=True) for s in sents}
    got_starts = {(src.doc_id, src.offset + a) for src in pool.source for a, _ in src.sentences}
    assert got_starts == want_starts
    # labelled out of order (a strategy's order), a third of the sentences when unit=sentence
    idx = list(range(len(pool)))[::-1] if unit == "document" else list(range(0, len(pool), 3))[::-1]
    labels = [capitalised_tags(pool, i) for i in idx]
    want = doc_spans(pool, idx, labels)
    assert len(want) > 50
    labeled = write_labeled(tmp_path, Ner(), pool, idx, labels, unit)
    for r in jsonl(labeled):
        doc = articles[r["doc"]]
        for text, start in zip(r["text"], r["doc_offsets"], strict=True):
            assert doc[start : start + len(text)] == text

    code, err = convert(capsys, "to-prodigy", tmp_path, tmp_path / "out.jsonl")
    assert code == 0, err
    tasks = jsonl(tmp_path / "out.jsonl")
    assert check_prodigy(tasks, articles) == want
    assert {k for t in tasks for k in t["meta"]} == {
        "id",
        "index",
        "round",
        "doc",
        "offset",
        "sentence",
    }

    n_sents = len(tasks)
    code, err = convert(capsys, "to-iob", tmp_path, tmp_path / "train.jsonl")
    assert code == 0, err
    assert f"{n_sents} examples read, {n_sents} converted" in err and f"spans: {len(want)}" in err
    iob = jsonl(tmp_path / "train.jsonl")
    assert [x["tokens"] for x in iob] == [[t["text"] for t in task["tokens"]] for task in tasks]
    assert sum(len(entities(x["tags"])) for x in iob) == len(want)

    code, err = convert(capsys, "to-conll", tmp_path / "labeled.jsonl", tmp_path / "train.conll")
    assert code == 0, err
    docs = read_conll(tmp_path / "train.conll")
    labelled_docs = list(dict.fromkeys(t["meta"]["doc"] for t in tasks))
    assert len(docs) == len(labelled_docs)  # one -DOCSTART- per document
    assert (tmp_path / "train.conll").read_text(encoding="utf-8").count("-DOCSTART-") == len(docs)
    assert sum(len(entities(tags)) for _, sents in docs for _, _, tags in sents) == len(want)
    # each document's sentences in the order they stand in the article
    by_doc = {
        d: sorted((t for t in tasks if t["meta"]["doc"] == d), key=lambda t: t["meta"]["offset"])
        for d in labelled_docs
    }
    for (_, sents), d in zip(docs, labelled_docs, strict=True):
        assert [words for _, words, _ in sents] == [
            [t["text"] for t in task["tokens"]] for task in by_doc[d]
        ]


# --------------------------------------------------------------------------- (c) CoNLL runs

CONLL = """-DOCSTART- -X- O O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC
lamb NN I-NP O
. . O O

Peter NNP B-NP B-PER
Blackburn NNP I-NP I-PER

-DOCSTART- -X- O O

BRUSSELS NNP B-NP I-LOC
1996-08-22 CD I-NP O
"""
SCHEME = {t: t for t in ("PER", "ORG", "LOC", "MISC")}
# labeled.jsonl as alrun wrote it before runs kept original text: byte for byte
EU = '[["EU", "rejects", "German", "lamb", "."]'
EU_TAGS = '[["B-ORG", "O", "B-MISC", "O", "O"]'
PETER, PETER_TAGS = '["Peter", "Blackburn"]', '["B-PER", "I-PER"]'
BRUSSELS = '"tokens": [["BRUSSELS", "1996-08-22"]], "tags": [["B-LOC", "O"]], "round": 0}'
CONLL_DOCUMENT_RECORDS = [
    '{"index": 1, "id": "d1", ' + BRUSSELS,
    f'{{"index": 0, "id": "d0", "tokens": {EU}, {PETER}], "tags": {EU_TAGS}, {PETER_TAGS}], '
    '"round": 0}',
]
CONLL_SENTENCE_RECORDS = [
    f'{{"index": 1, "id": "d0-s1", "tokens": [{PETER}], "tags": [{PETER_TAGS}], "round": 0}}',
    '{"index": 2, "id": "d1-s0", ' + BRUSSELS,
    f'{{"index": 0, "id": "d0-s0", "tokens": {EU}], "tags": {EU_TAGS}], "round": 0}}',
]


@pytest.mark.parametrize(
    ("unit", "order", "expected", "doc_order"),
    [
        ("document", [1, 0], CONLL_DOCUMENT_RECORDS, [1, 0]),
        ("sentence", [1, 2, 0], CONLL_SENTENCE_RECORDS, [0, 1]),  # d0 is labelled first
    ],
)
def test_conll_run_records_and_exports_are_unchanged(
    tmp_path, capsys, unit, order, expected, doc_order
):
    (tmp_path / "in.conll").write_text(CONLL, encoding="utf-8")
    docs = read_conll(tmp_path / "in.conll")
    pool = seq_dataset(docs, SCHEME, unit)
    assert pool.source is None
    labeled = write_labeled(tmp_path, Ner(), pool, order, [pool.labels[i] for i in order], unit)
    assert labeled.read_text(encoding="utf-8").splitlines() == expected

    code, err = convert(capsys, "to-prodigy", labeled, tmp_path / "out.jsonl")
    assert code == 0, err
    tasks = jsonl(tmp_path / "out.jsonl")
    for t in tasks:  # tokens joined by single spaces, as always; no document offsets
        assert t["text"] == " ".join(tok["text"] for tok in t["tokens"])
        assert "offset" not in t["meta"]
    [eu] = [t for t in tasks if t["text"].startswith("EU ")]
    assert eu["spans"][0] == {
        "start": 0,
        "end": 2,
        "token_start": 0,
        "token_end": 0,
        "label": "ORG",
    }

    # to-conll puts each document back together, sentences in order, one -DOCSTART- each
    code, err = convert(capsys, "to-conll", labeled, tmp_path / "out.conll")
    assert code == 0, err
    back = read_conll(tmp_path / "out.conll")
    assert [[(w, t) for _, w, t in s] for _, s in back] == [
        [(w, t) for _, w, t in docs[d][1]] for d in doc_order
    ]


# --------------------------------------------------------------------------- multiclass, errors


def test_multiclass_run_exports_text_target_csv_and_jsonl(tmp_path, capsys):
    texts = ["Shares rose,  5%\non Friday.", 'He said "no"\r\nagain.', "Plain."]
    pool = TextDataset(["a", "b", "c"], texts, np.array([0, 1, 0]), ["business", "sport"])
    write_labeled(tmp_path, Multiclass(), pool, [2, 0, 1], [0, 0, 1], "document")
    code, err = convert(capsys, "to-textcat", tmp_path, tmp_path / "train.csv")
    assert code == 0 and "3 examples read, 3 converted" in err, err
    with (tmp_path / "train.csv").open(encoding="utf-8", newline="") as f:
        got = [(r["text"], r["target"]) for r in csv.DictReader(f)]
    assert got == [(texts[2], "business"), (texts[0], "business"), (texts[1], "sport")]
    code, err = convert(capsys, "to-textcat", tmp_path, tmp_path / "train.jsonl")
    assert code == 0, err
    assert jsonl(tmp_path / "train.jsonl")[2] == {"text": texts[1], "target": "sport"}
    code, err = convert(capsys, "to-iob", tmp_path, tmp_path / "x.jsonl")
    assert code == 2 and "text classification record; use to-textcat" in err


def test_a_broken_record_is_named_and_nothing_is_written(tmp_path, capsys):
    good = {"index": 0, "id": "a", "tokens": [["Hi", "Ann"]], "tags": [["O", "B-PER"]], "round": 0}
    good |= {"text": ["Hi  Ann"], "offsets": [[[0, 2], [4, 7]]], "doc": "a", "doc_offsets": [0]}
    bad = {**good, "index": 1, "offsets": [[[0, 2], [3, 7]]]}  # off by one: not "Ann"
    short = {**good, "index": 2, "tags": [["O"]]}
    (tmp_path / "labeled.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in (good, bad, short)), encoding="utf-8"
    )
    code, err = convert(capsys, "to-iob", tmp_path, tmp_path / "out.jsonl")
    assert code == 1 and not (tmp_path / "out.jsonl").exists()
    assert "3 examples read, 1 converted" in err
    assert "error: offsets do not point at the tokens in the text: 1 (line 2)" in err
    assert "error: a sentence's tokens and tags differ in length: 1 (line 3)" in err
    code, err = convert(capsys, "to-prodigy", tmp_path, tmp_path / "out.jsonl")
    assert code == 2 and "line 2: offsets do not point at the tokens" in err
    code, err = convert(capsys, "to-conll", tmp_path / "nowhere", tmp_path / "out.conll")
    assert code == 2 and "input not found" in err
    (tmp_path / "empty").mkdir()
    code, err = convert(capsys, "to-conll", tmp_path / "empty", tmp_path / "out.conll")
    assert code == 2 and "holds no labeled.jsonl" in err


def test_report_lines_read_like_the_prodigy_reports(tmp_path, capsys):
    """The report's first line has the prodigy-to-* shape: 'FILE: N examples read, M converted'."""
    rec = {"index": 0, "id": "a", "tokens": [["Hi"]], "tags": [["O"]], "round": 0}
    (tmp_path / "labeled.jsonl").write_text(json.dumps(rec) + "\n", encoding="utf-8")
    code, err = convert(capsys, "to-iob", tmp_path, tmp_path / "out.jsonl")
    assert code == 0
    first = io.StringIO(err).readline().strip()
    assert first == f"{tmp_path / 'labeled.jsonl'}: 1 examples read, 1 converted"
    assert jsonl(tmp_path / "out.jsonl") == [{"tokens": ["Hi"], "tags": ["O"]}]


@pytest.mark.parametrize("unit", ["sentence", "document"])
def test_a_prodigy_dataset_pool_is_served_as_written(tmp_path, unit):
    """dataset=prodigy as the pool (gold NER tasks, tokens with offsets but no ws, as older
    Prodigy versions wrote them): the annotator's sentences are each task's own text, byte for
    byte, and every token's offsets point into it."""
    from alrun.data.tokens import prodigy_docs
    from alrun.oracles.web import original

    texts = ["I really  like the style .", "Apple\tsells  phones in Paris.", "Ok  then ."]
    lines = []
    for k, text in enumerate(texts):
        toks, pos = [], 0
        for w in text.replace("\t", " ").split():
            start = text.index(w, pos)
            toks.append({"text": w, "start": start, "end": start + len(w)})  # no ws
            pos = start + len(w)
        lines.append(
            {"text": text, "tokens": toks, "spans": [], "meta": {"doc": "d" if k else "a"}}
        )
    path = tmp_path / "tasks.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    cfg = OmegaConf.create({"alignment": "strict", "tokenizer": "blank:en"})
    pool = seq_dataset(prodigy_docs(cfg, path), {}, unit)
    assert pool.source is not None
    served = [original(src, s) for src in pool.source for s in range(len(src.sentences))]
    assert [x["text"] for x in served] == texts  # each task's text as written
    for x in served:
        assert [x["text"][t["start"] : t["end"]] for t in x["tokens"]] == [
            t["text"] for t in x["tokens"]
        ]
    assert served[0]["tokens"][1]["ws"] and not served[0]["tokens"][-1]["ws"]
