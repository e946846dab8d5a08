"""`oracle=web` over HTTP: resume after SIGKILL, forged answers, sessions, auth, export.

Real `alrun` processes on real data slices, a real SQLite file, requests like the page sends.
The browser itself is driven in test_web_browser.py. The annotator's state, answer checks and
HTTP checks are unit-tested in-process in tests/unit/test_web_store.py; the end-to-end repeats
of those here are marked `full` (`make test-full`, CI).
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from web_args import BBC, NER

from alrun.data import load_token_splits
from alrun.models import ModelContext, build_model
from alrun.oracles import OracleContext
from alrun.tasks import Ner, entities

pytestmark = pytest.mark.slow

ALRUN = [sys.executable, "-c", "from alrun.cli import main; main()"]


def rows(run: Path, where: str = "") -> list[tuple]:
    with sqlite3.connect(run / "annotations.db") as db:
        return db.execute(
            "select round, pool_index, session, answer, label, spans from answers "
            f"where undone is null {where} order by id"
        ).fetchall()


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# in-process: tests/unit/test_web_store.py::test_the_database_url_file_and_wal_journal
@pytest.mark.full
def test_sqlite_file_is_in_the_run_folder_in_wal_mode(serve, bbc_slice, tmp_path):
    s = serve(*BBC, "loop.initial_size=2", "loop.budget=4", data=bbc_slice, run=tmp_path / "r")
    s.wait_round(0)
    with sqlite3.connect(tmp_path / "r" / "annotations.db") as db:
        assert db.execute("pragma journal_mode").fetchone()[0] == "wal"


# in-process: tests/unit/test_web_store.py::test_the_database_url_file_and_wal_journal
@pytest.mark.full
def test_an_sqlalchemy_url_puts_the_answers_there(serve, bbc_slice, tmp_path):
    url = f"sqlite:///{tmp_path / 'shared' / 'team.db'}"
    (tmp_path / "shared").mkdir()
    s = serve(
        *BBC,
        "loop.initial_size=2",
        "loop.budget=4",
        f"oracle.db={url}",
        data=bbc_slice,
        run=tmp_path / "r",
    )
    s.wait_round(0)
    task = s.api("/api/next")[1]["task"]
    assert s.api("/api/answer", {"id": task["id"], "answer": "accept", "label": "tech"})[0] == 200
    assert not (tmp_path / "r" / "annotations.db").exists()
    with sqlite3.connect(tmp_path / "shared" / "team.db") as con:
        assert con.execute("select pool_index, label from answers").fetchall() == [
            (task["index"], "tech")
        ]


@pytest.mark.full  # default run: the store's restart/lease unit tests, a changed config
def test_killed_mid_batch_resumes_with_every_saved_answer(serve, bbc_slice, tmp_path):
    run = tmp_path / "run"
    args = (*BBC, "loop.initial_size=4", "loop.round_size=3", "loop.budget=7")
    s = serve(*args, data=bbc_slice, run=run)
    s.wait_round(0)
    first = [s.api("/api/next", session=who)[1]["task"] for who in ("ann", "bob")]
    given = {first[0]["index"]: "sport", first[1]["index"]: "tech"}
    for task, who in zip(first, ("ann", "bob"), strict=True):
        code, _ = s.api(
            "/api/answer",
            {"id": task["id"], "answer": "accept", "label": given[task["index"]]},
            session=who,
        )
        assert code == 200
    assert len(rows(run)) == 2
    s.kill()  # SIGKILL mid-batch: 2 of 4 answered

    s = serve(*args, data=bbc_slice, run=run)
    st = s.wait_round(0)
    assert st["batch"] == {"total": 4, "answered": 2, "accepted": 2}
    served = s.answer_all(lambda t: {"answer": "accept", "label": "business"}, session="carl")
    # only the two unanswered tasks come back, never one already saved
    assert len(served) == 2 and not {t["index"] for t in served} & set(given)
    given |= {t["index"]: "business" for t in served}

    st = s.wait_round(1)  # round 0 trained on exactly the 4 answers
    assert st["labeled"] == 4 and st["score"]["labeled"] == 4
    labeled = jsonl(run / "labeled.jsonl")
    assert {r["index"]: r["label"] for r in labeled} == given
    assert [(r[0], r[1], r[3], r[4]) for r in rows(run)] == [
        (0, i, "accept", y) for i, y in given.items()
    ]
    # round 1: a reject and an ignore leave the pool unlabelled; later queries make up for them.
    # Killed again after the reject: the checkpoint resumes after round 0 (no retraining) and
    # the database gives back the reject
    second = [s.api("/api/next", session="carl")[1]["task"]]
    for k, body in enumerate(
        ({"answer": "reject"}, {"answer": "ignore"}, {"answer": "accept", "label": "tech"})
    ):
        if k == 1:
            s.kill()
            s = serve(*args, data=bbc_slice, run=run)
            assert s.wait_round(1)["batch"] == {"total": 3, "answered": 1, "accepted": 0}
            assert "after round 0 (4 labelled)" in s.output()
        task = s.api("/api/next", session="carl")[1]["task"]
        assert s.api("/api/answer", {"id": task["id"], **body}, session="carl")[0] == 200
        second.append(task)
    assert second[0] == second[1]  # a session keeps its open task until it answers it
    assert len({t["index"] for t in second}) == 3
    skipped = {second[1]["index"], second[2]["index"]}
    given[second[3]["index"]] = "tech"
    s.wait_round(2)
    for t in s.answer_all(lambda t: {"answer": "accept", "label": "sport"}, session="carl"):
        given[t["index"]] = "sport"
        assert t["index"] not in skipped  # never asked again
    assert s.wait() == 0, s.output()

    labeled = jsonl(run / "labeled.jsonl")
    assert {r["index"]: r["label"] for r in labeled} == given and len(given) == 7
    assert [r["labeled"] for r in jsonl(run / "rounds.jsonl")] == [4, 5, 7]
    assert len(rows(run)) == 9

    # the database exports to Prodigy JSONL, and Prodigy's reader gets the same labels back
    out = tmp_path / "answers.jsonl"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "alrun.convert",
            "to-prodigy",
            str(run / "annotations.db"),
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    tasks = jsonl(out)
    assert [t["answer"] for t in tasks].count("accept") == 7 and len(tasks) == 9
    assert {t["meta"]["index"] for t in tasks if t["answer"] != "accept"} == skipped
    assert {t["meta"]["index"]: t["accept"][0] for t in tasks if t["answer"] == "accept"} == given
    back = tmp_path / "back.jsonl"
    subprocess.run(
        [sys.executable, "-m", "alrun.convert", "prodigy-to-textcat", str(out), str(back)],
        check=True,
        capture_output=True,
    )
    assert sorted(r["target"] for r in jsonl(back)) == sorted(given.values())


# in-process: test_web_store.py::test_forged_ner_answers_are_refused_and_store_nothing
# and ::test_http_token_content_type_and_session_checks
@pytest.mark.full
def test_forged_answers_are_refused_with_4xx_and_change_nothing(serve, conll_files, tmp_path):
    run = tmp_path / "run"
    s = serve(*NER, "loop.initial_size=3", "loop.budget=6", data=conll_files, run=run)
    s.wait_round(0)
    task = s.api("/api/next", session="ann")[1]["task"]
    sent = task["sentences"][0]
    tok = sent["tokens"]
    good = {"sentence": 0, "start": tok[0]["start"], "end": tok[0]["end"], "label": "PER"}
    other = s.api("/api/next", session="bob")[1]["task"]
    forged = [
        ({**good, "end": len(sent["text"]) + 5}, 400, "outside sentence 0"),
        ({**good, "start": -1}, 400, "outside sentence 0"),
        ({**good, "end": tok[0]["end"] - 1}, 400, "not on token boundaries")
        if tok[0]["end"] - tok[0]["start"] > 1
        else ({**good, "end": tok[0]["end"] + 1}, 400, "not on token boundaries"),
        ({**good, "sentence": 3}, 400, "sentence 3 is out of range"),
        ({**good, "label": "WEAPON"}, 400, "label 'WEAPON' is not in the label set"),
        ({**good, "token_end": 2}, 400, "token_end=2 but the offsets give 0"),
        ({**good, "start": "0"}, 400, "must be integers"),
    ]
    for span, code, message in forged:
        got = s.api("/api/answer", {"id": task["id"], "answer": "accept", "spans": [span]}, "ann")
        assert got[0] == code and message in got[1]["error"], (span, got)
    overlap = [good, {**good, "label": "ORG"}]
    got = s.api("/api/answer", {"id": task["id"], "answer": "accept", "spans": overlap}, "ann")
    assert got[0] == 400 and "overlap" in got[1]["error"]
    bad_ids = [
        (f"1:{task['index']}", 409, "not in the current batch"),  # a later round's task
        ("0:999999", 409, "not in the current batch"),
        ("seven", 400, "is not 'round:index'"),
        (other["id"], 409, "open in another session"),  # bob's task, sent by ann
    ]
    for task_id, code, message in bad_ids:
        got = s.api("/api/answer", {"id": task_id, "answer": "accept", "spans": []}, "ann")
        assert got[0] == code and message in got[1]["error"], (task_id, got)
    got = s.api("/api/answer", {"id": task["id"], "answer": "maybe", "spans": []}, "ann")
    assert got[0] == 400 and "'maybe' is not one of" in got[1]["error"]
    assert s.api("/api/answer", raw=b"{not json", session="ann")[0] == 400
    got = s.api("/api/answer", {"id": task["id"]}, "ann", headers={"Content-Type": "text/plain"})
    assert got[0] == 415  # a cross-site form cannot post JSON without a refused preflight
    assert s.api("/api/next", session="<script>")[0] == 400
    assert rows(run) == []  # nothing stored by any of them
    assert s.status()["batch"]["answered"] == 0

    # the valid answer goes through once; a second answer to the same task is refused
    assert s.api("/api/answer", {"id": task["id"], "answer": "accept", "spans": [good]}, "ann")[0]
    got = s.api("/api/answer", {"id": task["id"], "answer": "accept", "spans": []}, "ann")
    assert got[0] == 409 and "already answered" in got[1]["error"]
    stored = rows(run)
    assert len(stored) == 1 and json.loads(stored[0][5]) == [
        {**good, "token_start": 0, "token_end": 0}
    ]


# in-process: test_web_store.py::test_sessions_hold_one_task_each_and_abandoned_tasks_return
@pytest.mark.full
def test_sessions_hold_one_task_each_and_abandoned_tasks_return(serve, bbc_slice, tmp_path):
    run = tmp_path / "run"
    args = (*BBC, "loop.initial_size=3", "loop.budget=3", "oracle.lease_seconds=2")
    s = serve(*args, data=bbc_slice, run=run)
    s.wait_round(0)
    a = s.api("/api/next", session="alice")[1]["task"]
    b = s.api("/api/next", session="bob")[1]["task"]
    c = s.api("/api/next", session="carol")[1]["task"]
    assert len({a["id"], b["id"], c["id"]}) == 3
    assert s.api("/api/next", session="alice")[1]["task"]["id"] == a["id"]  # same until answered
    reply = s.api("/api/next", session="dave")[1]
    assert reply["task"] is None and "other sessions" in reply["status"]["message"]
    # bob closes his page (the page sends a release beacon): dave gets bob's task at once
    s.api("/api/release", {}, session="bob")
    assert s.api("/api/next", session="dave")[1]["task"]["id"] == b["id"]
    # carol goes silent: her lease runs out and the task returns to the queue; alice keeps
    # hers alive with heartbeats
    for _ in range(8):  # 3.2 s: past carol's 2 s lease, well within the heartbeats' renewals
        time.sleep(0.4)
        s.api("/api/heartbeat", {}, session="alice")
        s.api("/api/heartbeat", {}, session="dave")
    assert s.api("/api/next", session="erin")[1]["task"]["id"] == c["id"]
    got = s.api("/api/answer", {"id": c["id"], "answer": "accept", "label": "tech"}, "carol")
    assert got[0] == 409 and "another session" in got[1]["error"]
    # undo: alice takes back her answer and gets the task again with it
    s.api("/api/answer", {"id": a["id"], "answer": "accept", "label": "sport"}, "alice")
    code, reply = s.api("/api/undo", {}, session="alice")
    assert code == 200 and reply["task"]["id"] == a["id"]
    assert reply["task"]["answer"] == {"answer": "accept", "label": "sport"}
    assert s.api("/api/undo", {}, session="alice")[0] == 409  # nothing left to undo
    for who, t, y in (("alice", a, "politics"), ("dave", b, "sport"), ("erin", c, "tech")):
        assert s.api("/api/answer", {"id": t["id"], "answer": "accept", "label": y}, who)[0] == 200
    assert s.wait() == 0, s.output()
    got = {r[1]: (r[2], r[4]) for r in rows(run)}
    assert got == {
        a["index"]: ("alice", "politics"),
        b["index"]: ("dave", "sport"),
        c["index"]: ("erin", "tech"),
    }
    with sqlite3.connect(run / "annotations.db") as db:  # the undone answer is kept, marked
        assert db.execute("select count(*) from answers where undone is not null").fetchone() == (
            1,
        )


# in-process: tests/unit/test_web_store.py::test_http_token_content_type_and_session_checks
@pytest.mark.full
def test_a_token_guards_the_annotator(serve, bbc_slice, tmp_path):
    s = serve(
        *BBC,
        "loop.initial_size=2",
        "loop.budget=2",
        data=bbc_slice,
        run=tmp_path / "r",
        env={"ALRUN_WEB_TOKEN": "s3cret"},
    )
    code, reply = s.api("/api/status")
    assert code == 401 and "token" in reply["error"]
    assert s.api("/api/status", headers={"Authorization": "Bearer wrong"})[0] == 401
    assert s.api("/api/status", headers={"Authorization": "Bearer s3cret"})[0] == 200
    basic = base64.b64encode(b"ann:s3cret").decode()
    assert s.api("/api/status", headers={"Authorization": f"Basic {basic}"})[0] == 200
    assert s.api("/api/status?token=s3cret")[0] == 200
    with urllib.request.urlopen(f"{s.url}/?token=s3cret") as r:  # the page link sets a cookie
        cookie = r.headers["Set-Cookie"]
    assert "alrun_token=s3cret" in cookie and "HttpOnly" in cookie
    assert s.api("/api/status", headers={"Cookie": "alrun_token=s3cret"})[0] == 200


# in-process: test_compose.py::test_web_oracle_has_a_fixed_run_folder_and_guards_remote_hosts
@pytest.mark.full
def test_off_loopback_without_a_token_fails_before_loading_data(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "ALRUN_WEB_TOKEN"}
    proc = subprocess.run(
        [*ALRUN, "oracle=web", "oracle.host=0.0.0.0", f"hydra.run.dir={tmp_path}"],
        env={**env, "ALRUN_DATA_DIR": str(tmp_path / "nowhere")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "oracle.host=0.0.0.0 is reachable from other machines: set oracle.token" in proc.stderr
    assert not (tmp_path / "annotations.db").exists()


@pytest.mark.full  # default run: the store keeps answers across restarts (unit tests)
def test_a_changed_config_is_refused_and_keeps_the_answers(serve, bbc_slice, tmp_path):
    run = tmp_path / "run"
    s = serve(*BBC, "loop.initial_size=3", "loop.budget=9", data=bbc_slice, run=run)
    s.wait_round(0)
    task = s.api("/api/next")[1]["task"]
    s.api("/api/answer", {"id": task["id"], "answer": "accept", "label": "tech"})
    s.kill()
    proc = subprocess.run(
        [
            *ALRUN,
            "oracle=web",
            "oracle.port=0",
            *BBC,
            "loop.initial_size=3",
            "loop.budget=12",
            "logger=none",
            f"hydra.run.dir={run}",
        ],
        env={**os.environ, "ALRUN_DATA_DIR": str(bbc_slice)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2
    assert "loop.budget: 9 -> 12" in proc.stderr and "Run the same command" in proc.stderr
    assert len(rows(run)) == 1


def test_ner_tasks_are_prefilled_with_the_kept_models_entities(conll_files, tmp_path):
    """In-process: a real CRF, the real server and database; the page's requests by urllib."""
    from omegaconf import OmegaConf

    from alrun.oracles import ORACLES

    web = ORACLES.get("web")

    cfg = OmegaConf.create(
        {
            "path": "train.jsonl",
            "test_path": "test.jsonl",
            "format": "auto",
            "tokens_field": "tokens",
            "tags_field": "tags",
            "doc_field": None,
            "labels": None,
            "label_map": {},
            "name": "custom_tokens",
        }
    )
    top = OmegaConf.create({"data_dir": str(conll_files)})
    pool = load_token_splits(top, cfg, 0, "sentence").pool
    names = pool.label_names
    model = build_model(
        ModelContext(len(names), 0, tmp_path, label_names=names),
        {"name": "crf_ner", "max_iterations": 50},
    )
    model.fit([pool.sentences[i][0] for i in range(80)], [pool.labels[i][0] for i in range(80)])
    config = {
        "dataset": {"name": "custom_tokens"},
        "strategy": {"name": "mnlp"},
        "loop": {"unit": "sentence", "budget": 100},
    }
    oracle = web(OracleContext(pool, Ner(), tmp_path, config), port=0, linger_seconds=0)
    try:
        oracle.round_done(
            {
                "test": {"f1": 0.5},
                "validation": {"crf_ner": 0.4},
                "chosen": "crf_ner",
                "round": 0,
                "labeled": 80,
            },
            model,
        )
        idx = np.arange(80, 86)
        result = {}
        worker = threading.Thread(target=lambda: result.update(got=oracle.label(idx)))
        worker.start()
        base = oracle.url.rstrip("/")
        while _get(f"{base}/api/status?session=t")["state"] != "labelling":
            time.sleep(0.05)
        served = []
        for _ in range(6):
            task = _get(f"{base}/api/next?session=t")["task"]
            served.append(task)
            spans = task["spans"]
            if task["index"] == 80:
                spans = []  # the person removes every suggestion on one sentence
            _post(
                f"{base}/api/answer?session=t",
                {"id": task["id"], "answer": "accept", "spans": spans},
            )
        worker.join(30)
        got = result["got"]
    finally:
        oracle.close()
    inputs = Ner().inputs(pool, idx)
    pred = Ner().decode(Ner().predict(model, inputs), inputs)
    n_spans = 0
    for k, task in enumerate(served):
        want = entities([names[t] for t in pred[k][0]])
        shown = [(s["token_start"], s["token_end"] + 1, s["label"]) for s in task["spans"]]
        assert shown == want  # exactly the model's entities, token-aligned
        n_spans += len(want)
        words = task["sentences"][0]["tokens"]
        for sp in task["spans"]:
            assert task["sentences"][0]["text"][sp["start"] : sp["end"]] == " ".join(
                w["text"] for w in words[sp["token_start"] : sp["token_end"] + 1]
            )
    assert n_spans > 0
    assert got.idx.tolist() == idx.tolist() and got.skipped.tolist() == []
    for k, i in enumerate(idx):  # the loop gets the person's tags: suggestions kept, or removed
        tags = [names[t] for t in got.labels[k][0]]
        assert tags == (["O"] * len(tags) if i == 80 else [names[t] for t in pred[k][0]])


def _get(url: str):
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.loads(r.read())


def _post(url: str, body):
    req = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())
