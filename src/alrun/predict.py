"""`alrun-predict RUN_DIR`: the run's kept model labels new texts as Prodigy pre-annotations.

    alrun-predict outputs/runs/DATE/TIME < texts.jsonl > predictions.jsonl
    alrun-predict outputs/runs/DATE/TIME -i articles.csv --text-field Text -o predictions.jsonl

Input: JSONL, one object per line with a text field (other fields, `meta`, `_input_hash`, ids,
pass through); a .txt file, one document per non-blank line (meta.id line-N); or a CSV/TSV
file with a text column (meta.id from --id-field, else line-N). Texts are used byte for byte:
double spaces, tabs and newlines stay, so every offset points into the input's own text.
Output: one Prodigy task per input text, in order, without an `answer`:
- multiclass: a `textcat.manual` choice task, the best label in `accept`, the probabilities in
  `meta.score` / `meta.scores`;
- ner: an `ner.manual` task over the whole text: it is split into sentences as a raw-text pool
  is (spaCy, the run's tokenizer; --sentencizer), each sentence tagged, and the tokens and
  predicted spans carry character offsets into the text; each span has `score` (the mean
  probability of its tokens' tags), `meta.score` is the mean over tokens.
`_task_hash` is dropped (the content changed: Prodigy recomputes it), `answer` too.
Only JSONL goes to stdout; the log and the progress bar go to stderr.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from alrun.errors import AlrunError

log = logging.getLogger("alrun.predict")

DROPPED = ("answer", "_task_hash")  # a prediction is no answer; the task's content changed
FORMATS = ("auto", "jsonl", "csv", "tsv", "txt")
SENTENCIZERS = ("auto", "sentencizer", "none")
OUTPUT_KEYS = {
    "multiclass": ("text", "options", "accept", "config", "meta"),
    "ner": ("text", "tokens", "spans", "meta"),
}


def model_dir(run_dir: Path) -> Path:
    """RUN_DIR/model, or RUN_DIR itself when it is the model folder."""
    from alrun.models import MODEL_FILE

    if not run_dir.exists():
        raise AlrunError(f"{run_dir} not found; give a finished run's folder")
    for d in (run_dir / "model", run_dir):
        if (d / MODEL_FILE).is_file():
            return d
    raise AlrunError(
        f"{run_dir} holds no saved model (no model/{MODEL_FILE}); give the folder of a run "
        "that finished (alrun saves its kept model there at the end), or that model/ folder"
    )


def read_inputs(
    stream: IO[Any], name: str, text_field: str
) -> Iterator[tuple[int, str, dict[str, Any]]]:
    """(line number, text, record) for every non-blank line; errors name the line and fix."""
    from alrun.data import json_records

    for where, rec in json_records(stream, name):
        n = int(where.rsplit(" ", 1)[1])
        if text_field not in rec:
            raise AlrunError(
                f"{where}: no field {text_field!r} (fields: {', '.join(map(str, rec)) or 'none'}); "
                f"add it, or name the text field with --text-field"
            )
        text = rec[text_field]
        if not isinstance(text, str):
            raise AlrunError(
                f"{where}: field {text_field!r} is {type(text).__name__}, not a string; "
                "give the text as a JSON string"
            )
        if rec.get("meta") is not None and not isinstance(rec["meta"], dict):
            raise AlrunError(f"{where}: field 'meta' must be a JSON object (Prodigy's meta)")
        yield n, text, rec


@dataclass
class Options:
    """How inputs are read and tagged (the command line's options)."""

    text_field: str = "text"
    fmt: str = "jsonl"  # jsonl | csv | tsv | txt (auto is resolved by `input_format`)
    id_field: str | None = None  # CSV/TSV: the column giving meta.id
    sentencizer: str = "auto"  # NER: auto | sentencizer | none
    batch_size: int = 64
    cache_dir: Path = Path(".cache/alrun")


def input_format(fmt: str, path: Path | None) -> str:
    """--format, resolved: auto reads -i by its suffix (.csv, .tsv, .txt, else JSONL) and
    stdin as JSONL."""
    if fmt not in FORMATS:
        raise AlrunError(f"--format {fmt}: choose one of {', '.join(FORMATS)}")
    if fmt != "auto":
        return fmt
    suffix = path.suffix.lower() if path is not None else ""
    return {".csv": "csv", ".tsv": "tsv", ".txt": "txt"}.get(suffix, "jsonl")


def _decode(raw: bytes, name: str) -> str:
    """UTF-8 input, exactly (a leading byte-order mark is not text); the error names the line."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise AlrunError(
            f"{name} line {line}: not UTF-8 (byte 0x{raw[e.start]:02x}: {e.reason}); "
            "re-save the file as UTF-8"
        ) from e


def read_lines(stream: IO[Any], name: str) -> Iterator[tuple[int, str, dict[str, Any]]]:
    """A .txt input: one document per non-blank line, without its line end (\\n or \\r\\n);
    meta.id line-N, as a raw-text pool names the same line."""
    raw = stream.read()
    text = _decode(raw, name) if isinstance(raw, bytes) else raw
    lines = text.split("\n")  # not splitlines(): \v, \f, U+2028 ... stay inside the text
    for n, line in enumerate(lines, start=1):
        if n < len(lines):
            line = line.removesuffix("\r")
        if line.strip():
            yield n, line, {"meta": {"id": f"line-{n}"}}


def read_table(
    stream: IO[Any], name: str, opts: Options
) -> Iterator[tuple[int, str, dict[str, Any]]]:
    """A CSV/TSV input with a header: the text column (--text-field) byte for byte, quoted
    newlines included; meta.id from --id-field, else line-N (the record's first line)."""
    raw = stream.read()
    text = _decode(raw, name) if isinstance(raw, bytes) else raw
    reader = csv.DictReader(
        io.StringIO(text, newline=""), delimiter="\t" if opts.fmt == "tsv" else ","
    )
    start = 2
    try:
        for row in reader:
            for key, flag in ((opts.text_field, "--text-field"), (opts.id_field, "--id-field")):
                if key is not None and key not in row:
                    raise AlrunError(
                        f"{name} line {start}: no column {key!r} (columns: "
                        f"{', '.join(reader.fieldnames or []) or 'none'}); name it with {flag}"
                    )
            id_ = row[opts.id_field] if opts.id_field else f"line-{start}"
            yield start, row[opts.text_field] or "", {"meta": {"id": id_}}
            start = reader.line_num + 1
    except csv.Error as e:
        raise AlrunError(f"{name} line {start}: not valid CSV ({e}); fix its quoting") from e


def read_any(stream: IO[Any], name: str, opts: Options) -> list[tuple[int, str, dict[str, Any]]]:
    """Every input text with its line and the record its task is built on, in order."""
    if opts.fmt == "txt":
        return list(read_lines(stream, name))
    if opts.fmt in ("csv", "tsv"):
        return list(read_table(stream, name, opts))
    return list(read_inputs(stream, name, opts.text_field))


def _base(rec: dict[str, Any], text: str, task: str) -> dict[str, Any]:
    """The input record's own fields that pass through (not answers, not what we write)."""
    out = {k: v for k, v in rec.items() if k not in DROPPED and k not in OUTPUT_KEYS[task]}
    return {"text": text, **out}


def multiclass_tasks(
    model: Any, meta: dict[str, Any], texts: Sequence[str], recs: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """A choice task per text: the best label accepted, every label's probability in meta."""
    names = list(meta["label_names"])
    probs = model.predict(list(texts)).probs
    out = []
    for text, rec, p in zip(texts, recs, probs, strict=True):
        best = int(np.argmax(p))
        out.append(
            {
                **_base(rec, text, "multiclass"),
                "options": [{"id": name, "text": name} for name in names],
                "accept": [names[best]],
                "config": {"choice_style": "single"},
                "meta": {
                    **(rec.get("meta") or {}),
                    "score": float(p[best]),
                    "scores": {name: float(x) for name, x in zip(names, p, strict=True)},
                },
            }
        )
    return out


def sentence_tokens(
    texts: Sequence[str], tokenizer: str, sentencizer: str
) -> list[list[list[tuple[int, int]]]]:
    """Per text, its sentences' token (start, end) offsets into the text: split as a raw-text
    pool is split (so the model sees sentences like those it learnt from), or, with
    sentencizer none, the whole text as one sentence. Whitespace tokens are dropped."""
    from alrun.data import sentences_with_offsets
    from alrun.data.prodigy import tokenize

    if sentencizer not in SENTENCIZERS:
        raise AlrunError(f"--sentencizer {sentencizer}: choose one of {', '.join(SENTENCIZERS)}")
    if sentencizer == "none":
        out = []
        for text in texts:
            toks = [(t["start"], t["end"]) for t in tokenize(text, tokenizer)]
            out.append([toks] if toks else [])
        return out
    split = sentences_with_offsets(
        list(texts), tokenizer, None if sentencizer == "auto" else "sentencizer"
    )
    return [[toks for _, toks in sents] for sents in split]


def _tag(
    model: Any, texts: Sequence[str], sents: list[list[list[tuple[int, int]]]]
) -> list[list[tuple[np.ndarray, np.ndarray]]]:
    """Per text, per sentence: (decoded tag ids, probability of each decoded tag); one model
    call for every sentence of the batch. Decoded like `Ner.decode` (the best path, else
    the per-token argmax)."""
    flat = [(i, toks) for i, ss in enumerate(sents) for toks in ss]
    out: list[list[tuple[np.ndarray, np.ndarray]]] = [[] for _ in texts]
    if not flat:
        return out
    preds = model.predict([[texts[i][a:b] for a, b in toks] for i, toks in flat])
    path = preds.best if preds.best is not None else preds.probs.argmax(axis=2)
    for row, (i, toks) in enumerate(flat):
        n = len(toks)
        best = path[row, :n]
        out[i].append((best, preds.probs[row, np.arange(n), best].astype(np.float64)))
    return out


def ner_tasks(
    model: Any,
    meta: dict[str, Any],
    texts: Sequence[str],
    recs: Sequence[dict[str, Any]],
    sentencizer: str = "auto",
) -> list[dict[str, Any]]:
    """One task per text: its tokens (offsets into the text, ids across its sentences) and
    the spans predicted sentence by sentence, with character offsets into the text."""
    from alrun.data.tags import spans_from_tags

    names = list(meta["label_names"])
    sents = sentence_tokens(texts, meta.get("tokenizer") or "blank:en", sentencizer)
    tagged = _tag(model, texts, sents)
    out = []
    for text, rec, ss, preds in zip(texts, recs, sents, tagged, strict=True):
        tokens: list[dict[str, Any]] = []
        spans: list[dict[str, Any]] = []
        for toks, (best, conf) in zip(ss, preds, strict=True):
            base = len(tokens)
            sent = [
                {"text": text[a:b], "start": a, "end": b, "id": base + j}
                | {"ws": text[b : b + 1].isspace()}
                for j, (a, b) in enumerate(toks)
            ]
            tokens += sent
            for sp in spans_from_tags(sent, [names[k] for k in best]):
                score = float(conf[sp["token_start"] : sp["token_end"] + 1].mean())
                first, last = base + sp["token_start"], base + sp["token_end"]
                span = {**sp, "token_start": first, "token_end": last}
                spans.append({**span, "text": text[sp["start"] : sp["end"]], "score": score})
        task_meta = {**(rec.get("meta") or {})}
        if tokens:
            task_meta["score"] = float(np.concatenate([c for _, c in preds]).mean())
        out.append({**_base(rec, text, "ner"), "tokens": tokens, "spans": spans, "meta": task_meta})
    return out


def predict(run_dir: Path, inp: IO[Any], name: str, write: Any, opts: Options | None = None) -> int:
    """Label every input text; `write(line)` gets each output JSON line. Returns the count."""
    from alrun.models import load_model
    from alrun.progress import progress_bar

    opts = opts or Options()
    if opts.batch_size < 1:
        raise AlrunError(f"--batch-size {opts.batch_size}: give a positive number")
    folder = model_dir(run_dir)
    # every line is checked before the model loads: a bad line fails fast, with no output
    lines = read_any(inp, name, opts)
    try:
        model, meta = load_model(folder, opts.cache_dir)
    except (OSError, ValueError, KeyError) as e:
        raise AlrunError(f"could not load the model in {folder}: {e}; save it again") from e
    task = meta.get("task")
    if task not in OUTPUT_KEYS:
        raise AlrunError(f"{folder}: unknown task {task!r} in its metadata (multiclass or ner)")
    log.info(
        "%s model %s (round %s, %s labelled) from %s: %d texts",
        task,
        meta.get("candidate"),
        meta.get("round"),
        meta.get("labeled"),
        folder,
        len(lines),
    )
    with progress_bar(f"predicting {len(lines)} texts", len(lines)) as bar:
        for start in range(0, len(lines), opts.batch_size):
            batch = lines[start : start + opts.batch_size]
            texts = [text for _, text, _ in batch]
            recs = [rec for _, _, rec in batch]
            made = (
                multiclass_tasks(model, meta, texts, recs)
                if task == "multiclass"
                else ner_tasks(model, meta, texts, recs, opts.sentencizer)
            )
            for out in made:
                write(json.dumps(out, ensure_ascii=False) + "\n")
            bar(len(batch))
    return len(lines)


def _parser() -> argparse.ArgumentParser:
    """The command line (`alrun-predict --help`)."""
    p = argparse.ArgumentParser(
        prog="alrun-predict",
        description="Label texts with a finished run's kept model; writes Prodigy tasks "
        "(textcat choice or NER spans with character offsets into each text) as JSONL, "
        "usable as pre-annotations.",
        epilog="examples: alrun-predict outputs/runs/DATE/TIME < texts.jsonl > predictions.jsonl; "
        "alrun-predict RUN -i articles.csv --text-field Text -o predictions.jsonl",
    )
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a run folder, or its model/")
    p.add_argument(
        "-i", "--input", type=Path, help="JSONL, .txt (a document a line) or CSV (default: stdin)"
    )
    p.add_argument("-o", "--output", type=Path, help="JSONL output (default: stdout)")
    p.add_argument(
        "--format",
        choices=FORMATS,
        default="auto",
        help="input format; auto: by the suffix of -i (.csv, .tsv, .txt, else JSONL), stdin JSONL",
    )
    p.add_argument("--text-field", default="text", help="JSONL field / CSV column (text)")
    p.add_argument("--id-field", help="CSV column giving meta.id (default: line-N)")
    p.add_argument(
        "--sentencizer",
        choices=SENTENCIZERS,
        default="auto",
        help="NER: split texts into sentences with the tokenizer pipeline's parser or senter, "
        "else spaCy's rule-based sentencizer (auto, as dataset=raw_text does); always the "
        "rule-based one (sentencizer); or tag each text as one sentence (none)",
    )
    p.add_argument("--batch-size", type=int, default=64, help="texts per model call (64)")
    p.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(os.environ.get("ALRUN_CACHE_DIR", ".cache/alrun")),
        help="alrun's cache folder (default: $ALRUN_CACHE_DIR or .cache/alrun)",
    )
    return p


def _options(args: argparse.Namespace) -> Options:
    """The command line's reading and tagging options, the format resolved."""
    fmt = input_format(args.format, args.input)
    if args.id_field and fmt not in ("csv", "tsv"):
        raise AlrunError(
            f"--id-field names a CSV column; this input is read as {fmt} (JSONL records keep "
            "their own fields, .txt lines are line-N)"
        )
    return Options(
        text_field=args.text_field,
        fmt=fmt,
        id_field=args.id_field,
        sentencizer=args.sentencizer,
        batch_size=args.batch_size,
        cache_dir=args.cache_dir,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Exit 0 when every text is labelled; 2 on a bad input or run folder (nothing written)."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="[%(asctime)s][%(name)s] %(message)s"
    )
    try:
        if args.input is not None and not args.input.is_file():
            raise AlrunError(f"input file not found: {args.input}")
        opts = _options(args)
        inp = args.input.open("rb") if args.input else getattr(sys.stdin, "buffer", sys.stdin)
        name = str(args.input) if args.input else "<stdin>"
        try:
            if args.output is None:
                out = getattr(sys.stdout, "buffer", None)
                write = (lambda s: out.write(s.encode("utf-8"))) if out else sys.stdout.write
                n = predict(args.run_dir, inp, name, write, opts)
                sys.stdout.flush()
            else:
                n = _to_file(args, inp, name, opts)
        finally:
            if args.input:
                inp.close()
    except AlrunError as e:
        print(f"alrun-predict: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `alrun-predict RUN | head`: the reader left; not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    log.info("wrote %d tasks to %s", n, args.output or "<stdout>")
    return 0


def _to_file(args: argparse.Namespace, inp: IO[Any], name: str, opts: Options) -> int:
    """Written to a temporary name and renamed: no half-written file after an error."""
    out_path: Path = args.output
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".tmp")
    try:
        with tmp.open("w", encoding="utf-8") as f:
            n = predict(args.run_dir, inp, name, f.write, opts)
        os.replace(tmp, out_path)
    finally:
        tmp.unlink(missing_ok=True)
    return n


if __name__ == "__main__":
    sys.exit(main())
