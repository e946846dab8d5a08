"""Overlap and review, in-process: each task goes to k annotator sessions; agreeing answers
are final, disagreements wait for a reviewer's decision; the database keeps every answer and
the decision; a restart serves the same state. On a real SQLite file and real BBC/CoNLL text.

The same through a real `alrun oracle=web` run and a real browser:
tests/integration/test_web_browser.py (the review walkthroughs).
"""

from __future__ import annotations

import json
import sqlite3

import pytest
from test_web_store import TOPICS, TYPES, Serving, ner_task, refused, text_task

from alrun.web.server import Annotator
from alrun.web.store import DB_FILE, Store


@pytest.fixture
def articles(bbc_rows) -> list[str]:
    return [r["text"] for r in bbc_rows[:8]]


@pytest.fixture
def sentences(conll) -> list[list[str]]:
    """Real CoNLL-2003 test sentences of more than 3 words."""
    return [toks for _, ss in conll["test"] for _, toks, _ in ss if len(toks) > 3][:4]


def team(store: Store, kind: str = "multiclass", labels=TOPICS, k: int = 2) -> Annotator:
    return Annotator(
        store, kind, labels, {}, lease_seconds=60, overlap=k, reviewers=frozenset({"lead"})
    )


def test_two_annotators_per_task_and_a_reviewer_for_disagreements(tmp_path, articles):
    store = Store(f"sqlite:///{tmp_path / DB_FILE}")
    ann = team(store)
    tasks = [text_task(0, i, articles[i]) for i in (4, 1, 6)]
    serving = Serving(ann, 0, tasks)
    # both annotators get the first task; a third session the next one (k = 2 holders at most)
    a, b = ann.next("ann")["task"], ann.next("bob")["task"]
    assert a["id"] == b["id"] == "0:4"
    assert ann.next("cat")["task"]["id"] == "0:1"
    assert ann.release("cat") == {"ok": True}
    reply = ann.next("lead")
    assert reply["task"] is None and reply["status"]["role"] == "reviewer"
    assert "nothing to review" in reply["status"]["message"]

    def say(who: str, task: str, label: str | None, answer: str = "accept") -> None:
        assert ann.answer(who, {"id": task, "answer": answer, "label": label})["ok"]

    say("ann", "0:4", "business")
    refused(lambda: say("ann", "0:4", "tech"), 409, "already answered; undo it first")
    st = ann.status("ann")["batch"]
    assert st == {"total": 3, "answered": 0, "accepted": 0, "review": 0, "mine": 1}
    assert ann.next("ann")["task"]["id"] == "0:1"  # not 0:4 again
    say("bob", "0:4", "tech")  # they disagree: 0:4 waits for review
    assert ann.status("x")["batch"]["review"] == 1 and ann.status("x")["batch"]["answered"] == 0
    refused(lambda: say("cat", "0:4", "tech"), 409, "it waits for review")

    # the reviewer sees both versions with their sessions, and corrects both
    got = ann.next("lead")["task"]
    assert got["id"] == "0:4" and got["review"] is True and got["text"] == articles[4]
    assert got["versions"] == [
        {"answer": "accept", "label": "business", "spans": None, "sessions": ["ann"]},
        {"answer": "accept", "label": "tech", "spans": None, "sessions": ["bob"]},
    ]
    refused(lambda: ann.undo("lead"), 409, "has no answer in this batch")
    say("lead", "0:4", "politics")
    refused(lambda: ann.undo("bob"), 409, "decided by reviewer 'lead'")
    back = ann.undo("lead")  # the reviewer takes it back: the task returns to review
    assert back["task"]["answer"] == {"answer": "accept", "label": "politics"}
    assert back["status"]["batch"]["review"] == 1
    say("lead", "0:4", "entertainment")
    assert ann.status("lead")["batch"]["mine"] == 1  # a reviewer's: the decisions it took

    say("ann", "0:1", "sport")
    refused(lambda: say("lead", "0:1", "politics"), 409, "does not wait for review")
    say("bob", "0:1", "sport")  # they agree: final without review
    st = ann.status("ann")["batch"]
    assert st == {"total": 3, "answered": 2, "accepted": 2, "review": 0, "mine": 2}
    for who in ("ann", "bob"):
        assert ann.next(who)["task"]["id"] == "0:6"
        say(who, "0:6", None, "reject")  # both reject: agreed, not labelled
    answers = serving.done()
    assert [(x["index"], x["session"], x["answer"], x["label"]) for x in answers] == [
        (4, "lead", "accept", "entertainment"),
        (1, "ann", "accept", "sport"),
        (6, "ann", "reject", None),
    ]
    # the database keeps every answer and every decision (the undone one marked)
    with sqlite3.connect(tmp_path / DB_FILE) as con:
        rows = con.execute("select pool_index, session, label from answers order by id").fetchall()
        decided = con.execute(
            "select pool_index, session, label, undone is null from decisions order by id"
        ).fetchall()
    assert sorted(rows) == [
        (1, "ann", "sport"),
        (1, "bob", "sport"),
        (4, "ann", "business"),
        (4, "bob", "tech"),
        (6, "ann", None),
        (6, "bob", None),
    ]
    assert decided == [(4, "lead", "politics", 0), (4, "lead", "entertainment", 1)]

    # a restart finds the batch answered in the database: it returns at once, same labels
    again = Annotator(
        Store(f"sqlite:///{tmp_path / DB_FILE}"),
        "multiclass",
        TOPICS,
        {},
        overlap=2,
        reviewers=frozenset({"lead"}),
    )
    assert [(x["index"], x["label"]) for x in again.serve_batch(0, tasks, 0)] == [
        (4, "entertainment"),
        (1, "sport"),
        (6, None),
    ]


def test_an_annotators_undo_takes_a_task_out_of_review(tmp_path, articles):
    store = Store(f"sqlite:///{tmp_path / DB_FILE}")
    ann = team(store)
    serving = Serving(ann, 2, [text_task(2, 3, articles[3])], before=5)
    for who, y in (("ann", "tech"), ("bob", "sport")):
        ann.next(who)
        ann.answer(who, {"id": "2:3", "answer": "accept", "label": y})
    assert ann.next("lead")["task"]["id"] == "2:3"  # the reviewer holds it
    back = ann.undo("bob")  # bob changes his mind before the review
    assert back["task"]["answer"] == {"answer": "accept", "label": "sport"}
    assert ann.next("lead")["task"] is None  # no longer in review
    refused(
        lambda: ann.answer("lead", {"id": "2:3", "answer": "accept", "label": "tech"}),
        409,
        "does not wait",
    )
    ann.answer("bob", {"id": "2:3", "answer": "accept", "label": "tech"})
    assert [(x["session"], x["label"]) for x in serving.done()] == [("ann", "tech")]


def test_ner_boundary_disagreement_is_reviewed(tmp_path, sentences):
    store = Store(f"sqlite:///{tmp_path / DB_FILE}")
    ann = team(store, "ner", TYPES)
    task = ner_task(0, 2, [sentences[0]])
    serving = Serving(ann, 0, [task])
    wide = [{"sentence": 0, "token_start": 0, "token_end": 1, "label": "ORG"}]
    narrow = [{"sentence": 0, "token_start": 0, "token_end": 0, "label": "ORG"}]
    for who, spans in (("ann", wide), ("bob", narrow)):
        assert ann.next(who)["task"]["id"] == "0:2"
        ann.answer(who, {"id": "0:2", "answer": "accept", "spans": spans})
    got = ann.next("lead")["task"]
    assert [
        (v["sessions"], [(s["token_start"], s["token_end"]) for s in v["spans"]])
        for v in got["versions"]
    ] == [(["ann"], [(0, 1)]), (["bob"], [(0, 0)])]
    # forged spans are refused for a reviewer as for anyone
    bad = [{"sentence": 0, "token_start": 0, "token_end": 99, "label": "ORG"}]
    refused(
        lambda: ann.answer("lead", {"id": "0:2", "answer": "accept", "spans": bad}), 400, "span 0"
    )
    ann.answer("lead", {"id": "0:2", "answer": "accept", "spans": narrow})
    (final,) = serving.done()
    assert final["session"] == "lead"
    assert [(s["token_start"], s["token_end"], s["label"]) for s in final["spans"]] == [
        (0, 0, "ORG")
    ]


def test_a_database_from_before_review_still_exports(tmp_path, capsys):
    """An annotations.db written before oracle.overlap has no decisions table."""
    from alrun.convert import main as convert

    store = Store(f"sqlite:///{tmp_path / DB_FILE}")
    store.set_meta("labels", TOPICS)
    store.add_batch(0, [text_task(0, 3, "An article.")])
    store.add_answer(0, 3, "a3", "ann", "accept", label="tech")
    store.close()
    with sqlite3.connect(tmp_path / DB_FILE) as con:
        con.execute("drop table decisions")
    out = tmp_path / "out.jsonl"
    with pytest.raises(SystemExit) as exit_:
        convert(["to-prodigy", str(tmp_path), str(out), "--from", "db", "--final"])
    assert exit_.value.code == 0
    (task,) = [json.loads(x) for x in out.read_text().splitlines()]
    assert task["accept"] == ["tech"] and task["_annotator_id"] == "ann"
