"""Token-labelled documents (NER) from CoNLL, tokens/tags JSONL and Prodigy files, their
entity types, and the label scheme a run learns from them."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from alrun.data.prodigy import check_report, dataset_options, read_ner
from alrun.data.records import JSONL_SUFFIXES, check_file, find_reader, read_jsonl, register_reader
from alrun.data.tags import check_tag, to_iob2
from alrun.errors import AlrunError

# A sentence: where it starts (for errors), its tokens and their IOB2 tags; from a file that
# has the original text (Prodigy tasks) also that text and its tokens' (start, end) in it.
Original = tuple[str, list[tuple[int, int]]]
Sentence = tuple[str, list[str], list[str]] | tuple[str, list[str], list[str], Original]
# A raw document: its id and its sentences.
RawDoc = tuple[str, list[Sentence]]


class _ConllReader:
    """One CoNLL file being read line by line: the documents so far and the open sentence."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.docs: list[RawDoc] = []
        self.sents: list[Sentence] = []
        self.tokens: list[str] = []
        self.tags: list[str] = []
        self.start = 0
        self.width = 0  # columns of the first token line; every token line must have as many
        self.width_line = 0

    def line(self, n: int, line: str) -> None:
        cols = line.split()
        if not cols:
            self.end_sentence()
        elif cols[0] == "-DOCSTART-":
            self.end_document()
        else:
            self.token(n, line, cols)

    def token(self, n: int, line: str, cols: list[str]) -> None:
        """A token line: same columns as the first one, token first and a valid tag last."""
        path = self.path
        if len(cols) < 2:
            raise AlrunError(f"{path} line {n}: expected `token tag` columns, got {line.strip()!r}")
        if not self.width:
            self.width, self.width_line = len(cols), n
        elif len(cols) != self.width:
            raise AlrunError(
                f"{path} line {n}: {len(cols)} columns, but line {self.width_line} has "
                f"{self.width}; every token line needs the same columns (token first, "
                "tag last, separated by spaces or tabs, no spaces inside a token)"
            )
        check_tag(cols[-1], f"{path} line {n}: tag {cols[-1]!r}")
        if not self.tokens:
            self.start = n
        self.tokens.append(cols[0])
        self.tags.append(cols[-1])

    def end_sentence(self) -> None:
        if self.tokens:
            where = f"{self.path} line {self.start}"
            self.sents.append((where, self.tokens, to_iob2(self.tags, where)))
        self.tokens, self.tags = [], []

    def end_document(self) -> None:
        self.end_sentence()
        if self.sents:
            self.docs.append((f"d{len(self.docs)}", self.sents))
        self.sents = []


def read_conll(path: Path) -> list[RawDoc]:
    """CoNLL columns (token first, tag last), blank lines between sentences, -DOCSTART-."""
    reader = _ConllReader(path)
    try:
        with path.open(encoding="utf-8") as f:
            for n, line in enumerate(f, start=1):
                reader.line(n, line)
    except UnicodeDecodeError as e:
        raise AlrunError(f"{path}: not UTF-8 ({e.reason}); re-save the file as UTF-8") from e
    reader.end_document()
    return reader.docs


def read_token_jsonl(cfg: DictConfig, path: Path) -> list[RawDoc]:
    """AutoTrain-style `{"tokens": [...], "tags": [...]}` lines; one sentence a line.

    Lines sharing `dataset.doc_field` (when set and present) form one document; otherwise
    every line is its own document.
    """
    tok_f, tag_f = cfg.get("tokens_field", "tokens"), cfg.get("tags_field", "tags")
    doc_f = cfg.get("doc_field")
    docs: dict[str, list[Sentence]] = {}
    for where, rec in read_jsonl(path):
        for key, what in ((tok_f, "tokens_field"), (tag_f, "tags_field")):
            if not isinstance(rec.get(key), list):
                raise AlrunError(
                    f"{where}: no list field {key!r} (fields: {', '.join(map(str, rec))}); "
                    f"set dataset.{what}"
                )
        tokens, tags = [str(t) for t in rec[tok_f]], [str(t) for t in rec[tag_f]]
        if len(tokens) != len(tags):
            raise AlrunError(
                f"{where}: {len(tokens)} tokens but {len(tags)} tags; every token needs one tag"
            )
        if not tokens:
            raise AlrunError(f"{where}: no tokens; remove or fix the record")
        doc = str(rec[doc_f]) if doc_f and doc_f in rec else where.split()[-1]
        docs.setdefault(doc, []).append((where, tokens, to_iob2(tags, where)))
    return list(docs.items())


def prodigy_docs(cfg: DictConfig, path: Path) -> list[RawDoc]:
    """Accepted NER tasks; consecutive tasks sharing meta.doc form one document, else each
    task is its own document (one sentence)."""
    alignment, tokenizer = dataset_options(cfg)
    examples, report = read_ner(path, alignment, tokenizer)
    check_report(report, alignment)
    docs: list[RawDoc] = []
    prev = None
    for e in examples:
        doc = e.meta.get("doc")
        offsets = [(t["start"], t["end"]) for t in e.tokens]
        sent: Sentence = (f"{path} line {e.line}", e.words, e.tags, (e.text, offsets))
        if doc is not None and doc == prev:
            docs[-1][1].append(sent)
        else:
            docs.append((str(doc) if doc is not None else f"line-{e.line}", [sent]))
        prev = doc
    return docs


def _conll_docs(cfg: DictConfig, path: Path) -> list[RawDoc]:
    return read_conll(path)


register_reader("conll", docs=_conll_docs)
register_reader("jsonl", docs=read_token_jsonl)
register_reader("prodigy", docs=prodigy_docs)


def read_docs(cfg: DictConfig, path: Path, key: str = "dataset.path") -> list[RawDoc]:
    """The documents of an NER file in `dataset.format` (auto: .jsonl etc. -> jsonl, else
    conll); `key`: the setting that names `path`, for errors."""
    check_file(path, "a CoNLL or JSONL file", key, (".conll", ".txt", ".iob", ".jsonl"))
    fmt = cfg.get("format", "auto")
    if fmt == "auto":
        fmt = "jsonl" if path.suffix.lower() in JSONL_SUFFIXES else "conll"
    read = find_reader(fmt, "docs")
    if read is None:
        raise AlrunError(
            f"dataset.format={fmt!r}: NER data is read from conll, jsonl or prodigy files"
        )
    docs = read(cfg, path)
    if not docs:
        raise AlrunError(
            f"{key}={path}: no sentences, the file is empty; fill it or point {key} at the "
            "right file"
        )
    return docs


def entity_types(docs: list[RawDoc]) -> list[str]:
    """Entity types in order of first appearance (the file's own order, not alphabetical)."""
    seen: dict[str, None] = {}
    for _, sents in docs:
        for sent in sents:
            for t in sent[2]:
                if t != "O":
                    seen.setdefault(t[2:], None)
    return list(seen)


def ner_label_scheme(cfg: DictConfig, docs: list[RawDoc], path: Path) -> dict[str, str]:
    """Source entity type -> learned type, from dataset.labels (subset) and dataset.label_map."""
    found = entity_types(docs)
    wanted = [str(x) for x in cfg.get("labels") or found]
    missing = [t for t in wanted if t not in found]
    if missing:
        raise AlrunError(
            f"dataset.labels lists {missing}, which never occur in {path} "
            f"(entity types there: {found}); fix dataset.labels"
        )
    label_map = {str(k): str(v) for k, v in (cfg.get("label_map") or {}).items()}
    unknown = [k for k in label_map if k not in wanted]
    if unknown:
        raise AlrunError(
            f"dataset.label_map renames {unknown}, which are not in dataset.labels {wanted}"
        )
    return {t: label_map.get(t, t) for t in wanted}
