"""The annotator's state, in-process: the answer store, sessions and leases, undo, the checks
of every answer (forged spans, labels, task ids), resuming a batch, and the HTTP layer's
token, content type and session checks, on a real SQLite file and a real server thread.

The same behaviour end to end (a real `alrun oracle=web` process) is in
tests/integration/test_web.py; the repeats there are marked `full`.
"""

from __future__ import annotations

import base64
import json
import re
import sqlite3
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from alrun.errors import AlrunError
from alrun.web.app import serve
from alrun.web.server import Annotator, Auth, HttpError, check_spans
from alrun.web.store import DB_FILE, EVAL_ROUND, Store, db_url

TYPES = ["PER", "ORG", "LOC", "MISC"]
TOPICS = ["business", "entertainment", "politics", "sport", "tech"]


def ner_task(rnd: int, index: int, sentences: list[list[str]]) -> dict[str, Any]:
    """A task as the page gets it: each sentence's words joined by spaces, token offsets."""
    shown = []
    for words in sentences:
        tokens, pos = [], 0
        for i, w in enumerate(words):
            tokens.append({"text": w, "start": pos, "end": pos + len(w), "id": i})
            pos += len(w) + 1
        shown.append({"text": " ".join(words), "tokens": tokens})
    return {
        "id": f"{rnd}:{index}",
        "round": rnd,
        "index": index,
        "item_id": f"doc{index}",
        "kind": "ner",
        "sentences": shown,
        "spans": [],
    }


def text_task(rnd: int, index: int, text: str) -> dict[str, Any]:
    return {
        "id": f"{rnd}:{index}",
        "round": rnd,
        "index": index,
        "item_id": f"a{index}",
        "kind": "multiclass",
        "text": text,
        "suggestion": None,
    }


@pytest.fixture
def sentences(conll) -> list[list[str]]:
    """Real CoNLL-2003 test sentences of more than 3 words."""
    found = [toks for _, ss in conll["test"] for _, toks, _ in ss if len(toks) > 3]
    return found[:8]


@pytest.fixture
def articles(bbc_rows) -> list[str]:
    return [r["text"] for r in bbc_rows[:8]]


class Serving:
    """`Annotator.serve_batch` blocking in its own thread, as the loop's thread does."""

    def __init__(self, annotator: Annotator, rnd: int, tasks: list[dict], before: int = 0):
        self.annotator, self.answers = annotator, None
        self.thread = threading.Thread(target=self._serve, args=(rnd, tasks, before), daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while annotator.status("t")["state"] != "labelling" or annotator.round != rnd:
            assert time.monotonic() < deadline, "the batch never opened"
            time.sleep(0.01)

    def _serve(self, rnd: int, tasks: list[dict], before: int) -> None:
        self.answers = self.annotator.serve_batch(rnd, tasks, before)

    def done(self) -> list[dict]:
        self.thread.join(10)
        assert not self.thread.is_alive(), "serve_batch still waits for answers"
        return self.answers


def refused(call, status: int, message: str) -> None:
    with pytest.raises(HttpError) as e:
        call()
    assert e.value.status == status and message in str(e.value), (e.value.status, str(e.value))


# ------------------------------------------------------------------------------------ store


def test_the_database_url_file_and_wal_journal(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    default = f"sqlite:///{(run / DB_FILE).resolve()}"
    assert db_url(None, run) == db_url("", run) == default  # in the run folder
    assert db_url(str(run), run) == default  # a folder: the file in it
    team = tmp_path / "team.db"
    assert db_url(str(team), run) == f"sqlite:///{team.resolve()}"
    assert db_url("postgresql://ann@db/labels", run) == "postgresql://ann@db/labels"

    store = Store(db_url(None, run))
    store.add_answer(0, 5, "a5", "ann", "accept", label="tech")
    store.close()
    with sqlite3.connect(run / DB_FILE) as con:
        assert con.execute("pragma journal_mode").fetchone()[0] == "wal"
        assert con.execute(
            "select round, pool_index, item_id, session, answer, label, spans, undone from answers"
        ).fetchall() == [(0, 5, "a5", "ann", "accept", "tech", None, None)]

    # an SQLAlchemy URL elsewhere holds the answers; the run folder gets no second file
    other = Store(f"sqlite:///{team}")
    other.add_answer(1, 7, "a7", "bob", "reject")
    other.close()
    with sqlite3.connect(team) as con:
        assert con.execute("select pool_index, session, answer from answers").fetchall() == [
            (7, "bob", "reject")
        ]
    assert sorted(p.name for p in run.iterdir() if p.suffix == ".db") == [DB_FILE]

    with pytest.raises(AlrunError, match=r"annotation database .* check oracle\.db"):
        Store(f"sqlite:///{tmp_path / 'no' / 'such' / 'folder' / 'x.db'}")
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    with pytest.raises(AlrunError, match=r"check oracle\.db"):
        Store(f"sqlite:///{empty}", create=False)  # not an annotation database


def test_answers_batches_and_meta_survive_a_restart_and_undo_keeps_the_row(tmp_path, sentences):
    url = f"sqlite:///{tmp_path / DB_FILE}"
    store = Store(url)
    tasks = [ner_task(0, i, [sentences[i]]) for i in (3, 1, 2)]
    store.add_batch(0, tasks)
    store.add_batch(1, [ner_task(1, 4, [sentences[4]])])
    span = {"sentence": 0, "start": 0, "end": 2, "token_start": 0, "token_end": 0, "label": "ORG"}
    store.add_answer(0, 3, "doc3", "ann", "accept", spans=[span])
    store.add_answer(0, 1, "doc1", "bob", "reject", spans=[])
    store.add_answer(0, 2, "doc2", "ann", "accept", spans=[])
    store.set_meta("config", {"loop.budget": 9})
    store.set_meta("config", {"loop.budget": 12})  # replaced, not added
    store.close()

    store = Store(url)  # a restart: everything is read back from the file
    assert store.batch(0) == tasks and [t["index"] for t in store.batch(1)] == [4]
    assert sorted(store.rounds()) == [0, 1] and store.batch(2) == []
    assert store.get_meta("config") == {"loop.budget": 12} and store.get_meta("nope") is None
    active = store.active()
    assert [(a["index"], a["session"], a["answer"]) for a in active] == [
        (3, "ann", "accept"),
        (1, "bob", "reject"),
        (2, "ann", "accept"),
    ]
    assert active[0]["spans"] == [span] and active[1]["spans"] == []
    assert store.active(1) == []

    undone = store.undo_last(0, "ann")  # ann's latest answer of round 0
    assert undone["index"] == 2 and undone["undone"] is None  # the row as it was
    assert [a["index"] for a in store.active(0)] == [3, 1]
    assert store.undo_last(1, "ann") is None and store.undo_last(0, "carl") is None
    store.close()
    with sqlite3.connect(tmp_path / DB_FILE) as con:  # never deleted: marked undone
        rows = con.execute("select pool_index, undone is not null from answers order by id")
        assert rows.fetchall() == [(3, 0), (1, 0), (2, 1)]


# ------------------------------------------------------------------------ sessions, leases


def test_sessions_hold_one_task_each_and_abandoned_tasks_return(tmp_path, articles):
    store = Store(f"sqlite:///{tmp_path / DB_FILE}")
    ann = Annotator(store, "multiclass", TOPICS, {"dataset": "bbc_news"}, lease_seconds=1.0)
    tasks = [text_task(0, i, articles[i]) for i in (5, 2, 7)]
    serving = Serving(ann, 0, tasks, before=10)
    a, b, c = (ann.next(who)["task"] for who in ("alice", "bob", "carol"))
    assert [a["index"], b["index"], c["index"]] == [5, 2, 7]  # the strategy's order
    assert a["text"] == articles[5]
    assert ann.next("alice")["task"]["id"] == a["id"]  # the same task until answered
    reply = ann.next("dave")
    assert reply["task"] is None and "other sessions" in reply["status"]["message"]
    # bob closes his page (the release beacon): dave gets bob's task at once
    assert ann.release("bob") == {"ok": True}
    assert ann.next("dave")["task"]["id"] == b["id"]
    # carol goes silent past her lease; alice and dave keep theirs alive with heartbeats
    for _ in range(6):  # 1.5 s in all: past carol's 1 s lease, well within each renewal
        time.sleep(0.25)
        assert ann.heartbeat("alice")["held"] and ann.heartbeat("dave")["held"]
    assert ann.next("erin")["task"]["id"] == c["id"]
    assert not ann.heartbeat("carol")["held"]
    late = {"id": c["id"], "answer": "accept", "label": "tech"}
    refused(lambda: ann.answer("carol", late), 409, "open in another session")
    # undo: alice takes her answer back and gets the task again, with the answer she gave
    ann.answer("alice", {"id": a["id"], "answer": "accept", "label": "sport"})
    assert ann.status("alice")["batch"] == {"total": 3, "answered": 1, "accepted": 1}
    assert ann.status("alice")["labeled"] == 11
    back = ann.undo("alice")
    assert back["task"]["id"] == a["id"]
    assert back["task"]["answer"] == {"answer": "accept", "label": "sport"}
    assert back["status"]["batch"]["answered"] == 0
    assert ann.next("alice")["task"]["id"] == a["id"]  # leased to alice again
    refused(lambda: ann.undo("alice"), 409, "has no answer in this batch")
    for who, t, y in (("alice", a, "politics"), ("dave", b, None), ("erin", c, "tech")):
        body = {"id": t["id"], "answer": "accept" if y else "reject", "label": y}
        assert ann.answer(who, body)["ok"]
    answers = serving.done()  # the batch is complete: the loop's thread goes on
    assert [(x["index"], x["session"], x["answer"], x["label"]) for x in answers] == [
        (5, "alice", "accept", "politics"),
        (2, "dave", "reject", None),
        (7, "erin", "accept", "tech"),
    ]
    st = ann.status("x")
    assert st["state"] == "training" and "on 12 labels" in st["message"]
    assert ann.next("alice")["task"] is None
    refused(lambda: ann.undo("alice"), 409, "the batch is closed")
    late = {"id": a["id"], "answer": "accept", "label": "tech"}
    refused(lambda: ann.answer("alice", late), 409, "no batch is open")
    assert [(r["index"], r["label"]) for r in store.active()] == [
        (5, "politics"),
        (2, None),
        (7, "tech"),
    ]
    ann.finish("done")
    assert ann.status("x")["state"] == "finished" and ann.status("x")["batch"]["total"] == 0


def test_a_restarted_batch_serves_only_what_is_left(tmp_path, articles):
    """After a kill, the same batch: saved answers count, only unanswered tasks are served."""
    store = Store(f"sqlite:///{tmp_path / DB_FILE}")
    tasks = [text_task(1, i, articles[i]) for i in (4, 0, 6, 3)]
    store.add_answer(0, 4, "a4", "ann", "accept", label="tech")  # another round's: no match
    store.add_answer(1, 0, "a0", "ann", "accept", label="sport")
    store.add_answer(1, 6, "a6", "bob", "ignore")
    ann = Annotator(store, "multiclass", TOPICS, {}, lease_seconds=60)
    serving = Serving(ann, 1, tasks, before=4)
    st = ann.status("carl")
    assert st["batch"] == {"total": 4, "answered": 2, "accepted": 1} and st["labeled"] == 5
    served = []
    while (task := ann.next("carl")["task"]) is not None:
        served.append(task["index"])
        ann.answer("carl", {"id": task["id"], "answer": "accept", "label": "business"})
    assert served == [4, 3]  # never one already saved
    answers = serving.done()
    assert [(x["index"], x["answer"], x["label"]) for x in answers] == [
        (4, "accept", "business"),
        (0, "accept", "sport"),
        (6, "ignore", None),
        (3, "accept", "business"),
    ]


def test_the_evaluation_set_is_a_batch_of_its_own_before_the_rounds(tmp_path, articles):
    """Round EVAL_ROUND: task ids -1:i pass the id check, undo and leases work, its answers
    never count as labels, a restart serves only what is left, and the status says the phase."""
    store = Store(f"sqlite:///{tmp_path / DB_FILE}")
    ann = Annotator(store, "multiclass", TOPICS, {"budget": 6}, lease_seconds=60, phase="eval")
    assert ann.status("t")["phase"] == "eval" and ann.status("t")["eval"] is None
    tasks = [text_task(EVAL_ROUND, i, articles[i]) for i in (6, 1, 3)]
    store.add_batch(EVAL_ROUND, tasks)
    store.add_answer(EVAL_ROUND, 1, "a1", "ann", "accept", label="tech")  # saved before a kill
    serving = Serving(ann, EVAL_ROUND, tasks)
    st = ann.status("ann")
    assert st["phase"] == "eval" and st["round"] == EVAL_ROUND and st["labeled"] == 0
    assert st["eval"] == st["batch"] == {"total": 3, "answered": 1, "accepted": 1}
    assert st["message"].startswith("evaluation set: label 3 random items")
    task = ann.next("ann")["task"]
    assert task["id"] == "-1:6" and ann.next("bob")["task"]["id"] == "-1:3"
    refused(lambda: ann.answer("ann", {"id": "-1:3", "answer": "ignore"}), 409, "another session")
    refused(lambda: ann.answer("ann", {"id": "0:6", "answer": "ignore"}), 409, "not in the current")
    refused(
        lambda: ann.answer("ann", {"id": "-2:6", "answer": "ignore"}), 409, "not in the current"
    )
    ann.answer("ann", {"id": "-1:6", "answer": "accept", "label": "sport"})
    assert ann.status("ann")["labeled"] == 0  # held out: not a label towards the budget
    assert ann.undo("ann")["task"]["id"] == "-1:6"  # undo and the lease work in it too
    ann.answer("ann", {"id": "-1:6", "answer": "accept", "label": "business"})
    ann.answer("bob", {"id": "-1:3", "answer": "reject"})
    assert [(a["index"], a["label"]) for a in serving.done()] == [
        (6, "business"),
        (1, "tech"),
        (3, None),
    ]
    st = ann.status("ann")
    assert st["state"] == "training" and st["phase"] == "eval" and st["labeled"] == 0
    assert st["eval"] == {"total": 3, "answered": 3, "accepted": 2}
    assert "2 held-out items" in st["message"]
    serving = Serving(ann, 0, [text_task(0, 2, articles[2])])  # round 0 follows
    st = ann.status("ann")
    assert st["phase"] == "rounds" and st["round"] == 0 and st["message"].startswith("round 0")
    assert st["eval"] == {"total": 3, "answered": 3, "accepted": 2}  # still shown
    ann.answer("ann", {"id": "0:2", "answer": "accept", "label": "tech"})
    serving.done()
    assert "training the candidates on 1 labels (round 0)" in ann.status("ann")["message"]
    assert [a["round"] for a in store.active()] == [EVAL_ROUND, EVAL_ROUND, EVAL_ROUND, 0]


# ----------------------------------------------------------------------------- answers


def test_forged_ner_answers_are_refused_and_store_nothing(tmp_path, sentences):
    store = Store(f"sqlite:///{tmp_path / DB_FILE}")
    ann = Annotator(store, "ner", TYPES, {}, lease_seconds=60)
    tasks = [ner_task(0, 0, sentences[0:2]), ner_task(0, 1, [sentences[2]])]
    serving = Serving(ann, 0, tasks)
    task = ann.next("ann")["task"]
    other = ann.next("bob")["task"]
    sent = task["sentences"][0]
    tok = sent["tokens"]
    good = {"sentence": 0, "start": tok[0]["start"], "end": tok[0]["end"], "label": "PER"}
    inside = tok[0]["end"] - 1 if tok[0]["end"] - tok[0]["start"] > 1 else tok[0]["end"] + 1
    forged = [
        ({**good, "end": len(sent["text"]) + 5}, "outside sentence 0"),
        ({**good, "start": -1}, "outside sentence 0"),
        ({**good, "start": 3, "end": 3}, "outside sentence 0"),  # empty
        ({**good, "end": inside}, "not on token boundaries"),
        ({**good, "start": tok[1]["start"] - 1, "end": tok[1]["end"]}, "not on token boundaries"),
        ({**good, "sentence": 3}, "sentence 3 is out of range (0-1)"),
        ({**good, "label": "WEAPON"}, "label 'WEAPON' is not in the label set"),
        ({**good, "label": "B-PER"}, "label 'B-PER' is not in the label set"),
        ({**good, "token_end": 2}, "token_end=2 but the offsets give 0"),
        ({**good, "token_start": 1}, "token_start=1 but the offsets give 0"),
        ({**good, "start": "0"}, "must be integers"),
        ({**good, "sentence": True}, "must be integers"),
        ({**good, "end": 2.0}, "must be integers"),
        ("PER", "span 0 is not an object"),
    ]
    for span, message in forged:
        body = {"id": task["id"], "answer": "accept", "spans": [span]}
        refused(lambda body=body: ann.answer("ann", body), 400, message)
    second = {**good, "start": tok[1]["start"], "end": tok[1]["end"]}
    for spans in ([good, {**good, "label": "ORG"}], [{**good, "end": tok[1]["end"]}, second]):
        body = {"id": task["id"], "answer": "accept", "spans": spans}
        refused(lambda body=body: ann.answer("ann", body), 400, "spans overlap in sentence 0")
    body = {"id": task["id"], "answer": "accept", "spans": {"0": good}}
    refused(lambda: ann.answer("ann", body), 400, "spans must be a list")
    for task_id, status, message in (
        (f"1:{task['index']}", 409, "not in the current batch"),  # a later round's task
        ("0:999999", 409, "not in the current batch"),
        ("seven", 400, "is not 'round:index'"),
        (0, 400, "is not 'round:index'"),
        (other["id"], 409, "open in another session"),  # bob's task, sent by ann
    ):
        body = {"id": task_id, "answer": "accept", "spans": []}
        refused(lambda body=body: ann.answer("ann", body), status, message)
    refused(lambda: ann.answer("ann", {"id": task["id"], "answer": "maybe"}), 400, "'maybe'")
    refused(lambda: ann.answer("ann", [task["id"]]), 400, "must be a JSON object")
    assert store.active() == [] and ann.status("ann")["batch"]["answered"] == 0

    # the same token in the second sentence is no overlap; spans come back sorted, on tokens
    last = sentences[1]
    far = {"sentence": 1, "start": 0, "end": len(" ".join(last[:2])), "label": "ORG"}
    assert ann.answer("ann", {"id": task["id"], "answer": "accept", "spans": [far, good]})["ok"]
    again = {"id": task["id"], "answer": "accept", "spans": []}
    refused(lambda: ann.answer("ann", again), 409, "already answered; undo it first")
    [row] = store.active()
    assert row["spans"] == [
        {**good, "token_start": 0, "token_end": 0},
        {**far, "token_start": 0, "token_end": 1},
    ]
    ann.answer("bob", {"id": other["id"], "answer": "reject"})  # no spans: an empty list
    assert serving.done()[1]["spans"] == [] and len(store.active()) == 2


def test_every_token_span_of_real_sentences_is_accepted_and_nothing_between(sentences):
    task = ner_task(0, 0, sentences)
    for s, sent in enumerate(task["sentences"]):
        toks = sent["tokens"]
        for a in range(len(toks)):
            for b in range(a, min(a + 3, len(toks))):
                span = {"sentence": s, "start": toks[a]["start"], "end": toks[b]["end"]}
                got = check_spans(task, [{**span, "label": "LOC"}], TYPES)
                assert got == [{**span, "token_start": a, "token_end": b, "label": "LOC"}]
                if toks[b]["end"] - toks[a]["start"] > 1:  # one character short: refused
                    with pytest.raises(HttpError, match="not on token boundaries"):
                        check_spans(task, [{**span, "end": span["end"] - 1, "label": "LOC"}], TYPES)
    assert check_spans(task, [], TYPES) == []


def test_spans_by_tokens_get_their_characters_from_the_server():
    """The page may name tokens only; the stored start/end are the tokens' own offsets, and
    a task with the original text (double spaces, a newline) gets its real offsets."""
    text = "Tony  Blair\nmet   the BBC ."
    starts = [0, 6, 12, 18, 22, 26]
    words = text.split()
    tokens = [
        {"text": w, "start": a, "end": a + len(w), "id": k, "ws": True}
        for k, (w, a) in enumerate(zip(words, starts, strict=True))
    ]
    task = {"sentences": [{"text": text, "tokens": tokens, "offset": 40}]}
    assert all(text[t["start"] : t["end"]] == t["text"] for t in tokens)
    got = check_spans(
        task,
        [
            {"sentence": 0, "token_start": 4, "token_end": 4, "label": "ORG"},
            {"sentence": 0, "token_start": 0, "token_end": 1, "label": "PER"},
        ],
        TYPES,
    )
    assert got == [
        {"sentence": 0, "start": 0, "end": 11, "token_start": 0, "token_end": 1, "label": "PER"},
        {"sentence": 0, "start": 22, "end": 25, "token_start": 4, "token_end": 4, "label": "ORG"},
    ]
    assert text[got[0]["start"] : got[0]["end"]] == "Tony  Blair"
    by_chars = check_spans(task, [{"sentence": 0, "start": 0, "end": 11, "label": "PER"}], TYPES)
    assert by_chars == got[:1]
    for span, message in (
        ({"token_start": 5, "token_end": 6}, "token_start/token_end (tokens 0-5"),
        ({"token_start": 2, "token_end": 1}, "first <= last"),
        ({"token_start": -1, "token_end": 0}, "token_start/token_end"),
        ({"token_start": 0}, "token_start/token_end"),
        ({}, "give start/end"),
        ({"token_start": 0, "token_end": "1"}, "must be integers"),
        ({"start": 0, "end": 11, "token_end": 0}, "token_end=0 but the offsets give 1"),
        ({"start": 0, "end": 5}, "not on token boundaries"),  # the first of the two spaces
    ):
        with pytest.raises(HttpError, match=re.escape(message)):
            check_spans(task, [{"sentence": 0, **span, "label": "PER"}], TYPES)


def test_multiclass_answers_need_a_known_label_to_accept(tmp_path, articles):
    store = Store(f"sqlite:///{tmp_path / DB_FILE}")
    ann = Annotator(store, "multiclass", TOPICS, {}, lease_seconds=60)
    tasks = [text_task(0, i, articles[i]) for i in range(3)]
    serving = Serving(ann, 0, tasks)
    t = ann.next("ann")["task"]
    for body, message in (
        ({"answer": "accept"}, "label None is not in the label set"),
        ({"answer": "accept", "label": "sports"}, "label 'sports' is not in the label set"),
        ({"answer": "reject", "label": "weather"}, "label 'weather' is not in the label set"),
        ({"answer": "accept", "label": ["tech"]}, "is not in the label set"),
    ):
        refused(lambda body=body: ann.answer("ann", {"id": t["id"], **body}), 400, message)
    assert store.active() == []
    ann.answer("ann", {"id": t["id"], "answer": "reject"})  # a reject needs no label
    for _ in range(2):
        t = ann.next("ann")["task"]
        ann.answer("ann", {"id": t["id"], "answer": "accept", "label": "tech"})
    assert [(a["answer"], a["label"]) for a in serving.done()] == [
        ("reject", None),
        ("accept", "tech"),
        ("accept", "tech"),
    ]


# --------------------------------------------------------------------------------- HTTP


def call(url: str, body: Any = None, headers: dict | None = None, raw: bytes | None = None):
    data = raw if raw is not None else None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        url,
        data=data,
        headers={"Content-Type": "application/json", **(headers or {})},
        method="POST" if data is not None else "GET",
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def test_http_token_content_type_and_session_checks(tmp_path, articles):
    store = Store(f"sqlite:///{tmp_path / DB_FILE}")
    ann = Annotator(store, "multiclass", TOPICS, {}, lease_seconds=60)
    serving = Serving(ann, 0, [text_task(0, 0, articles[0])])
    httpd = serve(ann, "127.0.0.1", 0, Auth("s3cret", "ann"))
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    bearer = {"Authorization": "Bearer s3cret"}
    try:
        code, headers, body = call(f"{base}/api/status?session=t")
        assert code == 401 and "token" in json.loads(body)["error"]
        assert headers["WWW-Authenticate"].startswith("Basic")
        assert call(f"{base}/api/status", headers={"Authorization": "Bearer wrong"})[0] == 401
        assert call(f"{base}/api/status", headers=bearer)[0] == 200
        for user, ok in (("ann", 200), ("bob", 401)):  # oracle.user: only that name
            basic = base64.b64encode(f"{user}:s3cret".encode()).decode()
            assert call(f"{base}/api/status", headers={"Authorization": f"Basic {basic}"})[0] == ok
        assert call(f"{base}/api/status?token=wrong")[0] == 401
        code, headers, _ = call(f"{base}/?token=s3cret")  # the page link sets a cookie
        assert code == 200 and headers["Content-Type"].startswith("text/html")
        cookie = headers["Set-Cookie"]
        assert "alrun_token=s3cret" in cookie and "HttpOnly" in cookie and "SameSite" in cookie
        assert "script-src 'self'" in headers["Content-Security-Policy"]
        assert call(f"{base}/api/status", headers={"Cookie": "alrun_token=s3cret"})[0] == 200
        assert call(f"{base}/api/status", headers={"Cookie": "alrun_token=nope"})[0] == 401

        code, _, body = call(f"{base}/api/next?session=ann", headers=bearer)
        task = json.loads(body)["task"]
        assert code == 200 and task["text"] == articles[0]
        answer = {"id": task["id"], "answer": "accept", "label": "tech"}
        plain = {**bearer, "Content-Type": "text/plain"}  # a cross-site form's content type
        assert call(f"{base}/api/answer?session=ann", answer, headers=plain)[0] == 415
        code, _, body = call(f"{base}/api/answer?session=ann", raw=b"{not json", headers=bearer)
        assert code == 400 and "not JSON" in json.loads(body)["error"]
        assert call(f"{base}/api/next?session=%3Cscript%3E", headers=bearer)[0] == 400
        assert call(f"{base}/api/nope?session=ann", {}, headers=bearer)[0] == 404
        assert call(f"{base}/static/..%2Fserver.py", headers=bearer)[0] == 404
        code, _, body = call(
            f"{base}/api/answer?session=ann", {**answer, "label": "weather"}, headers=bearer
        )
        assert code == 400 and "'weather' is not in the label set" in json.loads(body)["error"]
        assert store.active() == []  # nothing stored by any of them
        assert call(f"{base}/api/answer?session=ann", answer, headers=bearer)[0] == 200
        assert [a["label"] for a in serving.done()] == ["tech"]
    finally:
        httpd.shutdown()
        httpd.server_close()
        store.close()


def test_the_token_in_each_form_and_none_without_one():
    open_auth = Auth(None, None)
    assert open_auth.check({}, {}) == (True, False)
    auth = Auth("s3cret", None)
    assert auth.check({}, {"token": ["s3cret"]}) == (True, True)  # set the cookie
    assert auth.check({}, {"token": ["s3cre"]}) == (False, True)
    assert auth.check({"Authorization": "Basic !!"}, {}) == (False, False)
    basic = base64.b64encode(b"anyone:s3cret").decode()
    assert auth.check({"Authorization": f"Basic {basic}"}, {}) == (True, False)
    assert auth.check({"Cookie": "a=b; alrun_token=s3cret"}, {}) == (True, False)
    assert auth.check({}, {}) == (False, False)
