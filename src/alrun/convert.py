"""`alrun-convert`: Prodigy JSONL to AutoTrain/CoNLL/text-classification files and back, and
a run's labeled.jsonl to all of them.

A run on original text (raw text, Prodigy tasks) keeps each sentence's text and token offsets
in labeled.jsonl; its exports keep them: Prodigy tasks hold the sentence byte for byte with
character offsets into it and `meta.offset`, where it starts in its document.

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
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from alrun.data import (
    entities,
    prodigy,
    read_conll,
    read_csv,
    read_jsonl,
    spans_from_tags,
    spans_to_tags,
    to_iob2,
)
from alrun.errors import AlrunError
from alrun.tracking import write_atomic

Task = dict[str, Any]


def _write(out: str, text: str) -> None:
    """`-` is stdout; a file is written whole or not at all."""
    if out == "-":
        sys.stdout.write(text)
    else:
        write_atomic(Path(out), text)


def _jsonl(rows: Sequence[dict[str, Any]]) -> str:
    """One JSON object a line, non-ASCII kept readable."""
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


# --------------------------------------------------------------------------- from a run


def labeled_file(path: Path) -> Path:
    """A run folder's labeled.jsonl, or `path` itself when it is the file: every export from
    a run reads the same file."""
    if not path.exists():
        raise AlrunError(f"input not found: {path}")
    if path.is_dir():
        if not (path / "labeled.jsonl").is_file():
            raise AlrunError(
                f"{path} holds no labeled.jsonl; give a run folder (alrun writes it after "
                "the first round) or the labeled.jsonl file itself"
            )
        return path / "labeled.jsonl"
    return path


def _line(where: str) -> int:
    """ "FILE line 7" -> 7: the report names records by line."""
    return int(where.rsplit(" ", 1)[1])


def _ner_problem(r: dict[str, Any]) -> str | None:
    """Why an NER record of labeled.jsonl cannot be exported as written, or None.

    A hand-edited or truncated file must fail with its line, not export tags against the
    wrong tokens or spans against the wrong characters."""
    words, tags = r["tokens"], r["tags"]
    if not isinstance(words, list) or not isinstance(tags, list) or len(words) != len(tags):
        return "tokens and tags hold different numbers of sentences"
    if any(
        not isinstance(w, list) or not isinstance(t, list) or len(w) != len(t)
        for w, t in zip(words, tags, strict=True)
    ):
        return "a sentence's tokens and tags differ in length"
    if any(
        not (t == "O" or (len(t) > 2 and t[0] in "BI" and t[1] == "-"))
        for s in tags
        for t in map(str, s)
    ):
        return "a tag that is not O, B-TYPE or I-TYPE"
    if "text" not in r and "offsets" not in r:
        return None
    texts, offsets = r.get("text"), r.get("offsets")
    if not isinstance(texts, list) or not isinstance(offsets, list):
        return "text/offsets are not lists of one entry per sentence"
    if not len(texts) == len(offsets) == len(words) == len(r.get("doc_offsets") or words):
        return "text, offsets and tokens hold different numbers of sentences"
    for text, offs, ws in zip(texts, offsets, words, strict=True):
        if len(offs) != len(ws) or any(text[a:b] != w for (a, b), w in zip(offs, ws, strict=True)):
            return "offsets do not point at the tokens in the text"
    return None


def _source_tasks(r: dict[str, Any], meta: dict[str, Any]) -> list[Task]:
    """A record with the original text: one task per sentence whose `text` is the sentence
    byte for byte, tokens and spans with character offsets into it, and `meta.offset` where
    the sentence starts in its document (so `offset + start` points into the document)."""
    tasks = []
    doc_offsets = r.get("doc_offsets") or [0] * len(r["text"])
    for k, (text, offs, tags) in enumerate(zip(r["text"], r["offsets"], r["tags"], strict=True)):
        tokens = [
            {"text": text[a:b], "start": a, "end": b, "id": j, "ws": text[b : b + 1].isspace()}
            for j, (a, b) in enumerate(offs)
        ]
        where = {"doc": r.get("doc", r.get("id")), "offset": doc_offsets[k], "sentence": k}
        tasks.append(
            {
                "text": text,
                "tokens": tokens,
                "spans": spans_from_tags(tokens, [str(t) for t in tags]),
                "answer": "accept",
                "meta": {**meta, **where},
            }
        )
    return tasks


def _ner_record_tasks(r: dict[str, Any], where: str) -> list[Task]:
    """An NER record -> one Prodigy task per sentence (see `_source_tasks`; without the
    original text the tokens are joined by single spaces, as they always were)."""
    problem = _ner_problem(r)
    if problem is not None:
        raise AlrunError(f"{where}: {problem}; fix or delete that line")
    meta: dict[str, Any] = {k: r[k] for k in ("id", "index", "round") if k in r}
    if "text" in r and "offsets" in r:
        return _source_tasks(r, meta)
    tasks = []
    for k, (words, tags) in enumerate(zip(r["tokens"], r["tags"], strict=True)):
        extra = {"doc": r.get("id"), "sentence": k} if len(r["tokens"]) > 1 else {}
        tasks.append(prodigy.ner_task(words, tags, {**meta, **extra}))
    return tasks


def _labeled_tasks(path: Path, labels: Sequence[str] | None) -> list[Task]:
    """A run's labeled.jsonl (the run folder or the file): one task per labelled sentence or
    document, meta = id, pool index and round (NER on original text: document and offset)."""
    if path.is_dir():
        model = path / "model" / "alrun-model.json"
        if not labels and model.exists():
            info = json.loads(model.read_text(encoding="utf-8"))
            if info.get("task") == "multiclass":
                labels = info["label_names"]
    recs = list(read_jsonl(labeled_file(path)))
    if not labels:
        labels = list(dict.fromkeys(str(r["label"]) for _, r in recs if "label" in r))
    tasks: list[Task] = []
    for where, r in recs:
        meta: dict[str, Any] = {k: r[k] for k in ("id", "index", "round") if k in r}
        if "tags" in r and "tokens" in r:
            tasks += _ner_record_tasks(r, where)
        elif "text" in r and "label" in r:
            tasks.append(prodigy.textcat_task(r["text"], str(r["label"]), labels, meta))
        else:
            raise AlrunError(
                f"{where}: no text/label or tokens/tags; labeled.jsonl files written before "
                "alrun 0.1 hold ids only: re-run, or convert the dataset itself"
            )
    return tasks


def _doc_key(meta: dict[str, Any]) -> tuple[Any, float]:
    """(document, position in it) of an exported sentence, for grouping CoNLL documents:
    meta.doc and offset (or sentence number); a sentence item of a CoNLL run ("DOC-s3")
    belongs to DOC at sentence 3; anything else is a document of its own."""
    id_ = str(meta.get("id", ""))
    if "doc" in meta:
        return meta["doc"], float(meta.get("offset", meta.get("sentence", 0)))
    m = re.fullmatch(r"(.+)-s(\d+)", id_)
    return (m[1], float(m[2])) if m else (id_, 0.0)


def _conll_order(examples: list[prodigy.NerExample]) -> list[prodigy.NerExample]:
    """Sentences grouped by document (in order of first appearance, each by its position),
    every one with meta.doc: `to_conll` then writes one -DOCSTART- per document."""
    keys = [_doc_key(e.meta) for e in examples]
    rank: dict[Any, int] = {}
    for doc, _ in keys:
        rank.setdefault(doc, len(rank))
    order = sorted(range(len(examples)), key=lambda i: (rank[keys[i][0]], keys[i][1], i))
    out = []
    for i in order:
        e = examples[i]
        out.append(
            prodigy.NerExample(
                e.line, e.text, e.tokens, e.tags, {**e.meta, "doc": keys[i][0]}, e.key
            )
        )
    return out


def _sentence_examples(
    r: dict[str, Any], where: str, conll: bool, report: prodigy.Report
) -> list[prodigy.NerExample]:
    """One NER record's sentences as examples; what cannot be written goes to the report.

    Every example's spans are counted back from its IOB2 tags: a span that did not survive
    the tags is an error naming the line, never a silent loss."""
    n = _line(where)
    problem = _ner_problem(r)
    if problem is not None:
        report.read += len(r["tokens"]) if isinstance(r["tokens"], list) else 1
        report.add("errors", problem, n)
        return []
    out = []
    for task in _ner_record_tasks(r, where):
        report.read += 1
        tokens, spans = task["tokens"], task["spans"]
        if not tokens:
            report.add("not_data", "sentence without tokens", n)
            continue
        if conll and any(
            t["text"].split() != [t["text"]] or t["text"] == "-DOCSTART-" for t in tokens
        ):
            report.add("skipped", "a token CoNLL cannot hold (whitespace inside, or -DOCSTART-)", n)
            continue
        tags = spans_to_tags(
            len(tokens), [(s["token_start"], s["token_end"], s["label"]) for s in spans]
        )
        if len(entities(tags)) != len(spans):
            report.add("errors", "a span lost writing IOB2 tags (please report it)", n)
            continue
        out.append(prodigy.NerExample(n, task["text"], tokens, tags, task["meta"], n))
    return out


def labeled_ner(path: Path, conll: bool = False) -> tuple[list[prodigy.NerExample], prodigy.Report]:
    """A run's labelled NER sentences as tokens + IOB2 tags (acquisition order; CoNLL:
    grouped by document), with a report: sentences read, written, and what was not (why).

    `conll`: tokens a CoNLL line cannot hold (whitespace inside, -DOCSTART-) are reported."""
    file = labeled_file(path)
    report = prodigy.Report(str(file))
    examples: list[prodigy.NerExample] = []
    for where, r in read_jsonl(file):
        if not ("tags" in r and "tokens" in r):
            if "label" in r:
                raise AlrunError(f"{where}: a text classification record; use to-textcat")
            raise AlrunError(f"{where}: no tokens/tags; not an NER run's labeled.jsonl")
        examples += _sentence_examples(r, where, conll, report)
    report.converted = len(examples)
    return (_conll_order(examples) if conll else examples), report


def labeled_textcat(path: Path) -> tuple[list[prodigy.TextcatExample], prodigy.Report]:
    """A multiclass run's labelled documents as text + label, with a report."""
    file = labeled_file(path)
    report = prodigy.Report(str(file))
    examples = []
    for where, r in read_jsonl(file):
        report.read += 1
        if "tags" in r:
            raise AlrunError(f"{where}: an NER record; export it with to-iob or to-conll")
        if not isinstance(r.get("text"), str) or "label" not in r:
            report.add("errors", "no text and label", _line(where))
            continue
        meta: dict[str, Any] = {k: r[k] for k in ("id", "index", "round") if k in r}
        examples.append(
            prodigy.TextcatExample(_line(where), r["text"], str(r["label"]), meta, where)
        )
    report.converted = len(examples)
    return examples, report


# --------------------------------------------------------------------------- to Prodigy


def _conll_tasks(path: Path) -> list[Task]:
    """A CoNLL file -> one task per sentence, meta = document, sentence and its line."""
    return [
        prodigy.ner_task(sent[1], sent[2], {"doc": doc_id, "sentence": k, "source": sent[0]})
        for doc_id, sents in read_conll(path)
        for k, sent in enumerate(sents)
    ]


def _iob_tasks(path: Path) -> list[Task]:
    """AutoTrain tokens/tags JSONL -> one task per line (IOB1 tags read as IOB2)."""
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
    """Text/label CSV or JSONL -> choice tasks over the label set (given, else the file's)."""
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


def _db_tasks(source: str, final: bool = False) -> list[Task]:
    """The web annotator's database -> one Prodigy task per answer (NER: per sentence).

    Undone answers are left out; rejected and ignored ones keep their answer, as Prodigy does.
    NER tasks carry the sentence's original text, its tokens' offsets and spans with character
    and token offsets; `meta.doc` and `meta.offset` (where the sentence starts in its document)
    place them back: doc_text[offset + start : offset + end] == text[start:end]. Answers to
    the evaluation sample (held out, never trained on) are marked `meta.eval: true`.

    With oracle.overlap >= 2, after every annotator's answer comes each item's adjudicated one
    (the label the loop trained on), marked `meta.adjudicated`: "review" (a reviewer's
    decision; `_annotator_id` is the reviewer) or "agreed" (`_annotator_id` "agreed:" and the
    sessions), with `versions`, the annotators' answers and their sessions (as Prodigy's
    review recipe writes). `final`: only the answer each item ended with.
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
        answers, decided = store.active(), store.active(decision=True)
        if not final:
            for a in answers:
                tasks += _answer_tasks(shown[(a["round"], a["index"])], a, labels)
        return tasks + _final_tasks(source, answers, decided, shown, labels, final)
    finally:
        store.close()


def _final_tasks(
    source: str,
    answers: list[dict[str, Any]],
    decisions: list[dict[str, Any]],
    shown: dict[tuple[int, int], dict[str, Any]],
    labels: list[str],
    final: bool,
) -> list[Task]:
    """Each item's final answer: with several annotators the adjudicated one (a reviewer's
    decision, or the answer they agreed on), marked; a lone answer only with `final`."""
    from alrun.agreement import agree, by_item, versions

    decided = {(d["round"], d["index"]): d for d in decisions}
    tasks, pending = [], 0
    for key, got in by_item(answers).items():
        kind = shown[key]["kind"]
        if key in decided:
            end, how, who = decided[key], "review", decided[key]["session"]
        elif len(got) == 1:
            if final:
                tasks += _answer_tasks(shown[key], got[0], labels)
            continue
        elif agree(got, kind):
            end, how = got[0], "agreed"
            who = "agreed:" + "+".join(a["session"] for a in got)
        else:
            pending += 1  # still waiting for a reviewer
            continue
        said = versions(got, kind)
        tasks += [
            {**t, "_annotator_id": who, "_session_id": who, "versions": said}
            for t in _answer_tasks(shown[key], end, labels, {"adjudicated": how})
        ]
    if pending:
        print(
            f"{source}: {pending} items wait for a reviewer (their annotators disagree): "
            "no adjudicated answer for them yet",
            file=sys.stderr,
        )
    return tasks


def _answer_tasks(
    t: dict[str, Any],
    a: dict[str, Any],
    labels: list[str],
    extra_meta: dict[str, Any] | None = None,
) -> list[Task]:
    """One stored answer `a` to the shown task `t` -> its Prodigy task(s)."""
    from alrun.web.store import EVAL_ROUND

    who = {"_annotator_id": a["session"], "_session_id": a["session"]}
    meta = {"id": a["item_id"], "round": a["round"], "index": a["index"], **(extra_meta or {})}
    if a["round"] == EVAL_ROUND:
        meta["eval"] = True
    if t["kind"] == "multiclass":
        task = prodigy.textcat_task(t["text"], a["label"] or "", labels, meta)
        task["accept"] = [a["label"]] if a["label"] else []
        return [{**task, "answer": a["answer"], **who}]
    out = []
    doc = t.get("doc_id", a["item_id"])
    for k, sent in enumerate(t["sentences"]):
        spans = [  # start/end: the tokens' offsets, computed by the server
            {key: v for key, v in sp.items() if key != "sentence"}
            for sp in a["spans"] or []
            if sp["sentence"] == k
        ]
        extra = {"doc": doc, "offset": sent["offset"]} if "offset" in sent else {}
        if len(t["sentences"]) > 1:
            extra |= {"doc": doc, "sentence": k}
        out.append(
            {
                "text": sent["text"],
                "tokens": sent["tokens"],
                "spans": spans,
                "answer": a["answer"],
                "meta": {**meta, **extra},
                **who,
            }
        )
    return out


def _source_format(source: str) -> str:
    """What `to-prodigy --from auto` reads `source` as: by URL, folder, name, suffix, content."""
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


def _to_prodigy(args: argparse.Namespace) -> int:
    """`to-prodigy`: any supported source -> Prodigy tasks (a bad record stops it: exit 2)."""
    src = Path(args.input)
    fmt = args.source if args.source != "auto" else _source_format(args.input)
    labels = args.labels.split(",") if args.labels else None
    makers: dict[str, Callable[[], list[Task]]] = {
        "labeled": lambda: _labeled_tasks(src, labels),
        "conll": lambda: _conll_tasks(src),
        "iob": lambda: _iob_tasks(src),
        "textcat": lambda: _textcat_tasks(src, args.text_field, args.label_field, labels),
        "db": lambda: _db_tasks(args.input, args.final),
    }
    if args.final and fmt != "db":
        raise AlrunError(f"--final reads the web annotator's database (--from db), not {fmt}")
    if fmt != "db" and not src.exists():
        raise AlrunError(f"input not found: {src}")
    tasks = makers[fmt]()
    _write(args.output, _jsonl(tasks))
    print(f"{args.input}: {len(tasks)} Prodigy tasks written ({fmt})", file=sys.stderr)
    return 0


def _from_run(args: argparse.Namespace) -> tuple[str, prodigy.Report, str, str]:
    """`to-iob` / `to-conll` / `to-textcat` from a run: (body, report, a line to add to the
    report, the fix to suggest when it fails)."""
    src = Path(args.input)
    if args.command == "to-textcat":
        cats, report = labeled_textcat(src)
        return to_textcat(cats, args.output), report, "", "fix those lines of labeled.jsonl"
    conll = args.command == "to-conll"
    sents, report = labeled_ner(src, conll)
    body = to_conll(sents) if conll else to_iob(sents)
    n = sum(len(entities(e.tags)) for e in sents)
    note = f"\n  spans: {n}, every span of the {len(sents)} sentences converted kept as tags"
    fix = "fix those lines" + (", or export with to-iob (JSONL holds any token)" if conll else "")
    return body, report, note, fix


def _from_prodigy(args: argparse.Namespace) -> tuple[str, prodigy.Report, str, str]:
    """`prodigy-to-*`: (body, report, no extra line, the fix to suggest when it fails)."""
    src = Path(args.input)
    if args.command == "prodigy-to-textcat":
        labels = args.labels.split(",") if args.labels else None
        cats, report = prodigy.read_textcat(src, labels)
        return to_textcat(cats, args.output), report, "", "fix those lines"
    spans, report = prodigy.read_ner(src, args.alignment, args.tokenizer)
    body = to_iob(spans) if args.command == "prodigy-to-iob" else to_conll(spans)
    fix = (
        "fix those lines, or pass --alignment contract|expand to snap spans to tokens"
        if report.skipped and args.alignment == "strict"
        else "fix those lines"
    )
    return body, report, "", fix


def _convert(args: argparse.Namespace) -> int:
    """Run one command; exit 1 with nothing written where its report says it failed."""
    if args.command == "to-prodigy":
        return _to_prodigy(args)
    make = _from_prodigy if args.command.startswith("prodigy-to-") else _from_run
    body, report, note, fix = make(args)
    print(report.text() + note, file=sys.stderr)
    if report.failed(getattr(args, "alignment", "strict")):
        print(f"alrun-convert: nothing written to {args.output}: {fix}", file=sys.stderr)
        return 1
    _write(args.output, body)
    return 0


def _run_commands(sub: Any) -> None:
    """`to-iob`, `to-conll`, `to-textcat`: a run's labelled items, in one step."""
    for name, help_ in (
        ("to-iob", 'a run\'s labelled NER sentences -> AutoTrain {"tokens", "tags"} JSONL'),
        ("to-conll", "a run's labelled NER sentences -> CoNLL, -DOCSTART- between documents"),
        ("to-textcat", "a multiclass run's labelled documents -> AutoTrain text,target"),
    ):
        s = sub.add_parser(name, help=help_)
        s.add_argument("input", help="a run folder, or its labeled.jsonl")
        s.add_argument(
            "output", help=".csv/.tsv for CSV, else JSONL" if "textcat" in name else None
        )


def _to_prodigy_command(sub: Any) -> None:
    """`to-prodigy`: any supported source -> Prodigy JSONL."""
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
    s.add_argument(
        "--final",
        action="store_true",
        help="db with oracle.overlap >= 2: only each item's final answer (the reviewer's "
        "decision or the annotators' agreed one), not every annotator's",
    )


def parser() -> argparse.ArgumentParser:
    """The command line (`alrun-convert --help`): one subcommand per conversion."""
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
    _run_commands(sub)
    _to_prodigy_command(sub)
    return p


def main(argv: Sequence[str] | None = None) -> None:
    """Exit 0 converted, 1 not converted (the report says why), 2 a bad file or argument."""
    args = parser().parse_args(argv)
    try:
        code = _convert(args)
    except AlrunError as e:
        print(f"alrun-convert: error: {e}", file=sys.stderr)
        code = 2
    sys.exit(code)


if __name__ == "__main__":
    main()
