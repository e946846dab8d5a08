"""The annotator's state and checks: one `Annotator` shared by the loop and the web app.

The loop's thread blocks in `Annotator.serve_batch` while requests (`alrun.web.app`) hand out
tasks and store answers. Every answer is checked here, on the server: the page is not trusted.
"""

from __future__ import annotations

import base64
import hmac
import ipaddress
import itertools
import logging
import re
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alrun.agreement import agree, versions
from alrun.web.store import ANSWERS, EVAL_ROUND, Store

log = logging.getLogger("alrun.web")
STATIC = Path(__file__).parent / "static"
SESSION_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
TASK_ID_RE = re.compile(r"(-?\d+):(\d+)")  # round:index; the evaluation sample's round is -1
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'none'"
)


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        """An error the page gets as JSON with this HTTP status."""
        super().__init__(message)
        self.status = status


@dataclass
class Annotator:
    """Shared state of one run's annotation: the current batch, leases, status.

    `phase`: "eval" while the evaluation sample (round EVAL_ROUND, labelled before round 0,
    never trained on) is served or still to come, "rounds" from round 0's batch on.

    With `overlap` k >= 2 each task goes to k different annotator sessions; when their answers
    agree that answer is final, otherwise the task waits in the review queue until a session
    named in `reviewers` decides it (picks a version or corrects it). A batch closes when
    every task has its final answer; the loop trains on those."""

    store: Store
    kind: str  # multiclass | ner
    labels: list[str]  # the label set shown (multiclass classes, NER entity types)
    info: dict[str, Any]  # dataset, strategy, unit, budget
    lease_seconds: float = 120.0
    phase: str = "rounds"
    overlap: int = 1
    reviewers: frozenset[str] = frozenset()
    state: str = "starting"
    round: int = -1
    tasks: list[dict[str, Any]] = field(default_factory=list)
    labeled_before: int = 0
    score: dict[str, Any] | None = None
    message: str = "loading data"
    eval_done: dict[str, int] | None = None  # the evaluation sample's counts once answered
    _leases: dict[str, tuple[int, float]] = field(default_factory=dict)  # session -> index
    _answers: dict[int, list[dict[str, Any]]] = field(default_factory=dict)  # annotators'
    _decisions: dict[int, dict[str, Any]] = field(default_factory=dict)  # reviewers'
    _done: dict[int, dict[str, Any]] = field(default_factory=dict)  # index -> final answer
    _cond: threading.Condition = field(default_factory=threading.Condition)

    # ------------------------------------------------------------ loop side
    def serve_batch(
        self, rnd: int, tasks: list[dict[str, Any]], labeled_before: int
    ) -> list[dict[str, Any]]:
        """Serve `tasks` until every one has its final answer (saved ones count); those
        answers in task order. Round EVAL_ROUND is the evaluation sample: its answers count as
        held-out items, never as labels towards the budget."""
        with self._cond:
            self.round, self.tasks, self.labeled_before = rnd, tasks, labeled_before
            self.phase = "eval" if rnd == EVAL_ROUND else "rounds"
            by_index = {t["index"] for t in tasks}
            self._answers = {i: [] for i in by_index}
            for a in self.store.active(rnd):
                if a["index"] in by_index:
                    self._answers[a["index"]].append(a)
            self._decisions = {
                a["index"]: a
                for a in self.store.active(rnd, decision=True)
                if a["index"] in by_index
            }
            self._leases, self._done = {}, {}
            for i in by_index:
                self._settle(i)
            self.state = "labelling"
            self.message = (
                f"evaluation set: label {len(tasks)} random items before the rounds"
                if self.phase == "eval"
                else f"round {rnd}: label {len(tasks)} items"
            )
            self._cond.notify_all()
            while len(self._done) < len(tasks):
                self._cond.wait(timeout=0.5)  # wakes for Ctrl-C too
            answers = [self._done[t["index"]] for t in tasks]
            self.state, self._leases = "training", {}
            self.message = self._closed_message(answers)
        return answers

    def _settle(self, index: int) -> None:
        """The task's final answer, if it has one: a reviewer's decision, else its k answers
        when they agree (k = 1: the one answer)."""
        got = self._answers.get(index, [])
        if index in self._decisions:
            self._done[index] = self._decisions[index]
        elif len(got) >= self.overlap and agree(got, self.kind):
            self._done[index] = got[0]
        else:
            self._done.pop(index, None)

    def _in_review(self, index: int) -> bool:
        """All k answers are in and they disagree: a reviewer must decide."""
        return index not in self._done and len(self._answers.get(index, [])) >= self.overlap

    def _closed_message(self, answers: list[dict[str, Any]]) -> str:
        """What the page says once a batch is answered (the lock is held)."""
        kept = sum(a["answer"] == "accept" for a in answers)
        if self.phase == "eval":
            self.eval_done = {"total": len(answers), "answered": len(answers), "accepted": kept}
            return f"evaluation set done: {kept} held-out items; choosing round 0's items"
        return (
            f"training the candidates on {self.labeled_before + kept} labels (round {self.round})"
        )

    def set_score(self, score: dict[str, Any]) -> None:
        """The last round's score, for the page's header."""
        with self._cond:
            self.score = score

    def finish(self, message: str) -> None:
        """The run ended: no more tasks; pages show `message`."""
        with self._cond:
            self.state, self.message, self.tasks = "finished", message, []
            self._cond.notify_all()

    # ------------------------------------------------------------ request side
    def status(self, session: str) -> dict[str, Any]:
        """The page's status (GET /api/status)."""
        with self._cond:
            return self._status(session)

    def _status(self, session: str) -> dict[str, Any]:
        """The status with the lock held: state, phase, batch and evaluation-set counts,
        labels towards the budget (never the held-out ones), score, message; with overlap,
        the session's role, its own answers and the review queue."""
        accepted = sum(a["answer"] == "accept" for a in self._done.values())
        labelling = self.state == "labelling"
        batch = {
            "total": len(self.tasks),
            "answered": len(self._done) if self.tasks else 0,
            "accepted": accepted if self.tasks else 0,
        }
        in_eval = self.phase == "eval" and self.round == EVAL_ROUND and bool(self.tasks)
        out = {
            "state": self.state,
            "phase": self.phase,
            "kind": self.kind,
            "labels": self.labels,
            **self.info,
            "round": self.round,
            "batch": batch,
            "eval": dict(batch) if in_eval and labelling else self.eval_done,
            "labeled": self.labeled_before + (accepted if labelling and not in_eval else 0),
            "score": self.score,
            "session": session,
            "role": "reviewer" if session in self.reviewers else "annotator",
            "message": self.message,
        }
        if self.overlap > 1:
            out["overlap"] = self.overlap
            batch["review"] = sum(self._in_review(t["index"]) for t in self.tasks)
            batch["mine"] = (  # a reviewer's: the decisions it took
                sum(d["session"] == session for d in self._decisions.values())
                if session in self.reviewers
                else sum(
                    any(a["session"] == session for a in got) for got in self._answers.values()
                )
            )
        return out

    def _expire(self) -> None:
        """Leases past their time return their tasks to the queue."""
        now = time.monotonic()
        for s in [s for s, (_, until) in self._leases.items() if until < now]:
            del self._leases[s]  # an abandoned task goes back to the queue

    def _held(self, session: str) -> int | None:
        """The task (pool index) `session` holds, if any."""
        lease = self._leases.get(session)
        return None if lease is None else lease[0]

    def _lease(self, session: str, index: int) -> None:
        self._leases[session] = (index, time.monotonic() + self.lease_seconds)

    def _holders(self, index: int, but: str) -> int:
        """How many sessions other than `but` hold the task."""
        return sum(i == index and s != but for s, (i, _) in self._leases.items())

    def _open_to(self, index: int, session: str) -> bool:
        """The session may take (or keep) the task. A reviewer: it waits for review and no
        other session holds it. An annotator: not final, not answered by it, and fewer than
        k answers and leases of others."""
        if session in self.reviewers:
            return self._in_review(index) and self._holders(index, session) == 0
        got = self._answers.get(index, [])
        return (
            index not in self._done
            and all(a["session"] != session for a in got)
            and len(got) + self._holders(index, session) < self.overlap
        )

    def _task(self, index: int, answer: dict[str, Any] | None = None) -> dict[str, Any]:
        """The open batch's task for `index`, with `answer` (after an undo) attached; a task
        in review carries the annotators' versions."""
        task = next(t for t in self.tasks if t["index"] == index)
        if self.overlap > 1 and (index in self._decisions or self._in_review(index)):
            shown = versions(self._answers.get(index, []), self.kind)
            task = {**task, "review": True, "versions": shown}
        if answer is None:
            return task
        prev = {"answer": answer["answer"]}
        if answer["label"] is not None:
            prev["label"] = answer["label"]
        if answer["spans"] is not None:
            prev["spans"] = answer["spans"]
        return {**task, "answer": prev}

    def next(self, session: str) -> dict[str, Any]:
        """The session's task: the one it holds, else the first one open to it, leased to it
        (a reviewer's: the first task waiting for review)."""
        with self._cond:
            task = None
            reviewer = session in self.reviewers
            if self.state == "labelling":
                self._expire()
                held = self._held(session)
                if held is not None and not self._open_to(held, session):
                    held = None  # e.g. an annotator's undo took it out of review
                if held is None:
                    open_ = (t["index"] for t in self.tasks if self._open_to(t["index"], session))
                    held = next(open_, None)
                if held is not None:
                    self._lease(session, held)
                    task = self._task(held)
                else:
                    self._leases.pop(session, None)
            status = self._status(session)
            if task is None and self.state == "labelling":
                status["message"] = (
                    "nothing to review now: a task comes here when its "
                    f"{self.overlap} annotators disagree"
                    if reviewer
                    else "the batch's other tasks are open in other sessions; waiting for them"
                    if self.overlap == 1
                    else f"the batch's other tasks wait for other annotators (each needs "
                    f"{self.overlap}) or for a reviewer; waiting for them"
                )
            return {"task": task, "status": status}

    def heartbeat(self, session: str) -> dict[str, Any]:
        """An open page renews its lease."""
        with self._cond:
            held = self._held(session)
            if held is not None:
                self._lease(session, held)
            return {"ok": True, "held": held is not None}

    def release(self, session: str) -> dict[str, Any]:
        """A closed page gives its task back at once."""
        with self._cond:
            self._leases.pop(session, None)
            return {"ok": True}

    def answer(self, session: str, body: Any) -> dict[str, Any]:
        """Check an answer (task, label, spans) and store it; nothing is stored otherwise.
        A reviewer's answer is the task's decision."""
        if not isinstance(body, dict):
            raise HttpError(400, "the answer must be a JSON object")
        with self._cond:
            reviewer = session in self.reviewers
            index = (self._check_review if reviewer else self._check_task)(session, body.get("id"))
            answer = body.get("answer")
            if answer not in ANSWERS:
                raise HttpError(400, f"answer {answer!r} is not one of {list(ANSWERS)}")
            task = self._task(index)
            label, spans = None, None
            if self.kind == "multiclass":
                label = body.get("label")
                if answer == "accept" or label is not None:
                    label = self._check_label(label)
            else:
                spans = check_spans(task, body.get("spans", []), self.labels)
            self.store.add_answer(
                self.round,
                index,
                task["item_id"],
                session,
                answer,
                label=label,
                spans=spans,
                decision=reviewer,
            )
            row = {
                "index": index,
                "answer": answer,
                "label": label,
                "spans": spans,
                "session": session,
            }
            if reviewer:
                self._decisions[index] = row
            else:
                self._answers.setdefault(index, []).append(row)
            self._settle(index)
            self._leases.pop(session, None)
            self._cond.notify_all()
            return {"ok": True, "status": self._status(session)}

    def undo(self, session: str) -> dict[str, Any]:
        """Take back the session's last answer (a reviewer's: decision) of the open batch;
        its task comes back. An answer a reviewer has decided on stays."""
        with self._cond:
            if self.state != "labelling":
                raise HttpError(409, f"nothing to undo: the batch is closed ({self.state})")
            reviewer = session in self.reviewers
            row = self.store.last(self.round, session, decision=reviewer)
            if row is None:
                raise HttpError(409, f"nothing to undo: {session!r} has no answer in this batch")
            index = row["index"]
            if not reviewer and index in self._decisions:
                who = self._decisions[index]["session"]
                raise HttpError(
                    409, f"task {self.round}:{index} is decided by reviewer {who!r}; it stays"
                )
            self.store.undo(row["id"], decision=reviewer)
            if reviewer:
                self._decisions.pop(index, None)
            else:
                got = self._answers.get(index, [])
                self._answers[index] = [a for a in got if a["session"] != session]
            self._settle(index)
            self._lease(session, index)
            self._cond.notify_all()
            return {"task": self._task(index, row), "status": self._status(session)}

    def _parse(self, task_id: Any) -> int:
        """A task id of the open batch -> its pool index."""
        if self.state != "labelling":
            raise HttpError(409, f"no batch is open ({self.state}); wait for the next round")
        m = TASK_ID_RE.fullmatch(task_id) if isinstance(task_id, str) else None
        if m is None:
            raise HttpError(400, f"task id {task_id!r} is not 'round:index'")
        rnd, index = int(m[1]), int(m[2])
        if rnd != self.round or all(t["index"] != index for t in self.tasks):
            raise HttpError(409, f"task {task_id} is not in the current batch (round {self.round})")
        return index

    def _check_task(self, session: str, task_id: Any) -> int:
        """The answered task must be in the open batch (EVAL_ROUND's too), not answered by
        this session nor final, and not held by k other sessions; its pool index."""
        index = self._parse(task_id)
        got = self._answers.get(index, [])
        if index in self._done or any(a["session"] == session for a in got):
            raise HttpError(409, f"task {task_id} is already answered; undo it first")
        if self._in_review(index):
            raise HttpError(
                409, f"task {task_id} has its {self.overlap} answers; it waits for review"
            )
        self._expire()
        if len(got) + self._holders(index, session) >= self.overlap:
            raise HttpError(409, f"task {task_id} is open in another session")
        return index

    def _check_review(self, session: str, task_id: Any) -> int:
        """A reviewer's decision must be on a task of the open batch whose annotators
        disagreed, not yet decided, not held by another reviewer; its pool index."""
        index = self._parse(task_id)
        if index in self._decisions:
            raise HttpError(409, f"task {task_id} is already decided; undo it first")
        if not self._in_review(index):
            raise HttpError(
                409,
                f"task {task_id} does not wait for review: only tasks whose {self.overlap} "
                "annotators disagree do",
            )
        self._expire()
        if self._holders(index, session):
            raise HttpError(409, f"task {task_id} is open in another session")
        return index

    def _check_label(self, label: Any) -> str:
        """A class must be in the label set."""
        if label not in self.labels:
            raise HttpError(400, f"label {label!r} is not in the label set {self.labels}")
        return str(label)


def check_spans(task: dict[str, Any], spans: Any, labels: Sequence[str]) -> list[dict[str, Any]]:
    """Entity spans from the page -> checked spans on token edges, sorted, not overlapping.

    A span names its tokens (token_start/token_end, inclusive) or its characters (start/end
    in the sentence text), or both, which must agree; the stored start/end are always the
    tokens' own offsets, computed here, never the page's numbers."""
    if not isinstance(spans, list):
        raise HttpError(400, "spans must be a list")
    out = [_check_span(task["sentences"], k, span, labels) for k, span in enumerate(spans)]
    out.sort(key=lambda x: (x["sentence"], x["token_start"]))
    for p, q in itertools.pairwise(out):
        if p["sentence"] == q["sentence"] and q["token_start"] <= p["token_end"]:
            raise HttpError(400, f"spans overlap in sentence {p['sentence']}: {p} and {q}")
    return out


def _check_span(
    sentences: list[dict[str, Any]], k: int, span: Any, labels: Sequence[str]
) -> dict[str, Any]:
    """One span of an answer -> {sentence, start, end, token_start, token_end, label}."""
    if not isinstance(span, dict):
        raise HttpError(400, f"span {k} is not an object")
    keys = ("sentence", "start", "end", "token_start", "token_end")
    s, start, end, t0, t1 = (span.get(x) for x in keys)
    if any(type(span[x]) is not int for x in keys if x in span) or type(s) is not int:
        raise HttpError(
            400,
            f"span {k}: sentence, start and end (or token_start and token_end) must be integers",
        )
    if not 0 <= s < len(sentences):
        raise HttpError(400, f"span {k}: sentence {s} is out of range (0-{len(sentences) - 1})")
    tokens = sentences[s]["tokens"]
    if "start" in span or "end" in span:
        a, b = _tokens_at(sentences[s]["text"], tokens, k, s, start, end)
        for key, given, want in (("token_start", t0, a), ("token_end", t1, b)):
            if key in span and given != want:
                raise HttpError(400, f"span {k}: {key}={given!r} but the offsets give {want}")
    elif type(t0) is int and type(t1) is int and 0 <= t0 <= t1 < len(tokens):
        a, b = t0, t1
    else:
        raise HttpError(
            400,
            f"span {k}: give start/end (characters) or token_start/token_end (tokens "
            f"0-{len(tokens) - 1} of sentence {s}, first <= last)",
        )
    label = span.get("label")
    if label not in labels:
        raise HttpError(400, f"span {k}: label {label!r} is not in the label set {list(labels)}")
    return {"sentence": s, "start": tokens[a]["start"], "end": tokens[b]["end"]} | {
        "token_start": a,
        "token_end": b,
        "label": label,
    }


def _tokens_at(
    text: str, tokens: list[dict[str, Any]], k: int, s: int, start: Any, end: Any
) -> tuple[int, int]:
    """Character offsets in sentence s -> (first token, last token); both on token edges."""
    if type(start) is not int or type(end) is not int:
        raise HttpError(400, f"span {k}: sentence, start and end must be integers")
    if not 0 <= start < end <= len(text):
        raise HttpError(400, f"span {k}: [{start}, {end}) is outside sentence {s} (0-{len(text)})")
    a = next((n for n, t in enumerate(tokens) if t["start"] == start), None)
    b = next((n for n, t in enumerate(tokens) if t["end"] == end), None)
    if a is None or b is None or a > b:
        raise HttpError(
            400, f"span {k}: [{start}, {end}) of sentence {s} is not on token boundaries"
        )
    return a, b


# ---------------------------------------------------------------------------- HTTP


def is_loopback(host: str) -> bool:
    """Only this machine can reach `host` (no token needed then)."""
    try:
        return ipaddress.ip_address(socket.gethostbyname(host)).is_loopback
    except (OSError, ValueError):
        return False


class Auth:
    """A shared token: `Authorization: Bearer`, basic auth (password = token), or ?token=."""

    def __init__(self, token: str | None, user: str | None) -> None:
        """The token (None: open) and the only basic-auth user allowed (None: any)."""
        self.token, self.user = token, user

    def check(self, headers: Any, query: dict[str, list[str]]) -> tuple[bool, bool]:
        """(allowed, set the cookie)."""
        if not self.token:
            return True, False
        given = query.get("token", [None])[0]
        if given is not None:
            return self._same(given), True
        auth = headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            return self._same(auth[7:].strip()), False
        if auth.startswith("Basic "):
            try:
                user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return False, False
            return self._same(password) and (self.user is None or user == self.user), False
        for part in headers.get("Cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == "alrun_token":
                return self._same(value), False
        return False, False

    def _same(self, given: str) -> bool:
        """Constant-time comparison with the token."""
        assert self.token is not None
        return hmac.compare_digest(given.encode(), self.token.encode())
