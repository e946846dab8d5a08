"""`alrun-convert`: Prodigy JSONL to AutoTrain/CoNLL/text-classification files and back.

Every conversion ends with a report on stderr: examples read, converted, and each example not
converted with its reason and line. A failed conversion (an error in any mode, anything
skipped in strict mode) writes nothing and exits 1, so a pipeline never runs on part of the
data; a bad file or argument exits 2.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from alrun.data import prodigy, read_conll, read_csv, read_jsonl, to_iob2
from alrun.errors import AlrunError
from alrun.tracking import write_atomic

Task = dict[str, Any]


def _write(out: str, text: str) -> None:
    if out == "-":
        sys.stdout.write(text)
    else:
        write_atomic(Path(out), text)


def _jsonl(rows: Sequence[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


# --------------------------------------------------------------------------- from Prodigy


def to_iob(examples: Sequence[prodigy.NerExample]) -> str:
    """AutoTrain token classification: {"tokens": [...], "tags": [...]} lines."""
    return _jsonl([{"tokens": e.words, "tags": e.tags} for e in examples])


def to_conll(examples: Sequence[prodigy.NerExample]) -> str:
    """`token tag` lines; -DOCSTART- wherever the examples' meta.doc changes."""
    out, doc = io.StringIO(), object()
    for e in examples:
        if "doc" in e.meta and e.meta["doc"] != doc:
            doc = e.meta["doc"]
            out.write("-DOCSTART- O\n\n")
        out.writelines(f"{w} {t}\n" for w, t in zip(e.words, e.tags, strict=True))
        out.write("\n")
    return out.getvalue()


def to_textcat(examples: Sequence[prodigy.TextcatExample], out: str) -> str:
    """AutoTrain text classification: `text`, `target` as CSV (by suffix) or JSONL."""
    if out.lower().endswith((".csv", ".tsv")):
        buf = io.StringIO()
        w = csv.writer(buf, delimiter="\t" if out.lower().endswith(".tsv") else ",")
        w.writerow(["text", "target"])
        w.writerows([e.text, e.label] for e in examples)
        return buf.getvalue()
    return _jsonl([{"text": e.text, "target": e.label} for e in examples])


# --------------------------------------------------------------------------- to Prodigy


def _labeled_tasks(path: Path, labels: Sequence[str] | None) -> list[Task]:
    """A run's labeled.jsonl (the run folder or the file): one task per labelled sentence or
    document, meta = id, pool index and round."""
    if path.is_dir():
        model = path / "model" / "alrun-model.json"
        if not labels and model.exists():
            meta = json.loads(model.read_text(encoding="utf-8"))
            if meta.get("task") == "multiclass":
                labels = meta["label_names"]
        path = path / "labeled.jsonl"
    recs = list(read_jsonl(path))
    if not labels:
        labels = list(dict.fromkeys(str(r["label"]) for _, r in recs if "label" in r))
    tasks: list[Task] = []
    for where, r in recs:
        meta = {k: r[k] for k in ("id", "index", "round") if k in r}
        if "tags" in r and "tokens" in r:
            for k, (words, tags) in enumerate(zip(r["tokens"], r["tags"], strict=True)):
                extra = {"doc": r.get("id"), "sentence": k} if len(r["tokens"]) > 1 else {}
                tasks.append(prodigy.ner_task(words, tags, {**meta, **extra}))
        elif "text" in r and "label" in r:
            tasks.append(prodigy.textcat_task(r["text"], str(r["label"]), labels, meta))
        else:
            raise AlrunError(
                f"{where}: no text/label or tokens/tags; labeled.jsonl files written before "
                "alrun 0.1 hold ids only: re-run, or convert the dataset itself"
            )
    return tasks


def _conll_tasks(path: Path) -> list[Task]:
    return [
        prodigy.ner_task(words, tags, {"doc": doc_id, "sentence": k, "source": where})
        for doc_id, sents in read_conll(path)
        for k, (where, words, tags) in enumerate(sents)
    ]


def _iob_tasks(path: Path) -> list[Task]:
    tasks = []
    for where, r in read_jsonl(path):
        words, tags = r.get("tokens"), r.get("tags")
        if not isinstance(words, list) or not isinstance(tags, list) or len(words) != len(tags):
            raise AlrunError(f"{where}: expected equal-length `tokens` and `tags` lists")
        tasks.append(prodigy.ner_task([str(w) for w in words], to_iob2(tags, where)))
    return tasks


def _textcat_tasks(
    path: Path, text_field: str, label_field: str | None, labels: Sequence[str] | None
) -> list[Task]:
    recs = list(read_csv(path) if path.suffix.lower() in (".csv", ".tsv") else read_jsonl(path))
    rows = []
    for where, r in recs:
        field = label_field or ("target" if "target" in r else "label")
        for key in (text_field, field):
            if key not in r:
                raise AlrunError(
                    f"{where}: no field {key!r} (fields: {', '.join(map(str, r))}); "
                    "set --text-field / --label-field"
                )
        meta = {"id": r["id"]} if "id" in r else {"source": where}
        rows.append((where, str(r[text_field]), str(r[field]).strip(), meta))
    names = list(labels or dict.fromkeys(row[2] for row in rows))
    for where, _, label, _ in rows:
        if label not in names:
            raise AlrunError(f"{where}: label {label!r} is not in --labels {names}")
    return [prodigy.textcat_task(text, label, names, meta) for _, text, label, meta in rows]


def _db_tasks(source: str) -> list[Task]:
    """The web annotator's database -> one Prodigy task per answer (NER: per sentence).

    Undone answers are left out; rejected and ignored ones keep their answer, as Prodigy does.
    """
    from alrun.web.store import DB_FILE, Store, db_url

    path = Path(source)
    if "://" not in source and not (path / DB_FILE if path.is_dir() else path).is_file():
        raise AlrunError(f"no annotation database at {source} (a run folder holds {DB_FILE})")
    store = Store(db_url(source, Path(".")), create=False)
    try:
        labels = store.get_meta("labels")
        if labels is None:
            raise AlrunError(f"{source}: not an alrun annotation database (no label set saved)")
        shown = {(rnd, t["index"]): t for rnd in store.rounds() for t in store.batch(rnd)}
        tasks = []
        for a in store.active():
            t = shown[(a["round"], a["index"])]
            who = {"_annotator_id": a["session"], "_session_id": a["session"]}
            meta = {"id": a["item_id"], "round": a["round"], "index": a["index"]}
            if t["kind"] == "multiclass":
                task = prodigy.textcat_task(t["text"], a["label"] or "", labels, meta)
                task["accept"] = [a["label"]] if a["label"] else []
                tasks.append({**task, "answer": a["answer"], **who})
                continue
            for k, sent in enumerate(t["sentences"]):
                spans = [
                    {key: v for key, v in sp.items() if key != "sentence"}
                    for sp in a["spans"] or []
                    if sp["sentence"] == k
                ]
                extra = {"doc": a["item_id"], "sentence": k} if len(t["sentences"]) > 1 else {}
                tasks.append(
                    {
                        "text": sent["text"],
                        "tokens": sent["tokens"],
                        "spans": spans,
                        "answer": a["answer"],
                        "meta": {**meta, **extra},
                        **who,
                    }
                )
        return tasks
    finally:
        store.close()


def _source_format(source: str) -> str:
    path = Path(source)
    if "://" in source or path.suffix.lower() in (".db", ".sqlite", ".sqlite3"):
        return "db"
    if path.is_dir() or path.name == "labeled.jsonl":
        return "labeled"
    if path.suffix.lower() in (".csv", ".tsv"):
        return "textcat"
    if path.suffix.lower() not in (".jsonl", ".json", ".ndjson"):
        return "conll"
    for _, rec in read_jsonl(path):
        return "iob" if "tags" in rec and "tokens" in rec else "textcat"
    raise AlrunError(f"{path}: the file is empty")


# --------------------------------------------------------------------------- command line


def _convert(args: argparse.Namespace) -> int:
    src = Path(args.input)
    if args.command == "to-prodigy":
        fmt = args.source if args.source != "auto" else _source_format(args.input)
        labels = args.labels.split(",") if args.labels else None
        makers: dict[str, Callable[[], list[Task]]] = {
            "labeled": lambda: _labeled_tasks(src, labels),
            "conll": lambda: _conll_tasks(src),
            "iob": lambda: _iob_tasks(src),
            "textcat": lambda: _textcat_tasks(src, args.text_field, args.label_field, labels),
            "db": lambda: _db_tasks(args.input),
        }
        if fmt != "db" and not src.exists():
            raise AlrunError(f"input not found: {src}")
        tasks = makers[fmt]()
        _write(args.output, _jsonl(tasks))
        print(f"{args.input}: {len(tasks)} Prodigy tasks written ({fmt})", file=sys.stderr)
        return 0
    if args.command == "prodigy-to-textcat":
        labels = args.labels.split(",") if args.labels else None
        cats, report = prodigy.read_textcat(src, labels)
        body = to_textcat(cats, args.output)
        alignment = "strict"
    else:
        alignment = args.alignment
        spans, report = prodigy.read_ner(src, alignment, args.tokenizer)
        body = to_iob(spans) if args.command == "prodigy-to-iob" else to_conll(spans)
    print(report.text(), file=sys.stderr)
    if report.failed(alignment):
        fix = (
            "fix those lines, or pass --alignment contract|expand to snap spans to tokens"
            if report.skipped and alignment == "strict"
            else "fix those lines"
        )
        print(f"alrun-convert: nothing written to {args.output}: {fix}", file=sys.stderr)
        return 1
    _write(args.output, body)
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="alrun-convert",
        description="Convert between Prodigy JSONL, AutoTrain files (tokens/tags, "
        "text/target), CoNLL and alrun runs. OUTPUT '-' is stdout.",
    )
    sub = p.add_subparsers(dest="command", required=True)
    for name, help_ in (
        ("prodigy-to-iob", 'NER tasks -> AutoTrain {"tokens", "tags"} JSONL (IOB2)'),
        ("prodigy-to-conll", "NER tasks -> CoNLL `token tag` columns"),
    ):
        s = sub.add_parser(name, help=help_)
        s.add_argument("input")
        s.add_argument("output")
        s.add_argument(
            "--alignment",
            choices=prodigy.ALIGNMENTS,
            default="strict",
            help="spans off token edges: strict = skip the example and fail; contract / "
            "expand = snap to the tokens inside / touched (default strict)",
        )
        s.add_argument(
            "--tokenizer",
            default="blank:en",
            help="spaCy tokenizer for tasks without `tokens` (default blank:en)",
        )
    s = sub.add_parser("prodigy-to-textcat", help="text classification tasks -> text,target")
    s.add_argument("input")
    s.add_argument("output", help=".csv/.tsv for CSV, else JSONL")
    s.add_argument("--labels", help="comma-separated label set (lets rejections imply a label)")
    s = sub.add_parser(
        "to-prodigy",
        help="a run folder or its labeled.jsonl, CoNLL, tokens/tags JSONL or text/label "
        "CSV/JSONL -> Prodigy JSONL (for prodigy db-in)",
    )
    s.add_argument("input")
    s.add_argument("output")
    s.add_argument(
        "--from",
        dest="source",
        choices=("auto", "labeled", "conll", "iob", "textcat", "db"),
        default="auto",
        help="db: the web annotator's database (a .db file, a run folder, or an SQLAlchemy "
        "URL) with every answer, rejects and ignores included",
    )
    s.add_argument("--text-field", default="text")
    s.add_argument("--label-field", default=None, help="default: target, else label")
    s.add_argument("--labels", help="comma-separated label set for the options")
    return p


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    try:
        code = _convert(args)
    except AlrunError as e:
        print(f"alrun-convert: error: {e}", file=sys.stderr)
        code = 2
    sys.exit(code)


if __name__ == "__main__":
    main()
