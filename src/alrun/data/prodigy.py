"""Prodigy JSONL in and out: tokens, spans, answers, duplicates, and what was not converted.

Reading follows what Prodigy's answers mean (documented in the README):
- `ignore`: not data. `reject` on an NER task: not gold (the annotator said the spans are
  wrong, not which are right). `reject` on a binary text label: a negative for that label.
  A task with no `answer` counts as accepted, as `prodigy db-in` assumes.
- Several annotations of one input (the same `_input_hash`) are merged when they agree and
  skipped, with every line named, when they conflict: never counted twice. Lines without
  `_input_hash` (files not exported by Prodigy) are separate inputs; alrun invents no hashes.
- A span whose edges are not token edges is handled by `alignment`: strict (skip the example),
  contract (keep the tokens wholly inside) or expand (take every token it touches), the
  modes of spaCy's `Doc.char_span`. Overlapping spans are an error in every mode.
Every example that is not converted is listed, by reason and line, in a Report.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alrun.data.records import read_jsonl
from alrun.data.tags import spans_from_tags, spans_to_tags, to_iob2
from alrun.errors import AlrunError

if TYPE_CHECKING:
    from omegaconf import DictConfig

log = logging.getLogger("alrun.data")  # the package's logger, as before it was split

ALIGNMENTS = ("strict", "contract", "expand")
ANSWERS = ("accept", "reject", "ignore")


# --------------------------------------------------------------------------- tokens and spans


@cache
def load_nlp(name: str) -> Any:
    """The spaCy pipeline `name` (blank:<lang> or an installed one), loaded once per process:
    loading is slow and every tokenisation in a run uses the same one. Do not mutate it."""
    import spacy

    try:
        return spacy.blank(name[6:]) if name.startswith("blank:") else spacy.load(name)
    except (OSError, ImportError, KeyError) as e:
        raise AlrunError(
            f"tokenizer {name!r} could not be loaded ({e}); use blank:<lang> (e.g. blank:en) "
            "or the name of an installed spaCy pipeline"
        ) from e


def tokenize(text: str, tokenizer: str = "blank:en") -> list[dict[str, Any]]:
    """Prodigy token dicts from a spaCy tokenizer; whitespace tokens are dropped (no entity
    starts or ends on one, and CoNLL/IOB files cannot hold them)."""
    doc = load_nlp(tokenizer).make_doc(text)
    toks = [t for t in doc if not t.is_space]
    return [
        {
            "text": t.text,
            "start": t.idx,
            "end": t.idx + len(t.text),
            "id": i,
            "ws": text[t.idx + len(t.text) : t.idx + len(t.text) + 1].isspace(),
        }
        for i, t in enumerate(toks)
    ]


def tokens_from_words(words: Sequence[str]) -> tuple[str, list[dict[str, Any]]]:
    """Pre-tokenised words (CoNLL, IOB) -> text joined by single spaces + Prodigy tokens."""
    tokens, pos = [], 0
    for i, w in enumerate(words):
        tokens.append(
            {"text": w, "start": pos, "end": pos + len(w), "id": i, "ws": i < len(words) - 1}
        )
        pos += len(w) + 1
    return " ".join(words), tokens


def align(
    tokens: Sequence[dict[str, Any]], start: int, end: int, mode: str
) -> tuple[int, int] | None:
    """Character span -> (first token, last token inclusive), or None when it cannot align."""
    if mode == "strict":
        first = [i for i, t in enumerate(tokens) if t["start"] == start]
        last = [i for i, t in enumerate(tokens) if t["end"] == end]
        return (first[0], last[0]) if first and last and first[0] <= last[0] else None
    if mode == "contract":
        inside = [i for i, t in enumerate(tokens) if t["start"] >= start and t["end"] <= end]
    else:  # expand
        inside = [i for i, t in enumerate(tokens) if t["start"] < end and t["end"] > start]
    return (inside[0], inside[-1]) if inside else None


def ner_task(
    words: Sequence[str], tags: Sequence[str], meta: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A Prodigy NER task (what `ner.manual` saves) from words and their IOB tags."""
    text, tokens = tokens_from_words(words)
    task: dict[str, Any] = {"text": text, "tokens": tokens, "spans": spans_from_tags(tokens, tags)}
    task["answer"] = "accept"
    if meta:
        task["meta"] = meta
    return task


def textcat_task(
    text: str, label: str, label_names: Sequence[str], meta: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A Prodigy choice task (what `textcat.manual` saves for exclusive labels)."""
    task: dict[str, Any] = {
        "text": text,
        "options": [{"id": name, "text": name} for name in label_names],
        "accept": [label],
        "answer": "accept",
        "config": {"choice_style": "single"},
    }
    if meta:
        task["meta"] = meta
    return task


# --------------------------------------------------------------------------- the report


@dataclass
class Report:
    """What happened to every line: converted, not data by its answer, adjusted or skipped."""

    path: str
    read: int = 0
    converted: int = 0
    not_data: dict[str, list[int]] = field(default_factory=dict)  # by Prodigy's answer
    adjusted: dict[str, list[int]] = field(default_factory=dict)  # converted, spans moved
    skipped: dict[str, list[int]] = field(default_factory=dict)  # data lost: fix or accept
    errors: dict[str, list[int]] = field(default_factory=dict)  # invalid annotations

    def add(self, kind: str, reason: str, *lines: int) -> None:
        getattr(self, kind).setdefault(reason, []).extend(lines)

    def failed(self, alignment: str) -> bool:
        """Errors fail in every mode; anything skipped fails strict mode."""
        return bool(self.errors) or (alignment == "strict" and bool(self.skipped))

    def text(self) -> str:
        out = [f"{self.path}: {self.read} examples read, {self.converted} converted"]
        for kind, head in (
            ("errors", "error"),
            ("skipped", "skipped"),
            ("adjusted", "converted with spans adjusted"),
            ("not_data", "not data"),
        ):
            for reason, lines in getattr(self, kind).items():
                out.append(f"  {head}: {reason}: {len(lines)} ({_lines(lines)})")
        return "\n".join(out)


def _lines(lines: Sequence[int], limit: int = 20) -> str:
    shown = ", ".join(map(str, sorted(lines)[:limit]))
    more = f", ... {len(lines) - limit} more" if len(lines) > limit else ""
    return f"line{'s' if len(lines) > 1 else ''} {shown}{more}"


def check_report(report: Report, alignment: str | None) -> None:
    """Log what a Prodigy file gave; stop (naming every line) where the conversion failed.

    For datasets and seed sets read in a run (`alrun-convert` prints its reports itself).
    `alignment`: the NER span alignment applied, None for text classification (no spans).
    """
    if report.failed(alignment or "strict"):
        snap = report.skipped and alignment == "strict"
        raise AlrunError(
            f"{report.text()}\nfix those lines"
            + (", or set dataset.alignment=contract|expand" if snap else "")
        )
    lost = report.skipped or report.not_data or report.adjusted
    (log.warning if lost else log.info)("%s", report.text())


def dataset_options(cfg: DictConfig) -> tuple[str, str]:
    """(alignment, tokenizer) for NER tasks: dataset.alignment and dataset.tokenizer, defaulted."""
    return str(cfg.get("alignment") or "strict"), str(cfg.get("tokenizer") or "blank:en")


# --------------------------------------------------------------------------- reading


@dataclass
class NerExample:
    line: int
    text: str
    tokens: list[dict[str, Any]]
    tags: list[str]  # IOB2, one per token
    meta: dict[str, Any]
    key: Any  # _input_hash, else the line

    @property
    def words(self) -> list[str]:
        return [t["text"] for t in self.tokens]


@dataclass
class TextcatExample:
    line: int
    text: str
    label: str
    meta: dict[str, Any]
    key: Any


def _records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    if path.is_dir():
        raise AlrunError(f"{path} is a directory; name a Prodigy JSONL file")
    if not path.exists():
        raise AlrunError(f"Prodigy file not found: {path}")
    for where, rec in read_jsonl(path):
        yield int(where.rsplit(" ", 1)[1]), rec


def _answer(rec: dict[str, Any], n: int, report: Report) -> str | None:
    """The answer, or None when the line is not data (reported)."""
    answer = rec.get("answer", "accept")
    if answer not in ANSWERS:
        report.add("skipped", f"answer {answer!r} is not accept, reject or ignore", n)
        return None
    if answer == "ignore":
        report.add("not_data", "answer ignore", n)
        return None
    text = rec.get("text")
    if not isinstance(text, str) or not text.strip():
        report.add("skipped", "no text", n)
        return None
    return answer


def _check_tokens(text: str, tokens: Any) -> list[dict[str, Any]] | None:
    """A task's tokens with `id` and `ws` filled in, or None when they do not match the text.

    Older Prodigy versions export tokens without `ws`; it follows from the offsets (a gap
    before the next token, or whitespace after the last), so the text can be rebuilt."""
    if not isinstance(tokens, list):
        return None
    out = []
    for i, t in enumerate(tokens):
        if not isinstance(t, dict) or not {"text", "start", "end"} <= t.keys():
            return None
        if text[t["start"] : t["end"]] != t["text"]:
            return None
        out.append({**t, "id": t.get("id", i)})
    for i, t in enumerate(out):
        if "ws" not in t:
            after = out[i + 1]["start"] if i + 1 < len(out) else None
            t["ws"] = after > t["end"] if after is not None else text[t["end"] :][:1].isspace()
    return out


def _ner_spans(
    rec: dict[str, Any], tokens: list[dict[str, Any]], alignment: str, n: int, report: Report
) -> list[tuple[int, int, str]] | None:
    """Aligned (first, last, label) spans, or None when the example cannot be converted."""
    spans = rec.get("spans") or []
    out, moved = [], False
    for s in spans:
        label = s.get("label") if isinstance(s, dict) else None
        if not label:
            report.add("skipped", "span without a label", n)
            return None
        if "start" in s and "end" in s:
            start, end = s["start"], s["end"]
            if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end):
                report.add("skipped", "span offsets are not 0 <= start < end", n)
                return None
            if end > len(rec["text"]):
                report.add("skipped", "span ends after the text", n)
                return None
            got = align(tokens, start, end, alignment)
            if got is None:
                reason = (
                    "span edge inside a token (alignment=strict)"
                    if alignment == "strict"
                    else f"span covers no whole token (alignment={alignment})"
                )
                report.add("skipped", reason, n)
                return None
            moved = moved or (tokens[got[0]]["start"], tokens[got[1]]["end"]) != (start, end)
        elif "token_start" in s and "token_end" in s:
            got = (s["token_start"], s["token_end"])
            if not 0 <= got[0] <= got[1] < len(tokens):
                report.add("skipped", "span token_start/token_end outside the tokens", n)
                return None
        else:
            report.add("skipped", "span without start/end or token_start/token_end", n)
            return None
        out.append((got[0], got[1], str(label)))
    out.sort()
    for (_, b1, _), (a2, _, _) in pairwise(out):
        if a2 <= b1:
            report.add("errors", "overlapping spans (an entity tag scheme cannot hold them)", n)
            return None
    if moved:
        report.add("adjusted", f"span edges moved to token edges (alignment={alignment})", n)
    return out


def read_ner(
    path: Path, alignment: str = "strict", tokenizer: str = "blank:en"
) -> tuple[list[NerExample], Report]:
    """Accepted NER tasks as tokens + IOB2 tags (see the module docstring for the rules)."""
    if alignment not in ALIGNMENTS:
        raise AlrunError(f"alignment={alignment!r}; choose one of {', '.join(ALIGNMENTS)}")
    report = Report(str(path))
    by_key: dict[Any, list[NerExample]] = {}
    for n, rec in _records(path):
        report.read += 1
        ex = _ner_example(path, n, rec, alignment, tokenizer, report)
        if ex is not None:
            by_key.setdefault(ex.key, []).append(ex)
    examples = _merge_ner(by_key.values(), report)
    examples.sort(key=lambda e: e.line)
    report.converted = len(examples)
    return examples, report


def _ner_example(
    path: Path, n: int, rec: dict[str, Any], alignment: str, tokenizer: str, report: Report
) -> NerExample | None:
    """Line `n` as tokens + IOB2 tags; None (reported) when it is not data or cannot convert."""
    answer = _answer(rec, n, report)
    if answer is None:
        return None
    if answer == "reject":
        report.add("not_data", "answer reject (a rejected NER task is not gold)", n)
        return None
    text = rec["text"]
    if "tokens" in rec:
        tokens = _check_tokens(text, rec["tokens"])
        if tokens is None:
            report.add("skipped", "tokens without text/start/end matching the text", n)
            return None
    else:
        tokens = tokenize(text, tokenizer)
    if not tokens:
        report.add("skipped", "no tokens", n)
        return None
    spans = _ner_spans(rec, tokens, alignment, n, report)
    if spans is None:
        return None
    key = rec.get("_input_hash", ("line", n))
    tags = spans_to_tags(len(tokens), spans)
    keep = [i for i, t in enumerate(tokens) if t["text"].strip()]
    if len(keep) < len(tokens):  # Prodigy keeps spaCy's whitespace tokens; IOB cannot
        tokens = [{**tokens[i], "id": k} for k, i in enumerate(keep)]
        tags = to_iob2([tags[i] for i in keep], f"{path} line {n}")
    return NerExample(n, text, tokens, tags, rec.get("meta") or {}, key)


def _merge_ner(groups: Iterable[list[NerExample]], report: Report) -> list[NerExample]:
    """One example per input: identical annotations merge, differing ones are all skipped."""
    examples = []
    for group in groups:
        first = group[0]
        if all(g.words == first.words and g.tags == first.tags for g in group):
            examples.append(first)
            if len(group) > 1:
                report.add(
                    "not_data",
                    "same input annotated again, identically (merged into its first line)",
                    *(g.line for g in group[1:]),
                )
        else:
            report.add(
                "skipped",
                "same input annotated differently (conflict: resolve with prodigy review)",
                *(g.line for g in group),
            )
    return examples


def read_textcat(
    path: Path, labels: Sequence[str] | None = None
) -> tuple[list[TextcatExample], Report]:
    """One label per accepted input, from `options` + `accept` or a binary `label` + answer.

    Rejected binary labels are negatives: with `labels` known, rejecting every label but one
    implies that one; otherwise an input with only negatives is no multiclass example.
    """
    report = Report(str(path))
    pos: dict[Any, dict[str, list[int]]] = {}
    neg: dict[Any, dict[str, list[int]]] = {}
    first: dict[Any, tuple[int, str, dict[str, Any]]] = {}
    seen_labels: dict[str, None] = {}
    for n, rec in _records(path):
        report.read += 1
        answer = _answer(rec, n, report)
        if answer is None:
            continue
        key = rec.get("_input_hash", ("line", n))
        vote = _textcat_vote(rec, n, answer, report, seen_labels)
        if vote is None:
            continue
        label, accepted = vote
        seen_labels.setdefault(label, None)
        (pos if accepted else neg).setdefault(key, {}).setdefault(label, []).append(n)
        first.setdefault(key, (n, rec["text"], rec.get("meta") or {}))
    names = list(labels) if labels else list(seen_labels)
    examples = _textcat_examples(first, pos, neg, names, report)
    examples.sort(key=lambda e: e.line)
    report.converted = len(examples)
    return examples, report


def _textcat_vote(
    rec: dict[str, Any], n: int, answer: str, report: Report, seen_labels: dict[str, None]
) -> tuple[str, bool] | None:
    """(label, accepted) of one line; None (reported) when it gives no label.

    A choice task's options join `seen_labels` even when the line gives no label."""
    if "options" in rec:
        for o in rec["options"] or []:
            if isinstance(o, dict) and "id" in o:
                seen_labels.setdefault(str(o["id"]), None)
        if answer == "reject":
            report.add("not_data", "answer reject on a choice task (not gold)", n)
            return None
        chosen = [str(x) for x in rec.get("accept") or []]
        if len(chosen) != 1:
            report.add(
                "skipped",
                f"{'no option' if not chosen else 'several options'} accepted "
                "(multiclass needs exactly one)",
                n,
            )
            return None
        return chosen[0], True
    if rec.get("label") is not None:
        return str(rec["label"]), answer == "accept"
    report.add("skipped", "neither `label` nor `options`", n)
    return None


def _textcat_examples(
    first: dict[Any, tuple[int, str, dict[str, Any]]],
    pos: dict[Any, dict[str, list[int]]],
    neg: dict[Any, dict[str, list[int]]],
    names: Sequence[str],
    report: Report,
) -> list[TextcatExample]:
    """One example per input with a single label (given, or implied by rejecting the others)."""
    examples = []
    for key, (line, text, meta) in first.items():
        p, ng = pos.get(key, {}), neg.get(key, {})
        lines = sorted({x for d in (p, ng) for ls in d.values() for x in ls})
        if len(p) > 1 or set(p) & set(ng):
            report.add(
                "skipped",
                "same input given different labels (conflict: resolve with prodigy review)",
                *lines,
            )
            continue
        if p:
            label = next(iter(p))
            extra = [x for x in lines if x != min(p[label])]
            if extra:
                report.add("not_data", "same input annotated again (merged)", *extra)
            line = min(p[label])
        else:
            rest = [x for x in names if x not in ng]
            if len(rest) != 1:
                report.add(
                    "not_data", "only rejected labels (negatives, no positive label)", *lines
                )
                continue
            label = rest[0]
            report.add("adjusted", "label implied: every other label was rejected", *lines)
        examples.append(TextcatExample(line, text, label, meta, key))
    return examples
