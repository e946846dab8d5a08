"""`oracle=web`: a person labels each batch in the browser while the loop waits.

Resuming needs no checkpoint: the same command replays the run, and every batch already in
the database is answered from it (the stored batch wins if training gave another one), so
the labelled set is exactly what was answered and the person sees only what is left. The
evaluation sample (eval.size) is served first as a batch of its own (round EVAL_ROUND), with
no suggestions: no model exists yet, and a suggestion would bias the held-out labels.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import numpy as np

from alrun import agreement
from alrun.config import changed_keys, flatten, result_config
from alrun.data.datasets import ItemText
from alrun.data.prodigy import tokens_from_words
from alrun.data.tags import spans_from_tags, spans_to_tags
from alrun.errors import AlrunError
from alrun.oracles.base import Labels, Oracle, OracleContext
from alrun.web.app import serve
from alrun.web.server import SESSION_RE, Annotator, Auth, is_loopback
from alrun.web.store import EVAL_ROUND, Store, db_url

log = logging.getLogger("alrun")


def check_access(host: str, token: str | None) -> None:
    """Off loopback, anyone on the network could label or read the data: demand a token."""
    if not is_loopback(host) and not token:
        raise AlrunError(
            f"oracle.host={host} is reachable from other machines: set oracle.token=... "
            "or the ALRUN_WEB_TOKEN environment variable (annotators then open the page with "
            "?token=..., or log in with any user name and the token as password)"
        )


def check_team(overlap: Any, reviewers: Any) -> None:
    """oracle.overlap and oracle.reviewers: k >= 1 annotators per item; disagreements (k >= 2)
    need someone to decide them."""
    if isinstance(overlap, bool) or not isinstance(overlap, int) or overlap < 1:
        raise AlrunError(
            f"oracle.overlap={overlap!r}: give how many annotator sessions label each item, a "
            "whole number >= 1 (1: each item once; 2: twice, disagreements go to review)"
        )
    names = list(reviewers or [])
    bad = [r for r in names if not isinstance(r, str) or not SESSION_RE.match(r)]
    if bad:
        raise AlrunError(
            f"oracle.reviewers: {bad} are not session names (1-64 letters, digits or _.@-)"
        )
    if overlap >= 2 and not names:
        raise AlrunError(
            f"oracle.overlap={overlap} sends each item to {overlap} annotators and their "
            "disagreements to a reviewer: name one, e.g. oracle.reviewers=[lead], who opens "
            "the page with ?session=lead"
        )
    if overlap == 1 and names:
        raise AlrunError(
            f"oracle.reviewers={names} with oracle.overlap=1: one annotator per item never "
            "disagrees, so there is nothing to review; set oracle.overlap=2 (or more), or "
            "oracle.reviewers=[]"
        )


def entity_types(label_names: list[str]) -> list[str]:
    """The NER tag names (O, B-X, I-X) -> the entity types a person picks from (X)."""
    return [n[2:] for n in label_names if n.startswith("B-")]


class WebOracle(Oracle):
    """The loop's oracle backed by the annotator: each query is a batch a person answers."""

    def __init__(
        self,
        ctx: OracleContext,
        *,
        host: str,
        port: int,
        db: str | None,
        token: str | None,
        user: str | None,
        lease_seconds: float,
        linger_seconds: float,
        allowed_hosts: list[str] | None = None,
        overlap: int = 1,
        reviewers: list[str] | None = None,
    ) -> None:
        """Open the database (refusing other settings), start the server, print its URL."""
        token = token or os.environ.get("ALRUN_WEB_TOKEN") or None
        check_access(host, token)
        check_team(overlap, reviewers)
        self.pool, self.task, self.linger = ctx.pool, ctx.task, linger_seconds
        self.kind = ctx.task.name
        names = list(self.pool.label_names)
        self.labels = names if self.kind == "multiclass" else entity_types(names)
        self.store = Store(db_url(db, ctx.run_dir))
        self._check_same_run(ctx.config)
        cfg = ctx.config
        info = {
            "dataset": cfg["dataset"]["name"],
            "strategy": cfg["strategy"]["name"],
            "unit": cfg["loop"]["unit"],
            "budget": cfg["loop"]["budget"],
        }
        self.overlap, self.reviewers = overlap, list(reviewers or [])
        self.annotator = Annotator(
            self.store,
            self.kind,
            self.labels,
            info,
            lease_seconds,
            overlap=overlap,
            reviewers=frozenset(self.reviewers),
        )
        if (cfg.get("eval") or {}).get("size"):
            self.annotator.phase = "eval"  # the page says what comes first
        auth = Auth(token, user)
        self.httpd = serve(self.annotator, host, port, auth, allowed_hosts or [])
        self.url = f"http://{host}:{self.httpd.server_address[1]}/"
        self._closed = False
        # loop.initial_from: the first query is the seed set, labelled in the file already
        self._seeded = bool(cfg["loop"].get("initial_from"))
        self._round = 0
        self._labeled = 0
        self._model: Any = None
        self._announce(bool(token))

    def _announce(self, token: bool) -> None:
        """Print where annotators (and reviewers) open the page, and what is saved."""
        answered = len(self.store.active())
        team = (
            f"; each item goes to {self.overlap} annotators, disagreements to the reviewers "
            f"(?session={'|'.join(self.reviewers)})"
            if self.overlap > 1
            else ""
        )
        print(
            f"alrun: annotator at {self.url}?session=NAME"
            + ("&token=<oracle.token>" if token else "")
            + team
            + f" (answers: {self.store.url}"
            + (f", {answered} saved answers will be replayed" if answered else "")
            + ")",
            flush=True,
        )

    # ---------------------------------------------------------------- resume check
    def _check_same_run(self, config: dict[str, Any]) -> None:
        """Saved answers only fit the batches of the same settings: refuse other ones."""
        mine = result_config(config)
        saved = self.store.get_meta("config")
        if saved is None:
            self.store.set_meta("config", mine)
            self.store.set_meta("kind", self.kind)
            self.store.set_meta("labels", self.labels)
            self.store.set_meta("created", time.time())
            return
        shown = changed_keys(saved, mine)
        if shown:
            raise AlrunError(
                f"the annotation database {self.store.url} belongs to a run with other settings "
                f"({shown}); its saved answers would not match these batches. Run the same "
                "command as before, or start a new run folder (hydra.run.dir=...) or database "
                "(oracle.db=...)"
            )

    # ---------------------------------------------------------------- tasks
    def _make_task(self, rnd: int, i: int, preds: Any, k: int) -> dict[str, Any]:
        """Pool item i as the page shows it, pre-filled with `preds[k]` when there is a model."""
        base = {"id": f"{rnd}:{i}", "round": rnd, "index": int(i), "item_id": self.pool.ids[i]}
        if self.kind == "multiclass":
            suggestion = None
            if preds is not None:
                p = preds.probs[k]
                best = int(np.argmax(p))
                suggestion = {"label": self.labels[best], "score": round(float(p[best]), 4)}
            return {
                **base,
                "kind": "multiclass",
                "text": self.pool.texts[i],
                "suggestion": suggestion,
            }
        source = None if self.pool.source is None else self.pool.source[i]
        sentences, spans = [], []
        names = self.pool.label_names
        for s, words in enumerate(self.pool.sentences[i]):
            sent = tokenized(words) if source is None else original(source, s)
            sentences.append(sent)
            if preds is not None:
                tags = [names[t] for t in preds[k][s]]
                spans += [{"sentence": s, **sp} for sp in spans_from_tags(sent["tokens"], tags)]
        doc = {} if source is None else {"doc_id": source.doc_id}
        return {**base, "kind": "ner", **doc, "sentences": sentences, "spans": spans}

    def _tasks(self, rnd: int, idx: np.ndarray, suggest: bool = True) -> list[dict[str, Any]]:
        """The batch's tasks; `suggest`: pre-fill with the kept model's guesses (none for the
        evaluation sample, nor before the first model)."""
        preds = None
        if suggest and self._model is not None and len(idx):
            inputs = self.task.inputs(self.pool, idx)
            preds = self.task.predict(self._model, inputs)
            if self.kind == "ner":
                preds = self.task.decode(preds, inputs)
        return [self._make_task(rnd, int(i), preds, k) for k, i in enumerate(idx)]

    def _to_label(self, task: dict[str, Any], answer: dict[str, Any]) -> Any:
        """A person's accepted answer -> the loop's label (class id, or tag ids per sentence)."""
        if self.kind == "multiclass":
            return self.labels.index(answer["label"])
        names = self.pool.label_names
        out = []
        for s, sent in enumerate(task["sentences"]):
            spans = [
                (sp["token_start"], sp["token_end"], sp["label"])
                for sp in answer["spans"] or []
                if sp["sentence"] == s
            ]
            tags = spans_to_tags(len(sent["tokens"]), spans)
            out.append(np.array([names.index(t) for t in tags], dtype=np.int64))
        return out

    # ---------------------------------------------------------------- the loop's side
    def label(self, idx: np.ndarray) -> Labels:
        """The next round's batch, answered by a person (the seed set needs no one)."""
        idx = np.asarray(idx, dtype=np.int64)
        if self._seeded:
            self._seeded, self._round = False, 1  # the seeds are round 0's batch
            self._labeled += len(idx)
            return Labels(idx, self.pool.labels[idx], np.empty(0, dtype=np.int64))
        rnd = self._round
        self._round += 1
        got = self._ask(rnd, idx, suggest=True)
        self._labeled += len(got.idx)
        return got

    def label_eval(self, idx: np.ndarray) -> Labels:
        """The evaluation sample, before round 0: a batch of its own (round EVAL_ROUND),
        shown apart from the rounds and without suggestions; its labels never count towards
        the budget nor train a model."""
        return self._ask(EVAL_ROUND, np.asarray(idx, dtype=np.int64), suggest=False)

    def _ask(self, rnd: int, idx: np.ndarray, suggest: bool) -> Labels:
        """Serve batch `rnd` (the one saved in the database if any, so a restart asks nothing
        twice) until every task is answered; accepted answers become labels."""
        tasks = self.store.batch(rnd)
        if tasks:
            if [t["index"] for t in tasks] != idx.tolist():
                log.warning(
                    "%s: the run picked another batch than the one saved in the database "
                    "(training is not bit-identical here); serving the saved batch so no "
                    "answer is lost",
                    "the evaluation sample" if rnd == EVAL_ROUND else f"round {rnd}",
                )
        else:
            tasks = self._tasks(rnd, idx, suggest)
            self.store.add_batch(rnd, tasks)
        answers = self.annotator.serve_batch(rnd, tasks, self._labeled)
        kept = [(t, a) for t, a in zip(tasks, answers, strict=True) if a["answer"] == "accept"]
        labels = np.empty(len(kept), dtype=object if self.kind == "ner" else np.int64)
        for k, (t, a) in enumerate(kept):
            labels[k] = self._to_label(t, a)
        return Labels(
            np.array([t["index"] for t, _ in kept], dtype=np.int64),
            labels,
            np.array([a["index"] for a in answers if a["answer"] != "accept"], dtype=np.int64),
        )

    # ---------------------------------------------------------------- agreement
    def _agreement(self, rnd: int | None) -> dict[str, Any]:
        """Annotator agreement on round `rnd`'s batch (None: every batch, the evaluation
        sample's too), from the database: what every session answered, and the decisions."""
        items = agreement.by_item(self.store.active(rnd)).values()
        reviewed = len(self.store.active(rnd, decision=True))
        return agreement.summarize(list(items), self.kind, self.labels, reviewed)

    def round_fields(self, rnd: int) -> dict[str, Any]:
        """With oracle.overlap >= 2, the round's row gets the agreement on its batch."""
        return {"agreement": self._agreement(rnd)} if self.overlap > 1 else {}

    def summary_fields(self) -> dict[str, Any]:
        """... and the summary the agreement over every batch, as `agreement/...` keys."""
        return flatten({"agreement": self._agreement(None)}) if self.overlap > 1 else {}

    def resume_at(self, rnd: int, labeled: int) -> None:
        """The runner continues from a checkpoint: the next batch is round `rnd`'s."""
        self._round, self._labeled, self._seeded = rnd, labeled, False

    def round_done(self, row: dict[str, Any], model: Any) -> None:
        """Keep the model for the next batch's suggestions; show the round's score."""
        self._model = model
        self.annotator.set_score(score_of(row, self.task.selection_metric))

    def close(self, summary: dict[str, Any] | None = None) -> None:
        """Tell open pages the run ended, then stop the server and the database."""
        if self._closed:
            return
        self._closed = True
        if summary is not None:
            self.annotator.finish(
                f"finished: {summary['final/labeled']} labelled; the run folder has the model, "
                "labeled.jsonl and the learning curve"
            )
            time.sleep(self.linger)  # let open pages see the final state
        else:
            self.annotator.finish("the run stopped; start the same command to resume")
        self.httpd.shutdown()
        self.httpd.server_close()
        self.store.close()


def tokenized(words: list[str]) -> dict[str, Any]:
    """A pre-tokenised sentence (CoNLL, tokens/tags): its words joined by single spaces."""
    text, tokens = tokens_from_words(words)
    return {"text": text, "tokens": tokens}


def original(source: ItemText, s: int) -> dict[str, Any]:
    """Sentence s of an item with its original text, byte for byte: the sentence's slice of
    the document, its tokens' offsets in that slice, `ws` (whitespace follows the token),
    and `offset`, where the slice starts in the document."""
    text, offsets = source.sentence(s)
    tokens = [
        {"text": text[a:b], "start": a, "end": b, "id": k, "ws": text[b : b + 1].isspace()}
        for k, (a, b) in enumerate(offsets)
    ]
    return {"text": text, "tokens": tokens, "offset": source.offset + source.sentences[s][0]}


def score_of(row: dict[str, Any], metric: str) -> dict[str, Any]:
    """A round's row -> the score the page shows: the test split's metric, or, without a
    test split, the evaluation sample's with its interval (`eval`)."""
    score = {
        "metric": metric,
        "test": row["test"].get(metric),
        "validation": row["validation"].get(row["chosen"]),  # none: a lone candidate
        "round": row["round"],
        "labeled": row["labeled"],
        "candidate": row["chosen"],
        "heldout": row.get("heldout", "test split"),
        # the stabilizing rule's agreement with last round's model (alrun.stopping): near 1,
        # more labels change few predictions
        "agreement": ((row.get("stopping") or {}).get("stabilizing") or {}).get("value"),
    }
    team = row.get("agreement")  # oracle.overlap >= 2: the annotators on this round's batch
    if team:
        measure = "alpha" if "alpha" in team else "f1"
        score["annotators"] = {"metric": measure, "value": team[measure], "items": team["items"]}
    ev = row.get("eval")
    if ev is not None:
        name = metric if metric in ev else next((k for k in ev if f"{k}_low" in ev), None)
        if name is not None:
            score["eval"] = {
                "metric": name,
                "value": ev[name],
                "low": ev.get(f"{name}_low"),
                "high": ev.get(f"{name}_high"),
                "n": ev.get("n"),
                "level": ev.get("level"),
            }
    return score
