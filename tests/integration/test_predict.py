"""Saved models predict what they predicted before saving; `alrun-predict` turns a finished
run's model into Prodigy pre-annotations."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_runs import ROOT, jsonl  # same folder: pytest puts it on sys.path

from alrun.models import MODEL_FILE, ModelContext, build_model, load_model, save_model
from alrun.predict import main

PREDICT = Path(sys.executable).parent / "alrun-predict"
LABELS = ["business", "entertainment", "politics", "sport", "tech"]
TYPES = {"PER", "ORG", "LOC", "MISC"}

# Tiny settings: a save/load round trip needs a fitted model, not a good one.
MULTICLASS = [
    ({"name": "tfidf_logreg"}, ["model.joblib"]),
    ({"name": "minilm_embed_logreg", "max_length": 64, "max_windows": 1}, ["classifier.joblib"]),
    ({"name": "minilm_embed_centroid", "max_length": 64, "max_windows": 1}, ["centroids.npz"]),
    (
        {"name": "minilm_finetune", "epochs": 1, "max_length": 32, "batch_size": 10},
        ["config.json", "model.safetensors", "tokenizer.json", "head.safetensors"],
    ),
]
NER = [
    ({"name": "crf_ner", "max_iterations": 20}, ["model.crfsuite"]),
    (
        {"name": "spacy_ner", "epochs": 1, "min_steps": 0, "width": 32, "depth": 1},
        ["spacy/meta.json", "spacy/config.cfg", "spacy/beam_ner/model"],
    ),
    (
        {"name": "minilm_token_cls", "epochs": 1, "min_steps": 0, "max_length": 32},
        ["config.json", "model.safetensors", "tokenizer.json"],
    ),
]
FAST = {"tfidf_logreg", "crf_ner"}  # seconds: not marked slow


def _cases(cases):
    return [
        pytest.param(
            spec, files, id=spec["name"], marks=[] if spec["name"] in FAST else [pytest.mark.slow]
        )
        for spec, files in cases
    ]


def assert_same(a, b) -> None:
    np.testing.assert_allclose(a.probs, b.probs, atol=1e-5)
    for key in ("mask", "best"):
        x, y = getattr(a, key), getattr(b, key)
        assert (x is None) == (y is None)
        if x is not None:
            np.testing.assert_array_equal(x, y)
    if a.seq_logprob is not None:
        np.testing.assert_allclose(a.seq_logprob, b.seq_logprob, atol=1e-5)


def round_trip(spec, ctx, fit_x, fit_y, test_x, tmp_path, info):
    model = build_model(ctx, spec)
    model.fit(fit_x, fit_y)
    before = model.predict(test_x)
    save_model(model, spec, ctx, tmp_path / "model", info)
    loaded, meta = load_model(tmp_path / "model", tmp_path / "fresh-cache")
    assert meta["spec"] == spec and meta["label_names"] == list(ctx.label_names)
    assert_same(before, loaded.predict(test_x))
    assert not (tmp_path / "fresh-cache").exists()  # no corpus: nothing cached on loading
    return loaded


@pytest.mark.parametrize(("spec", "files"), _cases(MULTICLASS))
def test_multiclass_model_round_trip(bbc_rows, tmp_path, spec, files):
    texts = [r["text"] for r in bbc_rows[:60]]
    labels = np.array([LABELS.index(r["label"]) for r in bbc_rows[:60]])
    n = 10 if spec["name"] == "minilm_finetune" else 40
    ctx = ModelContext(5, 0, tmp_path / "cache", corpus=texts, label_names=LABELS)
    # the first 5 test texts were in the run's corpus (cached embeddings), the rest never
    test_x = texts[n - 5 : n] + [r["text"] for r in bbc_rows[60:70]]
    round_trip(spec, ctx, texts[:n], labels[:n], test_x, tmp_path, {"task": "multiclass"})
    for f in files:
        assert (tmp_path / "model" / f).is_file(), f


@pytest.mark.parametrize(("spec", "files"), _cases(NER))
def test_ner_model_round_trip(conll_slice, tmp_path, spec, files):
    names = conll_slice["names"]
    (tr_x, tr_y), (te_x, _) = conll_slice["train"], conll_slice["test"]
    ctx = ModelContext(len(names), 0, tmp_path / "cache", label_names=names)
    round_trip(spec, ctx, tr_x[:48], tr_y[:48], te_x[:30], tmp_path, {"task": "ner"})
    for f in files:
        assert (tmp_path / "model" / f).is_file(), f
    if spec["name"] == "crf_ner":  # CRFsuite's own tagger reads the file
        import pycrfsuite

        tagger = pycrfsuite.Tagger()
        tagger.open(str(tmp_path / "model" / "model.crfsuite"))
        assert set(tagger.labels()) <= set(names)
        tagger.close()


# --------------------------------------------------------------------------- alrun-predict


def predict_cli(run: Path, lines: list[str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(PREDICT), str(run), *args],
        input="".join(x + "\n" for x in lines),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "ALRUN_PROGRESS": "0"},
    )


def check_ner_task(task: dict, text: str) -> None:
    assert task["text"] == text
    toks = task["tokens"]
    for i, t in enumerate(toks):
        assert t["id"] == i and text[t["start"] : t["end"]] == t["text"] and t["text"].strip()
    for s in task["spans"]:
        assert text[s["start"] : s["end"]] == s["text"]
        assert s["label"] in TYPES and 0 < s["score"] <= 1
        assert 0 <= s["token_start"] <= s["token_end"] < len(toks)
        assert toks[s["token_start"]]["start"] == s["start"]
        assert toks[s["token_end"]]["end"] == s["end"]
    assert "answer" not in task


@pytest.mark.slow
@pytest.mark.full  # default run: every candidate's save/load round trip, the CLI's errors
def test_predict_after_a_bbc_run(tmp_path, run_alrun, bbc_rows, monkeypatch, capsys):
    """alrun-predict in-process on a real run's model (its command line: below)."""
    args = ("candidates=fast", "loop.initial_strategy=random", "strategy=margin")  # no encoder
    run = run_alrun(*args, "logger=none", "loop.budget=20")
    meta = json.loads((run / "model" / MODEL_FILE).read_text())
    assert meta["task"] == "multiclass" and meta["candidate"] == "tfidf_logreg"
    assert (run / "model" / "model.joblib").is_file()
    texts = [r["text"] for r in bbc_rows[-3:]] + ["", "Shares rose 5% on Friday."]
    lines = [
        json.dumps({"text": t, "meta": {"source": "x"}, "_input_hash": i})
        for i, t in enumerate(texts)
    ]
    lines.insert(2, "   ")  # blank lines are skipped
    code, out = run_main(monkeypatch, capsys, [run], "".join(x + "\n" for x in lines))
    assert code == 0, out.err
    tasks = [json.loads(x) for x in out.out.splitlines()]
    assert [t["text"] for t in tasks] == texts
    for i, t in enumerate(tasks):
        assert [o["id"] for o in t["options"]] == LABELS and "answer" not in t
        assert len(t["accept"]) == 1 and t["accept"][0] in LABELS
        scores = t["meta"]["scores"]
        assert sum(scores.values()) == pytest.approx(1.0)
        assert t["meta"]["score"] == max(scores.values()) == scores[t["accept"][0]]
        assert t["meta"]["source"] == "x" and t["_input_hash"] == i
    # the model folder itself, and files instead of stdin/stdout
    (tmp_path / "in.jsonl").write_text(lines[0] + "\n")
    args = [run / "model", "-i", tmp_path / "in.jsonl", "-o", tmp_path / "out" / "p.jsonl"]
    code, out = run_main(monkeypatch, capsys, args, "")
    assert code == 0 and out.out == "", out.err
    assert jsonl(tmp_path / "out" / "p.jsonl") == tasks[:1]


# the default run: NER models saved and loaded (test_ner_model_round_trip), alrun-predict
# after a BBC run (above)
@pytest.mark.slow
@pytest.mark.full
def test_predict_after_a_conll_run(data_dir, run_alrun):
    args = (
        "dataset=conll2003",
        "loop.unit=sentence",
        "loop.initial_size=100",
        "loop.round_size=50",
        "loop.budget=150",
        "models.crf_ner.max_iterations=50",
        "logger=none",
    )
    run = run_alrun(*args, data=data_dir)
    assert (run / "model" / "model.crfsuite").is_file()
    texts = [
        "EU rejects German call to boycott British lamb .",
        "Peter  Blackburn,\nBRUSSELS 1996-08-22",
        "   ",
        "Germany 's representative to the European Union 's veterinary committee Werner "
        "Zwingmann said on Wednesday consumers should buy sheepmeat from countries other "
        "than Britain .",
        "",
    ]
    proc = predict_cli(run, [json.dumps({"text": t, "id": i}) for i, t in enumerate(texts)])
    assert proc.returncode == 0, proc.stderr
    tasks = [json.loads(x) for x in proc.stdout.splitlines()]
    assert len(tasks) == len(texts)
    for i, (task, text) in enumerate(zip(tasks, texts, strict=True)):
        check_ner_task(task, text)
        assert task["id"] == i
    assert [t["text"] for t in tasks[0]["tokens"]][:3] == ["EU", "rejects", "German"]
    assert tasks[2]["tokens"] == tasks[2]["spans"] == [] == tasks[4]["tokens"]
    found = [(s["text"], s["label"]) for t in tasks for s in t["spans"]]
    assert len(found) >= 2, found
    assert all(0 < t["meta"]["score"] <= 1 for t in tasks if t["tokens"])


# --------------------------------------------------------------------------- errors


@pytest.fixture
def tfidf_run(bbc_rows, tmp_path) -> Path:
    """A run folder holding a tiny saved tf-idf model, without running the CLI."""
    ctx = ModelContext(5, 0, tmp_path / "cache", label_names=LABELS)
    model = build_model(ctx, {"name": "tfidf_logreg"})
    model.fit([r["text"] for r in bbc_rows[:20]], [LABELS.index(r["label"]) for r in bbc_rows[:20]])
    info = {"task": "multiclass", "candidate": "tfidf_logreg", "tokenizer": "blank:en"}
    save_model(model, {"name": "tfidf_logreg"}, ctx, tmp_path / "run" / "model", info)
    return tmp_path / "run"


def run_main(monkeypatch, capsys, args, stdin: str):
    import io

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin.encode("utf-8"))))
    code = main([str(a) for a in args])
    return code, capsys.readouterr()


def test_predict_in_process(tfidf_run, monkeypatch, capsys):
    stdin = '{"text": "The team won the cup final.", "answer": "accept", "_task_hash": 1}\n'
    code, out = run_main(monkeypatch, capsys, [tfidf_run], stdin)
    assert code == 0, out.err
    [task] = [json.loads(x) for x in out.out.splitlines()]
    assert "answer" not in task and "_task_hash" not in task and task["accept"][0] in LABELS


@pytest.mark.parametrize(
    ("stdin", "message"),
    [
        ('{"text": "fine"}\n\n{"text": "broken"\n', "<stdin> line 3: invalid JSON"),
        (
            '{"text": "fine"}\n{"body": "no text"}\n',
            "<stdin> line 2: no field 'text' (fields: body)",
        ),
        ('{"text": 3}\n', "<stdin> line 1: field 'text' is int, not a string"),
        ("[1, 2]\n", "<stdin> line 1: expected a JSON object per line, got list"),
        ('{"text": "x", "meta": "m"}\n', "<stdin> line 1: field 'meta' must be a JSON object"),
    ],
)
def test_bad_input_line_exits_2_naming_the_line(tfidf_run, monkeypatch, capsys, stdin, message):
    code, out = run_main(monkeypatch, capsys, [tfidf_run], stdin)
    assert code == 2 and out.out == ""
    assert out.err.startswith("alrun-predict: error: ") and message in out.err, out.err


def test_folder_without_a_model_fails_clearly(tmp_path, monkeypatch, capsys):
    (tmp_path / "run").mkdir()
    code, out = run_main(monkeypatch, capsys, [tmp_path / "run"], '{"text": "x"}\n')
    assert code == 2 and "holds no saved model" in out.err and "finished" in out.err
    code, out = run_main(monkeypatch, capsys, [tmp_path / "nowhere"], "")
    assert code == 2 and "not found" in out.err


def test_incomplete_model_folder_fails_clearly(tfidf_run, monkeypatch, capsys):
    (tfidf_run / "model" / "model.joblib").unlink()
    code, out = run_main(monkeypatch, capsys, [tfidf_run], '{"text": "x"}\n')
    assert code == 2 and "could not load the model" in out.err, out.err


@pytest.mark.slow
def test_cli_bad_line_exits_2(tfidf_run):
    proc = predict_cli(tfidf_run, ['{"text": "ok"}', "not json"])
    assert proc.returncode == 2 and proc.stdout == ""
    assert "alrun-predict: error: <stdin> line 2: invalid JSON" in proc.stderr


# --------------------------------------------------------------------------- raw text


@pytest.fixture
def crf_run(conll_slice, tmp_path) -> Path:
    """A run folder holding a small saved CRF (CoNLL types), without running the CLI."""
    names = conll_slice["names"]
    ctx = ModelContext(len(names), 0, tmp_path / "cache", label_names=names)
    spec = {"name": "crf_ner", "max_iterations": 30}
    model = build_model(ctx, spec)
    model.fit(*conll_slice["train"])
    info = {"task": "ner", "candidate": "crf_ner", "tokenizer": "blank:en"}
    save_model(model, spec, ctx, tmp_path / "run" / "model", info)
    return tmp_path / "run"


RAW = [
    "Peter  Blackburn flew to Paris on Monday.\tThen John Smith met the  European Union.",
    "Café owners in Köln  said “no” to Germany 's plan .  Angela Merkel disagreed.",
    "   ",  # whitespace only: no tokens, no spans
    "Shares in British  Airways rose 5% (£1.2bn) , said Reuters .",
]


def check_raw_tasks(tasks: list[dict], texts: list[str]) -> None:
    """Every task is its input text byte for byte, tokens and spans at offsets into it."""
    assert [t["text"] for t in tasks] == texts
    for task, text in zip(tasks, texts, strict=True):
        check_ner_task(task, text)
        covered = "".join(text[t["start"] : t["end"]] for t in task["tokens"])
        assert covered == "".join(text.split())  # every non-space character is in a token
        for t in task["tokens"]:
            assert t["ws"] == text[t["end"] : t["end"] + 1].isspace()


def test_predict_tags_raw_text_files_at_their_original_offsets(
    crf_run, tmp_path, monkeypatch, capsys
):
    """.txt (a document a line, CRLF and blank lines), CSV (a text column with quoted newlines,
    --text-field/--id-field) and JSONL: the tasks' spans point into the original text."""
    txt = tmp_path / "in.txt"
    txt.write_bytes(("\r\n".join([RAW[0], RAW[1], "", RAW[3]]) + "\r\n").encode("utf-8"))
    code, out = run_main(monkeypatch, capsys, [crf_run, "-i", txt], "")
    assert code == 0, out.err
    tasks = [json.loads(x) for x in out.out.splitlines()]
    check_raw_tasks(tasks, [RAW[0], RAW[1], RAW[3]])
    assert [t["meta"]["id"] for t in tasks] == ["line-1", "line-2", "line-4"]
    spans = {(s["text"], s["label"]) for t in tasks for s in t["spans"]}
    assert ("Peter  Blackburn", "PER") in spans, spans  # across a double space, as written
    assert any(s["token_start"] > 8 for s in tasks[0]["spans"])  # from its second sentence

    docs = [RAW[0] + "\n\n" + RAW[1], RAW[2], RAW[3] + "\r\nLondon  ."]
    with (tmp_path / "in.csv").open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["ArticleId", "Text"])
        w.writerows([f"a{i}", d] for i, d in enumerate(docs))
    args = [crf_run, "-i", tmp_path / "in.csv", "--text-field", "Text", "--id-field", "ArticleId"]
    code, out = run_main(monkeypatch, capsys, [*args, "-o", tmp_path / "p.jsonl"], "")
    assert code == 0, out.err
    tasks = jsonl(tmp_path / "p.jsonl")
    check_raw_tasks(tasks, docs)
    assert [t["meta"]["id"] for t in tasks] == ["a0", "a1", "a2"]
    assert tasks[1]["tokens"] == tasks[1]["spans"] == []
    code, out = run_main(monkeypatch, capsys, [crf_run, "-i", tmp_path / "in.csv"], "")
    assert code == 2 and "no column 'text' (columns: ArticleId, Text)" in out.err
    code, out = run_main(monkeypatch, capsys, [crf_run, "-i", txt, "--id-field", "x"], "")
    assert code == 2 and "--id-field names a CSV column" in out.err

    stdin = "".join(json.dumps({"text": d, "meta": {"k": i}}) + "\n" for i, d in enumerate(docs))
    code, out = run_main(monkeypatch, capsys, [crf_run, "--sentencizer", "none"], stdin)
    assert code == 0, out.err
    tasks = [json.loads(x) for x in out.out.splitlines()]
    check_raw_tasks(tasks, docs)
    assert [t["meta"]["k"] for t in tasks] == [0, 1, 2]


def test_predict_classifies_raw_text_files(tfidf_run, tmp_path, monkeypatch, capsys):
    docs = ["The team  won the cup final.\tAgain.", "Shares rose,\n5% on Friday."]
    with (tmp_path / "in.tsv").open("w", encoding="utf-8", newline="") as f:
        csv.writer(f, delimiter="\t").writerows([["text"], *[[d] for d in docs]])
    code, out = run_main(monkeypatch, capsys, [tfidf_run, "-i", tmp_path / "in.tsv"], "")
    assert code == 0, out.err
    tasks = [json.loads(x) for x in out.out.splitlines()]
    assert [t["text"] for t in tasks] == docs
    assert [t["meta"]["id"] for t in tasks] == ["line-2", "line-3"]  # the quoted newline
    assert all(t["accept"][0] in LABELS for t in tasks)
    (tmp_path / "in.txt").write_text(docs[0] + "\n\n", encoding="utf-8")
    code, out = run_main(monkeypatch, capsys, [tfidf_run, "-i", tmp_path / "in.txt"], "")
    assert code == 0, out.err
    assert [json.loads(x)["text"] for x in out.out.splitlines()] == docs[:1]
