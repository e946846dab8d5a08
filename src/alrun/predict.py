"""`alrun-predict RUN_DIR`: the run's kept model labels new texts as Prodigy pre-annotations.

    alrun-predict outputs/runs/DATE/TIME < texts.jsonl > predictions.jsonl

Input: JSONL, one object per line with a text field; other fields (`meta`, `_input_hash`, ids)
pass through. Output: one Prodigy task per input line, in order, without an `answer`:
- multiclass: a `textcat.manual` choice task, the best label in `accept`, the probabilities in
  `meta.score` / `meta.scores`;
- ner: an `ner.manual` task, tokens from the run's spaCy tokenizer and predicted spans, each
  with `score` (the mean probability of its tokens' tags); `meta.score` is the mean over tokens.
`_task_hash` is dropped (the content changed: Prodigy recomputes it), `answer` too.
Only JSONL goes to stdout; the log and the progress bar go to stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np

from alrun.errors import AlrunError

log = logging.getLogger("alrun.predict")

DROPPED = ("answer", "_task_hash")  # a prediction is no answer; the task's content changed
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


def _base(rec: dict[str, Any], text: str, task: str) -> dict[str, Any]:
    out = {k: v for k, v in rec.items() if k not in DROPPED and k not in OUTPUT_KEYS[task]}
    return {"text": text, **out}


def multiclass_tasks(
    model: Any, meta: dict[str, Any], texts: Sequence[str], recs: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
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


def ner_tasks(
    model: Any, meta: dict[str, Any], texts: Sequence[str], recs: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """One sentence per text: tokens from the run's tokenizer, tags decoded like `Ner.decode`."""
    from alrun.data.prodigy import tokenize
    from alrun.data.tags import spans_from_tags

    names = list(meta["label_names"])
    tokenizer = meta.get("tokenizer") or "blank:en"
    tokens = [tokenize(text, tokenizer) for text in texts]
    todo = [i for i, toks in enumerate(tokens) if toks]
    preds = model.predict([[t["text"] for t in tokens[i]] for i in todo]) if todo else None
    paths: dict[int, np.ndarray] = {}
    conf: dict[int, np.ndarray] = {}  # probability of the decoded tag, per token
    if preds is not None:
        path = preds.best if preds.best is not None else preds.probs.argmax(axis=2)
        for row, i in enumerate(todo):
            n = len(tokens[i])
            paths[i] = path[row, :n]
            conf[i] = preds.probs[row, np.arange(n), paths[i]].astype(np.float64)
    out = []
    for i, (text, rec, toks) in enumerate(zip(texts, recs, tokens, strict=True)):
        spans = []
        if i in paths:
            for s in spans_from_tags(toks, [names[k] for k in paths[i]]):
                score = conf[i][s["token_start"] : s["token_end"] + 1].mean()
                spans.append({**s, "text": text[s["start"] : s["end"]], "score": float(score)})
        task_meta = {**(rec.get("meta") or {})}
        if i in conf:
            task_meta["score"] = float(conf[i].mean())
        out.append({**_base(rec, text, "ner"), "tokens": toks, "spans": spans, "meta": task_meta})
    return out


def predict(
    run_dir: Path,
    inp: IO[Any],
    name: str,
    write: Any,
    text_field: str = "text",
    batch_size: int = 64,
    cache_dir: Path = Path(".cache/alrun"),
) -> int:
    """Label every input line; `write(line)` gets each output JSON line. Returns the count."""
    from alrun.models import load_model
    from alrun.progress import progress_bar

    if batch_size < 1:
        raise AlrunError(f"--batch-size {batch_size}: give a positive number")
    folder = model_dir(run_dir)
    # every line is checked before the model loads: a bad line fails fast, with no output
    lines = list(read_inputs(inp, name, text_field))
    try:
        model, meta = load_model(folder, cache_dir)
    except (OSError, ValueError, KeyError) as e:
        raise AlrunError(f"could not load the model in {folder}: {e}; save it again") from e
    task = meta.get("task")
    if task not in OUTPUT_KEYS:
        raise AlrunError(f"{folder}: unknown task {task!r} in its metadata (multiclass or ner)")
    make = multiclass_tasks if task == "multiclass" else ner_tasks
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
        for start in range(0, len(lines), batch_size):
            batch = lines[start : start + batch_size]
            texts = [text for _, text, _ in batch]
            for out in make(model, meta, texts, [rec for _, _, rec in batch]):
                write(json.dumps(out, ensure_ascii=False) + "\n")
            bar(len(batch))
    return len(lines)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="alrun-predict",
        description="Label texts with a finished run's kept model; writes Prodigy tasks "
        "(textcat choice or NER spans) as JSONL, usable as pre-annotations.",
        epilog="example: alrun-predict outputs/runs/DATE/TIME < texts.jsonl > predictions.jsonl",
    )
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a run folder, or its model/")
    p.add_argument("-i", "--input", type=Path, help="JSONL input (default: stdin)")
    p.add_argument("-o", "--output", type=Path, help="JSONL output (default: stdout)")
    p.add_argument("--text-field", default="text", help="input field with the text (text)")
    p.add_argument("--batch-size", type=int, default=64, help="texts per model call (64)")
    p.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(os.environ.get("ALRUN_CACHE_DIR", ".cache/alrun")),
        help="alrun's cache folder (default: $ALRUN_CACHE_DIR or .cache/alrun)",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="[%(asctime)s][%(name)s] %(message)s"
    )
    try:
        if args.input is not None and not args.input.is_file():
            raise AlrunError(f"input file not found: {args.input}")
        inp = args.input.open("rb") if args.input else getattr(sys.stdin, "buffer", sys.stdin)
        name = str(args.input) if args.input else "<stdin>"
        try:
            if args.output is None:
                out = getattr(sys.stdout, "buffer", None)
                write = (lambda s: out.write(s.encode("utf-8"))) if out else sys.stdout.write
                n = predict(
                    args.run_dir, inp, name, write, args.text_field, args.batch_size, args.cache_dir
                )
                sys.stdout.flush()
            else:
                n = _to_file(args, inp, name)
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


def _to_file(args: argparse.Namespace, inp: IO[Any], name: str) -> int:
    """Written to a temporary name and renamed: no half-written file after an error."""
    out_path: Path = args.output
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".tmp")
    try:
        with tmp.open("w", encoding="utf-8") as f:
            n = predict(
                args.run_dir, inp, name, f.write, args.text_field, args.batch_size, args.cache_dir
            )
        os.replace(tmp, out_path)
    finally:
        tmp.unlink(missing_ok=True)
    return n


if __name__ == "__main__":
    sys.exit(main())
