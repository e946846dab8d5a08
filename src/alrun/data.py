"""Loading labelled text: JSONL/CSV (line numbers in every error), HF datasets; dedup; split."""

from __future__ import annotations

import csv
import io
import json
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig
from sklearn.model_selection import train_test_split

from alrun.config import check_label_set, data_path
from alrun.errors import AlrunError

log = logging.getLogger(__name__)


@dataclass
class TextDataset:
    """Documents with integer labels; position i is the same document in every array."""

    ids: list[str]
    texts: list[str]
    labels: np.ndarray  # int64 indices into label_names
    label_names: list[str]

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, idx: Sequence[int] | np.ndarray) -> TextDataset:
        idx = np.asarray(idx, dtype=np.int64)
        return TextDataset(
            ids=[self.ids[i] for i in idx],
            texts=[self.texts[i] for i in idx],
            labels=self.labels[idx],
            label_names=self.label_names,
        )


@dataclass
class Splits:
    pool: (
        TextDataset | SeqDataset
    )  # the unlabelled pool the loop queries from (gold held by the oracle)
    test: TextDataset | SeqDataset  # reporting only; never used for selection or tuning


# --------------------------------------------------------------------------- reading records


def _fmt(path: Path, fmt: str) -> str:
    if fmt != "auto":
        return fmt
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json", ".ndjson"):
        return "jsonl"
    if suffix in (".csv", ".tsv"):
        return "csv"
    return "hf"


def json_records(stream: Iterable[bytes | str], name: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """("NAME line N", object) for each non-blank JSONL line; errors name the line."""
    for n, raw in enumerate(stream, start=1):
        where = f"{name} line {n}"
        try:
            line = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        except UnicodeDecodeError as e:
            raise AlrunError(
                f"{where}: not UTF-8 (byte 0x{raw[e.start]:02x} at column {e.start + 1}: "
                f"{e.reason}); re-save the file as UTF-8"
            ) from e
        if n == 1:
            line = line.removeprefix("\ufeff")  # a byte-order mark, as some editors write
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise AlrunError(
                f"{where}: invalid JSON ({e.msg} at column {e.colno}); fix or delete that line "
                "(JSONL holds one JSON object per line)"
            ) from e
        if not isinstance(rec, dict):
            raise AlrunError(
                f"{where}: expected a JSON object per line, got {type(rec).__name__}; "
                'write each record as {"field": value, ...}'
            )
        yield where, rec


def _read_jsonl(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    with path.open("rb") as f:
        yield from json_records(f, str(path))


def _read_csv(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")  # a byte-order mark (Excel's UTF-8 CSV) is not a column
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        col = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        raise AlrunError(
            f"{path} line {line}: not UTF-8 (byte 0x{raw[e.start]:02x} at column {col}: "
            f"{e.reason}); re-save the file as UTF-8"
        ) from e
    reader = csv.DictReader(
        io.StringIO(text, newline=""), delimiter="\t" if path.suffix.lower() == ".tsv" else ","
    )
    start = 2  # line of the first record, after the header
    try:
        for rec in reader:
            yield f"{path} line {start}", rec
            start = reader.line_num + 1
    except csv.Error as e:
        raise AlrunError(
            f"{path} line {start}: not valid CSV ({e}); fix the quoting of that record"
        ) from e


def _read_hf(source: str, split: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Any Hugging Face dataset: a `save_to_disk` folder, a local dataset folder, or a hub name."""
    import datasets

    local = Path(source).expanduser()
    try:
        if (local / "dataset_info.json").exists() or (local / "dataset_dict.json").exists():
            ds = datasets.load_from_disk(str(local))
            if isinstance(ds, datasets.DatasetDict):
                ds = ds[split]
        else:
            ds = datasets.load_dataset(str(local) if local.exists() else source, split=split)
    except Exception as e:  # datasets raises many types; all mean "could not load this source"
        offline = " (HF_HUB_OFFLINE is set: a hub dataset needs a network the first time)"
        raise AlrunError(
            f"could not load Hugging Face dataset {source!r} split {split!r}: {e}"
            + (offline if os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0") else "")
        ) from e
    names = {
        k: f.names for k, f in ds.features.items() if isinstance(f, datasets.ClassLabel)
    }  # ClassLabel ints -> their names, so label sets are written the same way for every source
    for n, rec in enumerate(ds):
        yield (
            f"{source}[{split}] row {n}",
            {k: (names[k][v] if k in names and isinstance(v, int) else v) for k, v in rec.items()},
        )


def _check_file(
    path: Path, what: str, key: str = "dataset.path", like: tuple[str, ...] = (".jsonl", ".csv")
) -> None:
    """`path` must be an existing file; `like`: suffixes of the files to suggest, best first."""
    if path.is_dir():
        files = sorted(p.name for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
        shown = ", ".join(files[:6]) + (", ..." if len(files) > 6 else "")
        fits = sorted(
            (f for f in files if Path(f).suffix.lower() in like),
            key=lambda f: like.index(Path(f).suffix.lower()),
        )
        raise AlrunError(
            f"{key}={path} is a directory ({f'files in it: {shown}' if files else 'empty'}); "
            f"{key} must name {what}" + (f", e.g. {key}={path / fits[0]}" if fits else "")
        )
    if not path.exists():
        raise AlrunError(
            f"data file not found: {path}. Set {key} (absolute, or relative to the data "
            "directory: data_dir=... or the ALRUN_DATA_DIR environment variable)"
        )


def _is_hf_folder(path: Path) -> bool:
    """A folder written by `save_to_disk` (read as a Hugging Face dataset with format=auto)."""
    markers = ("dataset_info.json", "dataset_dict.json", "state.json")
    return path.is_dir() and any((path / m).exists() for m in markers)


def read_records(
    cfg: DictConfig, path: Path, split: str, key: str = "dataset.path"
) -> Iterator[tuple[str, dict[str, Any]]]:
    fmt = cfg.get("format", "auto")
    if fmt == "auto" and path.is_dir() and not _is_hf_folder(path):
        _check_file(
            path, "a JSONL or CSV file (a Hugging Face dataset folder: dataset.format=hf)", key
        )
    fmt = _fmt(path, fmt)
    if fmt in ("jsonl", "csv"):
        _check_file(
            path,
            f"a {fmt.upper()} file",
            key,
            (".jsonl", ".json", ".ndjson") if fmt == "jsonl" else (".csv", ".tsv"),
        )
        return _read_jsonl(path) if fmt == "jsonl" else _read_csv(path)
    if fmt == "hf":
        return _read_hf(str(path) if path.exists() else str(cfg.path), split)
    raise AlrunError(f"dataset.format={fmt!r} is not one of auto, jsonl, csv, hf, prodigy")


# --------------------------------------------------------------------------- Prodigy JSONL


def _prodigy_report(report: Any, alignment: str | None) -> None:
    """Log what a Prodigy file gave; stop (naming every line) where the conversion failed.

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


def _prodigy_opts(cfg: DictConfig) -> tuple[str, str]:
    return str(cfg.get("alignment") or "strict"), str(cfg.get("tokenizer") or "blank:en")


def _prodigy_text(cfg: DictConfig, path: Path, label_names: list[str] | None) -> TextDataset:
    """Accepted text classification tasks; without `label_names`, the file's own labels."""
    from alrun import prodigy

    _check_file(path, "a Prodigy JSONL file", like=(".jsonl",))
    examples, report = prodigy.read_textcat(path, label_names)
    _prodigy_report(report, None)
    if label_names is None:
        label_names = list(dict.fromkeys(e.label for e in examples))
    index = {name: i for i, name in enumerate(label_names)}
    for e in examples:
        if e.label not in index:
            raise AlrunError(
                f"{path} line {e.line}: label {e.label!r} is not in the label set "
                f"{label_names}; fix the data or add the label to dataset.labels"
            )
    if not examples:
        raise AlrunError(f"{path}: no accepted text classification examples")
    return TextDataset(
        ids=[str(e.meta.get("id", f"line-{e.line}")) for e in examples],
        texts=[e.text for e in examples],
        labels=np.asarray([index[e.label] for e in examples], dtype=np.int64),
        label_names=label_names,
    )


def _prodigy_tokens(cfg: DictConfig, path: Path) -> list[RawDoc]:
    """Accepted NER tasks; consecutive tasks sharing meta.doc form one document, else each
    task is its own document (one sentence)."""
    from alrun import prodigy

    alignment, tokenizer = _prodigy_opts(cfg)
    examples, report = prodigy.read_ner(path, alignment, tokenizer)
    _prodigy_report(report, alignment)
    docs: list[RawDoc] = []
    prev = None
    for e in examples:
        doc = e.meta.get("doc")
        sent = (f"{path} line {e.line}", e.words, e.tags)
        if doc is not None and doc == prev:
            docs[-1][1].append(sent)
        else:
            docs.append((str(doc) if doc is not None else f"line-{e.line}", [sent]))
        prev = doc
    return docs


# --------------------------------------------------------------------------- building datasets


def _field_error(where: str, first: bool, key: str, rec: dict[str, Any], setting: str) -> str:
    """A record lacks a field: on the first record the setting is wrong, later the record."""
    fields = ", ".join(map(str, rec)) or "none"
    fix = (
        f"set {setting} to the field that holds it"
        if first
        else f"add {key!r} to that record or delete the line (earlier records have it)"
    )
    return f"{where}: no field {key!r} (fields: {fields}); {fix}"


def _load_file(
    cfg: DictConfig, path: Path, split: str, label_names: list[str], key: str = "dataset.path"
) -> TextDataset:
    """`key`: the setting that names `path` (dataset.path or dataset.test_path), for errors."""
    if _fmt(path, cfg.get("format", "auto")) == "prodigy":
        return _prodigy_text(cfg, path, label_names)
    text_field, label_field = cfg.text_field, cfg.label_field
    id_field = cfg.get("id_field")
    index = {name: i for i, name in enumerate(label_names)}
    ids, texts, labels = [], [], []
    first_use: dict[str, tuple[str, str, str]] = {}  # id -> (where, text, label) of its record
    for where, rec in read_records(cfg, path, split, key):
        fields = [(text_field, "dataset.text_field"), (label_field, "dataset.label_field")]
        if id_field:
            fields.append((id_field, "dataset.id_field (or null: records numbered by line)"))
        for name, setting in fields:
            if name not in rec:
                raise AlrunError(_field_error(where, not texts, name, rec, setting))
        text, label = rec[text_field], rec[label_field]
        if text is None or (isinstance(text, str) and not text.strip()):
            raise AlrunError(
                f"{where}: field {text_field!r} is empty; fill in the text or delete the line"
            )
        if not isinstance(text, str):
            raise AlrunError(
                f"{where}: field {text_field!r} holds {type(text).__name__} {text!r}, not text; "
                f"write the text as a string or set dataset.text_field to the text field"
            )
        label = "" if label is None else str(label).strip()
        if not label:
            raise AlrunError(
                f"{where}: field {label_field!r} is empty; give the record one of the labels "
                f"{label_names} or delete the line"
            )
        if label not in index:
            raise AlrunError(
                f"{where}: label {label!r} is not in the label set {label_names}; "
                "fix the data or add the label to dataset.labels"
            )
        id_ = str(rec[id_field]) if id_field else where.split()[-1]
        if id_ in first_use and first_use[id_][1:] != (text, label):
            earlier = " ".join(first_use[id_][0].split()[-2:])  # "line 4" (HF: "row 3")
            raise AlrunError(
                f"{where}: duplicate id {id_!r} (dataset.id_field={id_field}), already the id "
                f"of another record at {earlier}; give every record its own id, or set "
                "dataset.id_field=null to number records by line"
            )
        first_use.setdefault(id_, (where, text, label))  # an exact repeat: dropped as a duplicate
        ids.append(id_)
        texts.append(text)
        labels.append(index[label])
    if not texts:
        raise AlrunError(
            f"{key}={path}: no records, the file is empty; fill it (one record per line, with "
            f"fields {text_field!r} and {label_field!r}) or point {key} at the right file"
        )
    return TextDataset(ids, texts, np.asarray(labels, dtype=np.int64), label_names)


def _dedup(ds: TextDataset, exclude: set[str] = frozenset()) -> tuple[TextDataset, int]:
    """Drop exact duplicate texts (first kept), and texts in `exclude` (e.g. the test file)."""
    seen = set(exclude)
    keep = []
    for i, t in enumerate(ds.texts):
        if t not in seen:
            seen.add(t)
            keep.append(i)
    return ds.subset(keep), len(ds) - len(keep)


def check_pool(
    cfg: DictConfig, pool: TextDataset | SeqDataset, where: str, n_seed: int | None = None
) -> None:
    """loop.initial_size and loop.round_size must fit the pool (known only once it is read).

    Runs before any training or file writing. `where`: where the pool came from, for the
    message; `n_seed`: the seed set's size when annotations (loop.initial_from) start the run.
    """
    loop = cfg.get("loop")
    if loop is None or (n_seed is None and loop.get("initial_from")):
        return  # a loader used on its own, or the seed set decides (checked with n_seed)
    unit = "document" if isinstance(pool, TextDataset) else str(loop.get("unit", "document"))
    n = len(pool)
    has = f"the pool holds {n} {unit}{'s' if n != 1 else ''} ({where})"
    if n_seed is None:
        first, after = int(loop.initial_size), f"loop.initial_size={loop.initial_size}"
        if first > n:
            raise AlrunError(
                f"loop.initial_size={first} is larger than the pool: {has}; "
                f"lower loop.initial_size to at most {n}, or use more data"
            )
    else:
        first, after = n_seed, f"the seed set (loop.initial_from: {n_seed} items)"
        if n_seed > loop.budget:
            raise AlrunError(
                f"the seed set (loop.initial_from) holds {n_seed} items, above "
                f"loop.budget={loop.budget}; raise loop.budget to at least {n_seed}"
            )
    left = n - first
    if 0 < left < loop.round_size and loop.budget > first:
        raise AlrunError(
            f"loop.round_size={loop.round_size} is larger than the {left} {unit}s left unlabelled "
            f"after {after}: {has}; lower loop.round_size to at most {left}"
        )


def _split(full: TextDataset, dataset: DictConfig, seed: int) -> tuple[TextDataset, TextDataset]:
    """A stratified test split of `full`, fixed by the seed."""
    label_names = full.label_names
    counts = np.bincount(full.labels, minlength=len(label_names))
    if (counts < 2).any():
        rare = [label_names[i] for i in np.flatnonzero(counts < 2)]
        raise AlrunError(
            f"labels {rare} have fewer than 2 documents; a stratified test split needs 2. "
            "Remove them from dataset.labels or give a dataset.test_path"
        )
    try:
        train_idx, test_idx = train_test_split(
            np.arange(len(full)),
            test_size=dataset.test_size,
            stratify=full.labels,
            random_state=seed,
        )
    except ValueError as e:  # a test or pool share too small to hold every label
        raise AlrunError(
            f"dataset.test_size={dataset.test_size} cannot split {len(full)} documents with "
            f"{len(label_names)} labels ({e}); choose a test_size that leaves every label "
            "in both parts, or give a dataset.test_path"
        ) from e
    return full.subset(np.sort(train_idx)), full.subset(np.sort(test_idx))


def dataset_path(cfg: DictConfig, dataset: DictConfig, key: str = "path") -> Path:
    """`dataset.<key>` under data_dir; a preset's missing file says where to get it (`source`)."""
    path = data_path(cfg, dataset[key])
    if dataset.get("source") and dataset.get("format") != "hf" and not path.exists():
        raise AlrunError(
            f"data file not found: {path} (dataset.{key} under data_dir={cfg.data_dir}). "
            + " ".join(str(dataset.source).split())
        )
    return path


def load_splits(cfg: DictConfig, dataset: DictConfig, seed: int) -> Splits:
    """The pool and the test split, deduplicated; stratified split fixed by the seed."""
    path = dataset_path(cfg, dataset)
    label_names = [str(x) for x in dataset.labels or []]
    full = None
    source = f"dataset.labels={label_names}"
    if not label_names and _fmt(path, dataset.get("format", "auto")) == "prodigy":
        full = _prodigy_text(dataset, path, None)  # a Prodigy file names its own labels
        label_names = full.label_names
        source = f"{path} (dataset.labels unset: the labels its annotations use)"
    check_label_set(label_names, source)
    if full is None:
        full = _load_file(dataset, path, dataset.get("split", "train"), label_names)
    if dataset.get("test_path"):
        test_path = dataset_path(cfg, dataset, "test_path")
        test, n_test_dup = _dedup(
            _load_file(
                dataset,
                test_path,
                dataset.get("test_split", "test"),
                label_names,
                "dataset.test_path",
            )
        )
        pool, n_dup = _dedup(full, exclude=set(test.texts))
        log.info(
            "dropped %d duplicate texts from the pool (incl. copies of test texts), %d from test",
            n_dup,
            n_test_dup,
        )
        where = f"{path}, after dropping {n_dup} duplicates and copies of test texts"
    else:
        full, n_dup = _dedup(full)
        log.info("dropped %d exact duplicate texts before splitting", n_dup)
        pool, test = _split(full, dataset, seed)
        where = f"{path}, after dropping {n_dup} duplicates and {len(test)} for the test split"
    present = [label_names[i] for i in np.unique(pool.labels)]
    if not present:
        raise AlrunError(
            f"no documents left to label ({where}): every text of dataset.path is also in "
            "dataset.test_path; point them at different files"
        )
    if len(present) < 2:
        raise AlrunError(
            f"every document left to label has the label {present[0]!r} ({where}); a "
            f"classifier needs two or more of dataset.labels={label_names} in the data: "
            "add documents with the other labels"
        )
    log.info(
        "pool %d documents, test %d documents, %d labels", len(pool), len(test), len(label_names)
    )
    check_pool(cfg, pool, where)
    return Splits(pool=pool, test=test)


# --------------------------------------------------------------------------- token labels (NER)


@dataclass
class SeqDataset:
    """Token-labelled items; an item is what one query labels (a document or a sentence).

    Item i has sentences[i] (token lists) and labels[i] (one int64 tag array per sentence).
    Sentence boundaries are kept: conlleval ends every entity at a sentence end.
    """

    ids: list[str]
    sentences: list[list[list[str]]]
    labels: np.ndarray  # object array: per item, a list of int64 arrays of tag ids
    label_names: list[str]  # tag names: "O", then B-/I- for each entity type
    doc_ids: list[str]  # the document each item comes from

    def __len__(self) -> int:
        return len(self.sentences)

    @property
    def texts(self) -> list[str]:
        """Whitespace-joined tokens: for fingerprints, corpora and display."""
        return [" ".join(" ".join(s) for s in item) for item in self.sentences]

    def subset(self, idx: Sequence[int] | np.ndarray) -> SeqDataset:
        idx = np.asarray(idx, dtype=np.int64)
        return SeqDataset(
            ids=[self.ids[i] for i in idx],
            sentences=[self.sentences[i] for i in idx],
            labels=self.labels[idx],
            label_names=self.label_names,
            doc_ids=[self.doc_ids[i] for i in idx],
        )


def _check_tag(tag: str, what: str) -> None:
    if tag != "O" and (len(tag) < 3 or tag[1] != "-" or tag[0] not in "BI"):
        raise AlrunError(
            f"{what} is not O, B-TYPE or I-TYPE; "
            "alrun reads IOB1/IOB2 tags (convert IOBES/BILOU first, and give every B-/I- a type)"
        )


def to_iob2(tags: Sequence[str], where: str) -> list[str]:
    """IOB1 or IOB2 -> IOB2: an I-X that does not continue an X entity starts one (B-X)."""
    out: list[str] = []
    prev = "O"
    for k, tag in enumerate(tags):
        _check_tag(tag, f"{where}: tag {tag!r} (token {k + 1})")
        if tag.startswith("I-") and prev[2:] != tag[2:]:
            tag = "B-" + tag[2:]
        out.append(tag)
        prev = tag
    return out


# A raw document: its id and its sentences as (where, tokens, IOB2 tags).
RawDoc = tuple[str, list[tuple[str, list[str], list[str]]]]


def read_conll(path: Path) -> list[RawDoc]:
    """CoNLL columns (token first, tag last), blank lines between sentences, -DOCSTART-."""
    docs: list[RawDoc] = []
    sents: list[tuple[str, list[str], list[str]]] = []
    tokens: list[str] = []
    tags: list[str] = []
    start = 0
    width = 0  # columns of the first token line; every token line must have as many
    width_line = 0

    def end_sentence() -> None:
        nonlocal tokens, tags
        if tokens:
            where = f"{path} line {start}"
            sents.append((where, tokens, to_iob2(tags, where)))
        tokens, tags = [], []

    def end_document() -> None:
        nonlocal sents
        end_sentence()
        if sents:
            docs.append((f"d{len(docs)}", sents))
        sents = []

    try:
        with path.open(encoding="utf-8") as f:
            for n, line in enumerate(f, start=1):
                cols = line.split()
                if not cols:
                    end_sentence()
                elif cols[0] == "-DOCSTART-":
                    end_document()
                else:
                    if len(cols) < 2:
                        raise AlrunError(
                            f"{path} line {n}: expected `token tag` columns, got {line.strip()!r}"
                        )
                    if not width:
                        width, width_line = len(cols), n
                    elif len(cols) != width:
                        raise AlrunError(
                            f"{path} line {n}: {len(cols)} columns, but line {width_line} has "
                            f"{width}; every token line needs the same columns (token first, "
                            "tag last, separated by spaces or tabs, no spaces inside a token)"
                        )
                    _check_tag(cols[-1], f"{path} line {n}: tag {cols[-1]!r}")
                    if not tokens:
                        start = n
                    tokens.append(cols[0])
                    tags.append(cols[-1])
    except UnicodeDecodeError as e:
        raise AlrunError(f"{path}: not UTF-8 ({e.reason}); re-save the file as UTF-8") from e
    end_document()
    return docs


def read_token_jsonl(cfg: DictConfig, path: Path) -> list[RawDoc]:
    """AutoTrain-style `{"tokens": [...], "tags": [...]}` lines; one sentence a line.

    Lines sharing `dataset.doc_field` (when set and present) form one document; otherwise
    every line is its own document.
    """
    tok_f, tag_f = cfg.get("tokens_field", "tokens"), cfg.get("tags_field", "tags")
    doc_f = cfg.get("doc_field")
    docs: dict[str, list[tuple[str, list[str], list[str]]]] = {}
    for where, rec in _read_jsonl(path):
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


def _read_tokens(cfg: DictConfig, path: Path, key: str = "dataset.path") -> list[RawDoc]:
    _check_file(path, "a CoNLL or JSONL file", key, (".conll", ".txt", ".iob", ".jsonl"))
    fmt = cfg.get("format", "auto")
    if fmt == "auto":
        fmt = "jsonl" if path.suffix.lower() in (".jsonl", ".json", ".ndjson") else "conll"
    if fmt not in ("conll", "jsonl", "prodigy"):
        raise AlrunError(
            f"dataset.format={fmt!r}: NER data is read from conll, jsonl or prodigy files"
        )
    if fmt == "prodigy":
        docs = _prodigy_tokens(cfg, path)
    elif fmt == "conll":
        docs = read_conll(path)
    else:
        docs = read_token_jsonl(cfg, path)
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
        for _, _, tags in sents:
            for t in tags:
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


def _seq_dataset(docs: list[RawDoc], scheme: dict[str, str], unit: str) -> SeqDataset:
    types = list(dict.fromkeys(scheme.values()))
    names = ["O"] + [f"{p}-{t}" for t in types for p in "BI"]
    index = {n: i for i, n in enumerate(names)}

    def encode(tags: list[str]) -> np.ndarray:
        out = []
        for t in tags:
            kept = t != "O" and t[2:] in scheme
            out.append(index[f"{t[0]}-{scheme[t[2:]]}"] if kept else 0)
        return np.asarray(out, dtype=np.int64)

    ids, sentences, labels, doc_ids = [], [], [], []
    for doc_id, sents in docs:
        if unit == "document":
            ids.append(doc_id)
            sentences.append([toks for _, toks, _ in sents])
            labels.append([encode(tags) for _, _, tags in sents])
            doc_ids.append(doc_id)
        else:
            for k, (_, toks, tags) in enumerate(sents):
                ids.append(f"{doc_id}-s{k}")
                sentences.append([toks])
                labels.append([encode(tags)])
                doc_ids.append(doc_id)
    arr = np.empty(len(labels), dtype=object)
    arr[:] = labels
    return SeqDataset(ids, sentences, arr, names, doc_ids)


def _dedup_items(ds: SeqDataset) -> tuple[SeqDataset, int]:
    """Drop items whose tokens repeat an earlier item's (CoNLL repeats table headers such as
    "EASTERN DIVISION" 16 times): one query would otherwise buy the same sentence many times."""
    seen: set[tuple[tuple[str, ...], ...]] = set()
    keep = []
    for i, item in enumerate(ds.sentences):
        key = tuple(tuple(s) for s in item)
        if key not in seen:
            seen.add(key)
            keep.append(i)
    return ds.subset(keep), len(ds) - len(keep)


def load_token_splits(cfg: DictConfig, dataset: DictConfig, seed: int, unit: str) -> Splits:
    """NER pool and test: the test file when given, else a seeded split by document."""
    if unit not in ("document", "sentence"):
        raise AlrunError(f"loop.unit={unit!r}; choose document or sentence")
    path = dataset_path(cfg, dataset)
    docs = _read_tokens(dataset, path)
    scheme = ner_label_scheme(dataset, docs, path)
    if dataset.get("test_path"):
        test_path = dataset_path(cfg, dataset, "test_path")
        test_docs = _read_tokens(dataset, test_path, "dataset.test_path")
    else:
        try:
            train_idx, test_idx = train_test_split(
                np.arange(len(docs)), test_size=dataset.test_size, random_state=seed
            )
        except ValueError as e:  # too few documents for this share
            raise AlrunError(
                f"dataset.test_size={dataset.test_size} cannot split the {len(docs)} documents "
                f"of {path} ({e}); give a dataset.test_path or a file with more documents"
            ) from e
        test_docs = [docs[i] for i in np.sort(test_idx)]
        docs = [docs[i] for i in np.sort(train_idx)]
    if unit == "document" and len(docs) < 2:
        raise AlrunError(
            f"{path} holds a single document (no -DOCSTART- lines or doc_field); "
            "use loop.unit=sentence"
        )
    pool, n_dup = _dedup_items(_seq_dataset(docs, scheme, unit))
    test = _seq_dataset(test_docs, scheme, "sentence")
    n_sent = sum(len(s) for _, s in docs)
    log.info(
        "pool %d %ss after dropping %d exact duplicates (%d documents, %d sentences read), "
        "test %d sentences, entity types %s",
        len(pool),
        unit,
        n_dup,
        len(docs),
        n_sent,
        len(test),
        [f"{k}->{v}" if k != v else k for k, v in scheme.items()],
    )
    check_pool(cfg, pool, f"{path}, after dropping {n_dup} duplicates and the test split")
    return Splits(pool=pool, test=test)


# --------------------------------------------------------------------------- seed annotations


def _seed_items(cfg: DictConfig, path: Path, pool: TextDataset | SeqDataset) -> list[tuple]:
    """(key, id, item, label) per accepted seed annotation, labels encoded like the pool's."""
    from alrun import prodigy

    alignment, tokenizer = _prodigy_opts(cfg.dataset)
    names = pool.label_names
    index = {name: i for i, name in enumerate(names)}
    if isinstance(pool, TextDataset):
        examples, report = prodigy.read_textcat(path, names)
        _prodigy_report(report, None)
        items = []
        for e in examples:
            if e.label not in index:
                raise AlrunError(
                    f"{path} line {e.line}: label {e.label!r} is not in the run's label set "
                    f"{names}; fix the annotation or the dataset's labels"
                )
            items.append((e.text, str(e.meta.get("id", f"seed-{e.line}")), e.text, index[e.label]))
        return items
    ner, report = prodigy.read_ner(path, alignment, tokenizer)
    _prodigy_report(report, alignment)
    label_map = {str(k): str(v) for k, v in (cfg.dataset.get("label_map") or {}).items()}
    dropped: dict[str, None] = {}
    items = []
    for e in ner:
        tags = []
        for t in e.tags:
            name = t if t == "O" else f"{t[:2]}{label_map.get(t[2:], t[2:])}"
            if name not in index:
                dropped.setdefault(t[2:], None)
            tags.append(index.get(name, 0))
        key = (tuple(e.words),)
        items.append((key, str(e.meta.get("id", f"seed-{e.line}")), [e.words], [np.asarray(tags)]))
    if dropped:
        log.warning("%s: entity types %s are not in the run's label set: tagged O", path, dropped)
    return items


def seed_from_prodigy(cfg: DictConfig, splits: Splits) -> tuple[Splits, np.ndarray]:
    """The labelled seed set from annotations (loop.initial_from), instead of a random start.

    An annotated item already in the pool is labelled with the annotation (which wins over the
    dataset's own label); one not in the pool is added to it; one in the test split leaves the
    test split (it is training data now). The pool is everything else.
    """
    path = data_path(cfg, cfg.loop.initial_from)
    _check_file(path, "a Prodigy JSONL file", "loop.initial_from", (".jsonl",))
    pool, test = splits.pool, splits.test
    seed = _seed_items(cfg, path, pool)
    if not seed:
        raise AlrunError(f"loop.initial_from={path}: no accepted annotations to start from")

    def key_of(data: TextDataset | SeqDataset, i: int) -> Any:
        if isinstance(data, TextDataset):
            return data.texts[i]
        return tuple(tuple(s) for s in data.sentences[i])

    seed_keys = {k for k, *_ in seed}
    in_test = [i for i in range(len(test)) if key_of(test, i) in seed_keys]
    if in_test:
        test = test.subset(np.setdiff1d(np.arange(len(test)), in_test))
        log.warning("%d annotated seed items were in the test split: moved out of it", len(in_test))
    where = {key_of(pool, i): i for i in range(len(pool))}
    labels = list(pool.labels)
    extra: list[tuple] = []
    initial: list[int] = []
    taken: set[int] = set()
    for key, id_, item, label in seed:
        if key in where:
            i = where[key]
            if i in taken:
                continue  # the same text annotated twice without an _input_hash: first wins
            labels[i] = label
        else:
            i = where[key] = len(pool) + len(extra)
            extra.append((id_, item, label))
        initial.append(i)
        taken.add(i)
    if isinstance(pool, TextDataset):
        pool = TextDataset(
            pool.ids + [e[0] for e in extra],
            pool.texts + [e[1] for e in extra],
            np.asarray(labels + [e[2] for e in extra], dtype=np.int64),
            pool.label_names,
        )
    else:
        arr = np.empty(len(labels) + len(extra), dtype=object)
        arr[:] = labels + [e[2] for e in extra]
        pool = SeqDataset(
            pool.ids + [e[0] for e in extra],
            pool.sentences + [e[1] for e in extra],
            arr,
            pool.label_names,
            pool.doc_ids + [e[0] for e in extra],
        )
    log.info(
        "seed set: %d annotated items from %s (%d matched the pool, %d added)",
        len(initial),
        path,
        len(initial) - len(extra),
        len(extra),
    )
    check_pool(cfg, pool, f"dataset.path plus the annotations in {path}", n_seed=len(initial))
    return Splits(pool=pool, test=test), np.asarray(initial, dtype=np.int64)
