"""`oracle=web` on a raw text pool (dataset=raw_text): real BBC articles, no labels.

The evaluation set (eval.size random items, held out, never trained on) is served first as a
batch of its own, without suggestions; the rounds follow, pre-filled from round 1. Every text
served is the file's own, byte for byte; every NER span is stored with character offsets the
server computed; the database exports to Prodigy tasks that point back into the documents.
A SIGKILL during the evaluation set or during a round loses no answer and asks nothing twice.
Real `alrun` processes, a real SQLite file, requests like the page sends.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from web_args import RAW_BBC, RAW_NER

from alrun.convert import main as convert

pytestmark = pytest.mark.slow

EVAL = -1  # the evaluation set's round in the database and in task ids


def rows(run: Path) -> list[tuple]:
    """The saved answers (not undone), oldest first."""
    with sqlite3.connect(run / "annotations.db") as db:
        return db.execute(
            "select round, pool_index, session, answer, label, spans from answers "
            "where undone is null order by id"
        ).fetchall()


def batch_indices(run: Path, rnd: int) -> list[int]:
    """Pool indices of a stored batch, in serving order."""
    with sqlite3.connect(run / "annotations.db") as db:
        got = db.execute(
            "select pool_index from batches where round = ? order by position", (rnd,)
        ).fetchall()
    return [i for (i,) in got]


def jsonl(path: Path) -> list[dict]:
    """The records of a JSONL file."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def capitals(task: dict[str, Any]) -> dict[str, Any]:
    """A consistent annotator: every run of capitalised words is an ORG, given by token
    indices only (the server computes the characters)."""
    spans = []
    for s, sent in enumerate(task["sentences"]):
        first = None
        for k, tok in enumerate([*sent["tokens"], None]):
            cap = tok is not None and tok["text"][:1].isupper() and tok["text"].isalpha()
            if cap and first is None:
                first = k
            elif not cap and first is not None:
                spans.append({"sentence": s, "token_start": first, "token_end": k - 1})
                spans[-1]["label"] = "ORG"
                first = None
    return {"answer": "accept", "spans": spans}


def answer_batch(s, rnd: int, choose: Callable[[dict], dict]) -> list[dict]:
    """Answer the open batch `rnd` with `choose(task) -> answer body`, stopping at its end
    (a task of the next batch stays leased to this session, served again next time)."""
    done = []
    while (task := s.api("/api/next")[1]["task"]) is not None and task["round"] == rnd:
        code, reply = s.api("/api/answer", {"id": task["id"], **choose(task)})
        assert code == 200, reply
        done.append(task)
    return done


def drive(
    s, choose: Callable[[dict], dict], stop: Callable[[dict], bool] | None = None
) -> tuple[dict[int, list[dict]], dict[int, dict]]:
    """Answer every batch as it opens, until alrun exits (or `stop(status)` says so when a
    batch opens): the tasks served and the status each batch opened with, by round."""
    served: dict[int, list[dict]] = {}
    opened: dict[int, dict] = {}
    deadline = time.monotonic() + 240
    while s.proc.poll() is None and time.monotonic() < deadline:
        try:
            st = s.status()
        except OSError:
            time.sleep(0.2)  # the run is ending: the server is gone
            continue
        if st["state"] == "labelling" and st["batch"]["answered"] < st["batch"]["total"]:
            if st["round"] not in opened:
                opened[st["round"]] = st
                if stop is not None and stop(st):
                    break
            served.setdefault(st["round"], []).extend(answer_batch(s, st["round"], choose))
        else:
            time.sleep(0.2)
    return served, opened


def check_sentences(task: dict[str, Any], texts: dict[str, str]) -> None:
    """Each sentence is its document's text at its offset, byte for byte; tokens point into
    it; ws says whether whitespace follows."""
    doc = texts[task["doc_id"]]
    for sent in task["sentences"]:
        text, off = sent["text"], sent["offset"]
        assert doc[off : off + len(text)] == text
        for k, tok in enumerate(sent["tokens"]):
            assert text[tok["start"] : tok["end"]] == tok["text"] and tok["id"] == k
            assert tok["ws"] == text[tok["end"] : tok["end"] + 1].isspace()


def export(run: Path, tmp_path: Path) -> list[dict]:
    """`alrun-convert to-prodigy --from db RUN_DIR`, in-process: the exported tasks."""
    out = tmp_path / "answers.jsonl"
    with pytest.raises(SystemExit) as done:
        convert(["to-prodigy", "--from", "db", str(run), str(out)])
    assert done.value.code == 0
    return jsonl(out)


def check_eval_rows(run: Path, metric: str, n: int) -> None:
    """Every round row reports the evaluation sample with its interval; no test split."""
    got = jsonl(run / "rounds.jsonl")
    assert [r["labeled"] for r in got] == [2, 4, 6]
    for r in got:
        ev = r["eval"]
        assert ev["n"] == n and ev["level"] == 0.95
        assert 0 <= ev[f"{metric}_low"] <= ev[f"{metric}_high"] <= 1
        assert r["heldout"] == f"evaluation sample ({n} items)"
        assert r["test"][metric] == ev[metric]


def test_raw_ner_sentences_eval_set_first_original_text_and_offsets(serve, news_csv, tmp_path):
    run = tmp_path / "run"
    s = serve(*RAW_NER, data=news_csv.dir, run=run)
    st = s.wait_round(EVAL)
    assert st["phase"] == "eval" and st["labeled"] == 0
    assert st["eval"] == {"total": 4, "answered": 0, "accepted": 0}
    assert "evaluation set" in st["message"]
    first = s.api("/api/next")[1]["task"]
    assert first["id"] == f"-1:{first['index']}" and first["round"] == EVAL
    assert s.api("/api/answer", {"id": first["id"], "answer": "reject"})[0] == 200
    st = s.status()
    assert st["eval"] == {"total": 4, "answered": 1, "accepted": 0} and st["labeled"] == 0

    served, opened = drive(s, capitals)
    assert s.wait() == 0, s.output()
    served[EVAL].insert(0, first)
    assert sorted(served) == [EVAL, 0, 1, 2] and len(served[EVAL]) == 4
    assert opened[0]["phase"] == "rounds" and opened[0]["round"] == 0
    assert opened[0]["eval"] == {"total": 4, "answered": 4, "accepted": 3}
    assert opened[0]["labeled"] == 0 and opened[0]["score"] is None
    # no suggestions on the evaluation set (nor in round 0: no model yet); from round 1 on
    assert all(t["spans"] == [] for rnd in (EVAL, 0) for t in served[rnd])
    assert sum(len(t["spans"]) for rnd in (1, 2) for t in served[rnd]) > 0
    score = opened[1]["score"]
    assert score["heldout"] == "evaluation sample (3 items)" and score["eval"]["metric"] == "f1"
    assert score["eval"]["low"] <= score["eval"]["high"] and score["eval"]["n"] == 3
    for t in (t for ts in served.values() for t in ts):
        check_sentences(t, news_csv.texts)

    check_eval_rows(run, "f1", 3)
    held = set(batch_indices(run, EVAL))
    assert held == {t["index"] for t in served[EVAL]}
    labeled = jsonl(run / "labeled.jsonl")
    assert len(labeled) == 6 and not held & {r["index"] for r in labeled}
    for _, _, _, _, _, spans in rows(run):  # offsets computed on the server from the tokens
        for sp in json.loads(spans):
            assert {"start", "end", "token_start", "token_end", "label"} <= sp.keys()

    tasks = export(run, tmp_path)
    assert len(tasks) == 10 and sum(t["meta"].get("eval", False) for t in tasks) == 4
    n_spans = 0
    for t in tasks:
        doc, off, text = news_csv.texts[t["meta"]["doc"]], t["meta"]["offset"], t["text"]
        assert doc[off : off + len(text)] == text and t["_annotator_id"] == "tester"
        for sp in t["spans"]:
            toks = t["tokens"]
            assert (sp["start"], sp["end"]) == (
                toks[sp["token_start"]]["start"],
                toks[sp["token_end"]]["end"],
            )
            assert doc[off + sp["start"] : off + sp["end"]] == text[sp["start"] : sp["end"]]
            n_spans += 1
    assert n_spans > 0


def test_raw_multiclass_eval_set_first_texts_exact(serve, news_csv, tmp_path):
    run = tmp_path / "run"
    s = serve(*RAW_BBC, data=news_csv.dir, run=run)
    st = s.wait_round(EVAL)
    assert st["phase"] == "eval" and st["labels"] == sorted(set(news_csv.gold.values()))

    def gold(task: dict) -> dict:
        return {"answer": "accept", "label": news_csv.gold[task["item_id"]]}

    served, opened = drive(s, gold)
    assert s.wait() == 0, s.output()
    assert sorted(served) == [EVAL, 0, 1, 2] and len(served[EVAL]) == 4
    assert all(t["suggestion"] is None for rnd in (EVAL, 0) for t in served[rnd])
    assert all(t["suggestion"]["label"] in st["labels"] for rnd in (1, 2) for t in served[rnd])
    every = [t for ts in served.values() for t in ts]
    assert all(t["text"] == news_csv.texts[t["item_id"]] for t in every)  # exactly as in file
    assert any("\n\n" in t["text"] for t in every)
    assert opened[1]["score"]["eval"]["metric"] == "accuracy"

    check_eval_rows(run, "accuracy", 4)
    labeled = jsonl(run / "labeled.jsonl")
    assert not set(batch_indices(run, EVAL)) & {r["index"] for r in labeled}
    assert {r["index"]: r["label"] for r in labeled} == {
        t["index"]: news_csv.gold[t["item_id"]] for rnd in (0, 1, 2) for t in served[rnd]
    }
    tasks = export(run, tmp_path)
    evals = [t for t in tasks if t["meta"].get("eval")]
    assert len(evals) == 4 and all(t["meta"]["round"] == EVAL for t in evals)
    assert all(t["text"] == news_csv.texts[t["meta"]["id"]] for t in tasks)


@pytest.mark.full
def test_killed_during_the_eval_set_keeps_every_answer(serve, news_csv, tmp_path):
    run = tmp_path / "run"
    s = serve(*RAW_BBC, data=news_csv.dir, run=run)
    s.wait_round(EVAL)
    given = []
    for body in ({"answer": "reject"}, {"answer": "accept", "label": "tech"}):
        task = s.api("/api/next")[1]["task"]
        assert s.api("/api/answer", {"id": task["id"], **body})[0] == 200
        given.append(task["index"])
    before = rows(run)
    s.kill()  # SIGKILL: 2 of the 4 evaluation items answered

    s = serve(*RAW_BBC, data=news_csv.dir, run=run)
    st = s.wait_round(EVAL)
    assert st["batch"] == {"total": 4, "answered": 2, "accepted": 1} and st["phase"] == "eval"
    served, _ = drive(s, lambda t: {"answer": "accept", "label": "sport"})
    assert s.wait() == 0, s.output()
    assert not {t["index"] for t in served[EVAL]} & set(given) and len(served[EVAL]) == 2
    pairs = [(t["round"], t["index"]) for ts in served.values() for t in ts]
    assert len(pairs) == len(set(pairs)) == 8  # nothing asked twice
    after = rows(run)
    assert after[:2] == before and len(after) == 10
    assert sorted(batch_indices(run, EVAL)) == sorted([*given, *(t["index"] for t in served[EVAL])])
    check_eval_rows(run, "accuracy", 3)


@pytest.mark.full
def test_killed_during_a_round_keeps_every_answer(serve, news_csv, tmp_path):
    run = tmp_path / "run"
    s = serve(*RAW_NER, data=news_csv.dir, run=run)
    served, _ = drive(s, capitals, stop=lambda st: st["round"] == 1)
    assert sorted(served) == [EVAL, 0]
    task = s.api("/api/next")[1]["task"]
    assert s.api("/api/answer", {"id": task["id"], **capitals(task)})[0] == 200
    before = rows(run)
    assert len(before) == 7
    s.kill()  # SIGKILL in round 1: the checkpoint holds round 0, the database the answer

    s = serve(*RAW_NER, data=news_csv.dir, run=run)
    st = s.wait_round(1)
    assert st["batch"] == {"total": 2, "answered": 1, "accepted": 1} and st["phase"] == "rounds"
    assert st["eval"] == {"total": 4, "answered": 4, "accepted": 4}
    assert "after round 0" in s.output()
    again, _ = drive(s, capitals)
    assert s.wait() == 0, s.output()
    assert sorted(again) == [1, 2] and [t["index"] for t in again[1]] != [task["index"]]
    assert len(again[1]) == 1
    after = rows(run)
    assert after[:7] == before and len(after) == 10
    check_eval_rows(run, "f1", 4)
