"""Unlabelled text pools ("raw text") read byte for byte, and raw text split into sentences
and tokens with character offsets into it.

`read_texts` gives (id, text, where) for every document of a pool in one of the formats below;
texts are never stripped or re-encoded (CRLF inside a text stays CRLF), so offsets computed on
them point into the file's own text. `sentences_with_offsets` splits texts with spaCy.

Formats (`dataset.format`; auto detects them from the path):
- hf: a Hugging Face `save_to_disk` folder, text in `dataset.text_field`;
- txtdir: a folder of .txt files, one document per file, id = file stem;
- lines: a .txt file, one document per non-blank line, id line-N;
- csv (.csv/.tsv) and jsonl (.jsonl/.json/.ndjson): text in `dataset.text_field`;
- prodigy: a Prodigy source file (`{"text": ..., "meta": {"id": ...}}` per line).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from alrun.data.prodigy import load_nlp
from alrun.data.records import (
    JSONL_SUFFIXES,
    Record,
    check_file,
    decode_utf8,
    field_error,
    is_hf_folder,
    read_csv,
    read_hf,
    read_jsonl,
)
from alrun.errors import AlrunError

log = logging.getLogger("alrun.data")

RAW_FORMATS = ("auto", "hf", "txtdir", "lines", "csv", "jsonl", "prodigy")
SENTENCE_FACTORIES = ("parser", "beam_parser", "senter", "sentencizer")
BATCH_SIZE = 64

# (sentence (start, end), [token (start, end), ...]): absolute offsets into the document's text
Sentence = tuple[tuple[int, int], list[tuple[int, int]]]


# --------------------------------------------------------------------------- reading


def read_texts(
    dataset: DictConfig, path: Path, key: str = "dataset.path"
) -> list[tuple[str, str, str]]:
    """(id, text, where) of every document of an unlabelled pool, exact duplicates dropped.

    Active learning queries a pool nobody labelled yet; its texts must be kept exactly as in
    the file so that offsets (sentences, spans) written back point into the same characters.
    `dataset`: the dataset config node; `key`: the setting that names `path`, for errors.
    """
    fmt = raw_format(dataset, path, key)
    docs: list[tuple[str, str, str]] = []
    seen_ids: dict[str, tuple[str, str]] = {}  # id -> (where, text) of its first document
    seen_texts: set[str] = set()
    n_dup = 0
    for id_, text, where in _documents(dataset, path, fmt, key):
        if id_ in seen_ids and seen_ids[id_][1] != text:
            raise AlrunError(
                f"{where}: duplicate id {id_!r}, already the id of a different text at "
                f"{seen_ids[id_][0]}; give every document its own id"
                + (", or set dataset.id_field=null" if dataset.get("id_field") else "")
            )
        seen_ids.setdefault(id_, (where, text))
        if text in seen_texts:
            n_dup += 1
            continue
        seen_texts.add(text)
        docs.append((id_, text, where))
    if not docs:
        raise AlrunError(
            f"{key}={path}: no documents (format {fmt}); fill it or point {key} at the pool"
        )
    if n_dup:
        log.info("%s: dropped %d exact duplicate texts (first kept)", path, n_dup)
    return docs


def raw_format(dataset: DictConfig, path: Path, key: str = "dataset.path") -> str:
    """`dataset.format` for a raw pool, resolved from the path when auto; checks the path
    exists and fits the format, so a wrong setting fails before anything is read."""
    fmt = str(dataset.get("format", "auto") or "auto")
    if fmt not in RAW_FORMATS:
        raise AlrunError(
            f"dataset.format={fmt!r} cannot read a raw text pool; use one of "
            f"{', '.join(RAW_FORMATS)}"
        )
    if fmt == "hf" and not path.exists():
        return fmt  # maybe a hub name; read_hf says what went wrong
    if not path.exists():
        raise AlrunError(
            f"raw text pool not found: {path}. Set {key} (absolute, or relative to the data "
            "directory: data_dir=... or the ALRUN_DATA_DIR environment variable)"
        )
    if path.is_dir():
        return _folder_format(path, fmt, key)
    if fmt in ("hf", "txtdir"):
        raise AlrunError(
            f"{key}={path} is a file; dataset.format={fmt} reads a folder "
            f"({'a save_to_disk dataset' if fmt == 'hf' else 'of .txt files'}); "
            "set dataset.format=auto to read the file by its suffix"
        )
    if fmt != "auto":
        return fmt
    suffix = path.suffix.lower()
    by_suffix = {".txt": "lines", ".csv": "csv", ".tsv": "csv"} | dict.fromkeys(
        JSONL_SUFFIXES, "jsonl"
    )
    if suffix not in by_suffix:
        raise AlrunError(
            f"{key}={path}: cannot tell the format from the suffix {suffix or '(none)'!r}; "
            "set dataset.format=lines|csv|jsonl|prodigy, or rename the file (.txt: one "
            "document per line, .csv, .jsonl)"
        )
    return by_suffix[suffix]


def _folder_format(path: Path, fmt: str, key: str) -> str:
    """hf for a save_to_disk folder, txtdir for a folder of .txt files; else a clear error."""
    if fmt in ("auto", "hf") and is_hf_folder(path):
        return "hf"
    if fmt in ("auto", "txtdir") and _txt_files(path):
        return "txtdir"
    if fmt in ("csv", "jsonl", "prodigy", "lines"):
        like = {"csv": (".csv", ".tsv"), "lines": (".txt",)}.get(fmt, JSONL_SUFFIXES)
        check_file(path, f"a {fmt} file", key, like)  # a folder: names the files in it
    if fmt == "hf":
        raise AlrunError(
            f"{key}={path}: not a Hugging Face dataset folder (no dataset_info.json, "
            "dataset_dict.json or state.json: write it with save_to_disk)"
            + ("; set dataset.format=auto to read its .txt files" if _txt_files(path) else "")
        )
    raise AlrunError(
        f"{key}={path}: a folder with no .txt files"
        + ("" if fmt == "txtdir" else " and not a Hugging Face dataset (save_to_disk)")
        + f"; put one .txt file per document in it, or set {key} to a .txt (one document per "
        "line), .csv or .jsonl file"
    )


def _txt_files(path: Path) -> list[Path]:
    """The folder's .txt files by name (hidden files left out): the order of the pool."""
    return sorted(
        (p for p in path.iterdir() if p.is_file() and p.suffix.lower() == ".txt"),
        key=lambda p: p.name,
    )


def _documents(
    dataset: DictConfig, path: Path, fmt: str, key: str
) -> Iterator[tuple[str, str, str]]:
    """(id, text, where) in file order, checked, duplicates not yet dropped."""
    if fmt == "txtdir":
        yield from _txtdir(path)
        return
    if fmt == "lines":
        yield from _lines(path)
        return
    if fmt == "prodigy":
        yield from _prodigy(dataset, path)
        return
    if fmt == "hf":
        name = path if path.exists() else dataset.get(key.removeprefix("dataset."), path)
        records = read_hf(str(name), str(dataset.get("split", "train") or "train"))
    else:
        records = read_csv(path) if fmt == "csv" else read_jsonl(path)
    yield from _from_records(dataset, records)


def _from_records(dataset: DictConfig, records: Iterator[Record]) -> Iterator[tuple[str, str, str]]:
    """Text (and id) of each CSV/JSONL/HF record from dataset.text_field (and id_field)."""
    text_field = str(dataset.get("text_field", "text") or "text")
    id_field = dataset.get("id_field")
    for n, (where, rec) in enumerate(records):
        if text_field not in rec:
            raise AlrunError(field_error(where, n == 0, text_field, rec, "dataset.text_field"))
        if id_field and id_field not in rec:
            raise AlrunError(field_error(where, n == 0, id_field, rec, "dataset.id_field"))
        text = _check_text(where, text_field, rec[text_field])
        id_ = str(rec[id_field]) if id_field else _where_id(where)
        yield id_, text, where


def _where_id(where: str) -> str:
    """ "FILE line 3" -> line-3, "SOURCE[train] row 0" -> row-0: the record's place as its id."""
    kind, n = where.split()[-2:]
    return f"{kind}-{n}"


def _check_text(where: str, field: str, text: Any, setting: bool = True) -> str:
    """The text itself, unchanged; None, blank or not a string is an error naming the record.

    `setting`: dataset.text_field chose the field (not so in a Prodigy source file)."""
    if not isinstance(text, str) and text is not None:
        raise AlrunError(
            f"{where}: field {field!r} holds {type(text).__name__} {text!r}, not text; write "
            "the text as a string"
            + (" or set dataset.text_field to the field holding the text" if setting else "")
        )
    if not text or not text.strip():
        raise AlrunError(f"{where}: field {field!r} is empty; fill in the text or delete the line")
    return text


def _txtdir(path: Path) -> Iterator[tuple[str, str, str]]:
    """One document per .txt file, its whole text exactly as written; id = file stem."""
    for f in _txt_files(path):
        text = decode_utf8(f.read_bytes(), str(f))
        if not text.strip():
            raise AlrunError(f"{f}: the file is empty (no text); fill it or delete the file")
        yield f.stem, text, str(f)


def _lines(path: Path) -> Iterator[tuple[str, str, str]]:
    """One document per non-blank line, without its terminator (\\n or \\r\\n); id line-N."""
    text = decode_utf8(path.read_bytes(), str(path))
    lines = text.split("\n")  # not splitlines(): \v, \f, \x1c, U+2028 ... stay in the text
    for n, line in enumerate(lines, start=1):
        if n < len(lines):
            line = line.removesuffix("\r")  # CRLF; a lone CR is no line end here
        if line.strip():
            yield f"line-{n}", line, f"{path} line {n}"


def _prodigy(dataset: DictConfig, path: Path) -> Iterator[tuple[str, str, str]]:
    """A Prodigy source file as `ner.manual` reads it: text from "text", id from meta.id
    (or dataset.id_field, top level or in meta), else line-N."""
    id_field = dataset.get("id_field")
    for n, (where, rec) in enumerate(read_jsonl(path)):
        if "text" not in rec:
            fields = ", ".join(map(str, rec)) or "none"
            raise AlrunError(
                f"{where}: no field 'text' (fields: {fields}); a Prodigy source line is "
                '{"text": ..., "meta": {...}}: add the text'
                + (
                    ", or read the file with dataset.format=jsonl and dataset.text_field=..."
                    if n == 0
                    else " or delete the line"
                )
            )
        meta: dict[str, Any] = rec["meta"] if isinstance(rec.get("meta"), dict) else {}
        if id_field:
            if id_field not in rec and id_field not in meta:
                raise AlrunError(field_error(where, n == 0, id_field, rec, "dataset.id_field"))
            id_ = str(rec[id_field] if id_field in rec else meta[id_field])
        else:
            id_ = str(meta["id"]) if meta.get("id") is not None else _where_id(where)
        yield id_, _check_text(where, "text", rec["text"], setting=False), where


# --------------------------------------------------------------------------- sentences


def sentences_with_offsets(
    texts: Sequence[str], tokenizer: str = "blank:en", sentencizer: str | None = None
) -> list[list[Sentence]]:
    """Per text, its sentences as ((start, end), [(start, end) of each token]), in order.

    Offsets are absolute character offsets into that text, so sentences and tokens can be
    shown, labelled and written back against the original. Whitespace tokens are dropped, a
    sentence spans its first to last non-space token, and sentences of only whitespace go.
    `sentencizer`: None uses the pipeline's parser/senter (spaCy's rule-based sentencizer when
    it has none); "sentencizer" forces the rule-based one.
    """
    nlp = _sentence_nlp(tokenizer, sentencizer)
    out = []
    for doc in nlp.pipe(texts, batch_size=BATCH_SIZE):
        sents: list[Sentence] = []
        for sent in doc.sents:
            toks = [(t.idx, t.idx + len(t.text)) for t in sent if not t.is_space]
            if toks:
                sents.append(((toks[0][0], toks[-1][1]), toks))
        out.append(sents)
    return out


@cache
def _sentence_nlp(tokenizer: str, sentencizer: str | None) -> Any:
    """A pipeline of its own that sets sentence boundaries: the cached tokenizer-only one
    (`load_nlp`) is shared with other code and must not change. Cached too (loading is slow)."""
    if sentencizer not in (None, "sentencizer"):
        raise AlrunError(
            f"sentencizer={sentencizer!r}: use null (the pipeline's parser or senter, else "
            "spaCy's rule-based sentencizer) or sentencizer (always the rule-based one)"
        )
    nlp = _fresh_nlp(tokenizer)
    names = [
        name
        for name in nlp.component_names
        if nlp.get_pipe_meta(name).factory in SENTENCE_FACTORIES
    ]
    if sentencizer is None and names:
        if not any(name in nlp.pipe_names for name in names):  # e.g. a disabled senter
            nlp.enable_pipe(names[0])
        return nlp
    for name in nlp.pipe_names:
        if nlp.get_pipe_meta(name).factory in SENTENCE_FACTORIES:
            nlp.disable_pipe(name)
    nlp.add_pipe("sentencizer", name="alrun_sentencizer")
    return nlp


def _fresh_nlp(name: str) -> Any:
    """A new copy of pipeline `name`, ours to change; a bad name gets load_nlp's clear error."""
    import spacy

    try:
        return spacy.blank(name[6:]) if name.startswith("blank:") else spacy.load(name)
    except (OSError, ImportError, KeyError):
        load_nlp(name)  # raises the AlrunError every tokenizer setting gets
        raise
