"""Annotation storage: every answer is one committed transaction in a real database.

SQLite by default (a file in the run folder, WAL journal, synchronous=FULL), any SQLAlchemy
URL otherwise. What each round served is stored with the task as shown, so a restart serves
the same batch and the database alone can be exported to Prodigy JSONL.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    inspect,
    select,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from alrun.errors import AlrunError

DB_FILE = "annotations.db"
ANSWERS = ("accept", "reject", "ignore")
# The evaluation sample's batch (eval.size): served before round 0, stored under this round
# number in `batches` and `answers` like a round's, its task ids "-1:<pool index>".
EVAL_ROUND = -1

metadata = MetaData()
meta_table = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)
# The tasks each round served, in the strategy's order, as the page showed them (round
# EVAL_ROUND: the evaluation sample, in drawing order, without suggestions).
batches = Table(
    "batches",
    metadata,
    Column("round", Integer, primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("pool_index", Integer, nullable=False, index=True),
    Column("item_id", String(512), nullable=False),
    Column("task", Text, nullable=False),  # JSON
)


def _answer_table(name: str) -> Table:
    """An answer per row: who (session) said what about which task, when; never deleted."""
    return Table(
        name,
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("round", Integer, nullable=False, index=True),
        Column("pool_index", Integer, nullable=False),
        Column("item_id", String(512), nullable=False),
        Column("session", String(64), nullable=False),
        Column("answer", String(8), nullable=False),
        Column("label", String(256)),  # multiclass
        # NER: JSON list of {sentence, start, end, token_start, token_end, label}
        Column("spans", Text),
        Column("created", Float, nullable=False),
        Column("undone", Float),
    )


# Answers are never deleted: undo marks a row undone, so the history stays auditable.
answers = _answer_table("answers")
# A reviewer's decision on an item whose annotators disagreed (oracle.overlap >= 2): the label
# the loop trains on. The original answers stay in `answers`; undo marks a decision undone.
decisions = _answer_table("decisions")


def db_url(value: str | None, run_dir: Path) -> str:
    """`oracle.db`: null -> the run folder's SQLite file; a path -> SQLite; else a URL."""
    if not value:
        return f"sqlite:///{(run_dir / DB_FILE).resolve()}"
    if "://" in value:
        return value
    path = Path(value).expanduser()
    if path.is_dir():
        path = path / DB_FILE
    return f"sqlite:///{path.resolve()}"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    """Each SQLite connection: WAL, fsync per commit, wait for a busy writer."""
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
    cur.execute("PRAGMA synchronous=FULL")  # an answer committed is an answer on disk
    cur.execute("PRAGMA busy_timeout=5000")
    cur.close()


class Store:
    """The run's answers; one short transaction per write."""

    def __init__(self, url: str, create: bool = True) -> None:
        """Open (and with `create`, set up) the database; a bad URL is a clear error."""
        self.url = url
        try:
            self.engine: Engine = create_engine(url)
            if self.engine.dialect.name == "sqlite":
                event.listen(self.engine, "connect", _sqlite_pragmas)
            if create:
                metadata.create_all(self.engine)
            else:
                with self.engine.connect() as c:
                    c.execute(select(meta_table).limit(1)).all()
            # a database from before oracle.overlap has no decisions table (read-only: none)
            self.reviewed = inspect(self.engine).has_table("decisions")
        except SQLAlchemyError as e:
            raise AlrunError(
                f"annotation database {url!r}: {e.__class__.__name__}: {str(e).splitlines()[0]}; "
                "check oracle.db (a file path or an SQLAlchemy URL)"
            ) from e

    # ------------------------------------------------------------------ meta
    def get_meta(self, key: str) -> Any:
        """A saved run setting (config, label set), or None."""
        with self.engine.connect() as c:
            row = c.execute(select(meta_table.c.value).where(meta_table.c.key == key)).first()
        return None if row is None else json.loads(row[0])

    def set_meta(self, key: str, value: Any) -> None:
        """Save (or replace) a run setting."""
        with self.engine.begin() as c:
            c.execute(meta_table.delete().where(meta_table.c.key == key))
            c.execute(meta_table.insert().values(key=key, value=json.dumps(value)))

    # ------------------------------------------------------------------ batches
    def batch(self, rnd: int) -> list[dict[str, Any]]:
        """The tasks round `rnd` served, in order ([] if none): a restart serves them again."""
        with self.engine.connect() as c:
            rows = c.execute(
                select(batches).where(batches.c.round == rnd).order_by(batches.c.position)
            ).all()
        return [json.loads(r.task) for r in rows]

    def add_batch(self, rnd: int, tasks: list[dict[str, Any]]) -> None:
        """Save a batch as shown, before its first task is served."""
        with self.engine.begin() as c:
            c.execute(
                batches.insert(),
                [
                    {
                        "round": rnd,
                        "position": k,
                        "pool_index": t["index"],
                        "item_id": t["item_id"],
                        "task": json.dumps(t),
                    }
                    for k, t in enumerate(tasks)
                ],
            )

    def rounds(self) -> list[int]:
        """Every round with a saved batch (EVAL_ROUND included): for the export."""
        with self.engine.connect() as c:
            return [r[0] for r in c.execute(select(batches.c.round).distinct()).all()]

    # ------------------------------------------------------------------ answers
    def add_answer(
        self,
        rnd: int,
        index: int,
        item_id: str,
        session: str,
        answer: str,
        label: str | None = None,
        spans: list[dict[str, Any]] | None = None,
        decision: bool = False,
    ) -> None:
        """Save one answer (`decision`: a reviewer's) in its own committed transaction."""
        with self.engine.begin() as c:
            c.execute(
                (decisions if decision else answers)
                .insert()
                .values(
                    round=rnd,
                    pool_index=index,
                    item_id=item_id,
                    session=session,
                    answer=answer,
                    label=label,
                    spans=None if spans is None else json.dumps(spans),
                    created=time.time(),
                )
            )

    def active(self, rnd: int | None = None, decision: bool = False) -> list[dict[str, Any]]:
        """Answers (`decision`: reviewers' decisions) not undone, oldest first; with
        oracle.overlap=k an item has up to k answers, from different sessions."""
        if decision and not self.reviewed:
            return []
        table = decisions if decision else answers
        q = select(table).where(table.c.undone.is_(None)).order_by(table.c.id)
        if rnd is not None:
            q = q.where(table.c.round == rnd)
        with self.engine.connect() as c:
            rows = c.execute(q).all()
        return [_answer_row(r) for r in rows]

    def last(self, rnd: int, session: str, decision: bool = False) -> dict[str, Any] | None:
        """The session's latest answer (or decision) of this round not undone."""
        table = decisions if decision else answers
        with self.engine.connect() as c:
            row = c.execute(
                select(table)
                .where(table.c.round == rnd, table.c.session == session, table.c.undone.is_(None))
                .order_by(table.c.id.desc())
                .limit(1)
            ).first()
        return None if row is None else _answer_row(row)

    def undo(self, row_id: int, decision: bool = False) -> None:
        """Mark one answer (or decision) undone: the row stays, for the audit trail."""
        table = decisions if decision else answers
        with self.engine.begin() as c:
            c.execute(update(table).where(table.c.id == row_id).values(undone=time.time()))

    def undo_last(self, rnd: int, session: str) -> dict[str, Any] | None:
        """Mark the session's latest answer of this round undone; return it."""
        row = self.last(rnd, session)
        if row is not None:
            self.undo(row["id"])
        return row

    def close(self) -> None:
        """Release the connections."""
        self.engine.dispose()


def _answer_row(r: Any) -> dict[str, Any]:
    """A database row of `answers` -> the dict the annotator and the export use."""
    return {
        "id": r.id,
        "round": r.round,
        "index": r.pool_index,
        "item_id": r.item_id,
        "session": r.session,
        "answer": r.answer,
        "label": r.label,
        "spans": None if r.spans is None else json.loads(r.spans),
        "created": r.created,
        "undone": r.undone,
    }
