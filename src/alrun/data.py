"""Loading labelled text: JSONL/CSV (line numbers in every error), HF datasets; dedup; split."""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig
from sklearn.model_selection import train_test_split

from alrun.config import data_path
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
            raise AlrunError(f"{where}: not UTF-8 ({e.reason}); re-save the file as UTF-8") from e
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise AlrunError(f"{where}: invalid JSON ({e.msg} at column {e.colno})") from e
        if not isinstance(rec, dict):
            raise AlrunError(f"{where}: expected a JSON object per line, got {type(rec).__name__}")
        yield where, rec


def _read_jsonl(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    with path.open("rb") as f:
        yield from json_records(f, str(path))


def _read_csv(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    try:
        with path.open(encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f, delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
            start = 2  # line of the first record, after the header
            for rec in reader:
                yield f"{path} line {start}", rec
                start = reader.line_num + 1
    except UnicodeDecodeError as e:
        raise AlrunError(f"{path}: not UTF-8 ({e.reason}); re-save the file as UTF-8") from e


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
        raise AlrunError(
            f"could not load Hugging Face dataset {source!r} split {split!r}: {e}"
        ) from e
    names = {
        k: f.names for k, f in ds.features.items() if isinstance(f, datasets.ClassLabel)
    }  # ClassLabel ints -> their names, so label sets are written the same way for every source
    for n, rec in enumerate(ds):
        yield (
            f"{source}[{split}] row {n}",
            {k: (names[k][v] if k in names and isinstance(v, int) else v) for k, v in rec.items()},
        )


def _check_file(path: Path, what: str, key: str = "dataset.path") -> None:
    if path.is_dir():
        raise AlrunError(f"{path} is a directory; {key} must name {what}")
    if not path.exists():
        raise AlrunError(
            f"data file not found: {path}. Set {key} (absolute, or relative to the data "
            "directory: data_dir=... or the ALRUN_DATA_DIR environment variable)"
        )


def read_records(cfg: DictConfig, path: Path, split: str) -> Iterator[tuple[str, dict[str, Any]]]:
    fmt = _fmt(path, cfg.get("format", "auto"))
    if fmt in ("jsonl", "csv"):
        _check_file(path, f"a {fmt} file")
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

    _check_file(path, "a Prodigy JSONL file")
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


def _load_file(cfg: DictConfig, path: Path, split: str, label_names: list[str]) -> TextDataset:
    if _fmt(path, cfg.get("format", "auto")) == "prodigy":
        return _prodigy_text(cfg, path, label_names)
    text_field, label_field = cfg.text_field, cfg.label_field
    id_field = cfg.get("id_field")
    index = {name: i for i, name in enumerate(label_names)}
    ids, texts, labels = [], [], []
    for where, rec in read_records(cfg, path, split):
        for key, what in ((text_field, "text_field"), (label_field, "label_field")):
            if key not in rec:
                raise AlrunError(
                    f"{where}: no field {key!r} (fields: {', '.join(map(str, rec))}); "
                    f"set dataset.{what}"
                )
        text, label = rec[text_field], str(rec[label_field]).strip()
        if not isinstance(text, str) or not text.strip():
            raise AlrunError(f"{where}: field {text_field!r} is empty; remove or fix the record")
        if label not in index:
            raise AlrunError(
                f"{where}: label {label!r} is not in the label set {label_names}; "
                "fix the data or add the label to dataset.labels"
            )
        ids.append(str(rec[id_field]) if id_field and id_field in rec else where.split()[-1])
        texts.append(text)
        labels.append(index[label])
    if not texts:
        raise AlrunError(f"{path}: no records; the data file is empty")
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


def load_splits(cfg: DictConfig, dataset: DictConfig, seed: int) -> Splits:
    """The pool and the test split, deduplicated; stratified split fixed by the seed."""
    path = data_path(cfg, dataset.path)
    label_names = [str(x) for x in dataset.labels or []]
    full = None
    if not label_names and _fmt(path, dataset.get("format", "auto")) == "prodigy":
        full = _prodigy_text(dataset, path, None)  # a Prodigy file names its own labels
        label_names = full.label_names
    if len(label_names) < 2 or len(set(label_names)) != len(label_names):
        raise AlrunError(
            f"dataset.labels={label_names} needs at least two distinct labels for classification"
        )
    if full is None:
        full = _load_file(dataset, path, dataset.get("split", "train"), label_names)
    if dataset.get("test_path"):
        test, n_test_dup = _dedup(
            _load_file(
                dataset,
                data_path(cfg, dataset.test_path),
                dataset.get("test_split", "test"),
                label_names,
            )
        )
        pool, n_dup = _dedup(full, exclude=set(test.texts))
        log.info(
            "dropped %d duplicate texts from the pool (incl. copies of test texts), %d from test",
            n_dup,
            n_test_dup,
        )
    else:
        full, n_dup = _dedup(full)
        log.info("dropped %d exact duplicate texts before splitting", n_dup)
        counts = np.bincount(full.labels, minlength=len(label_names))
        if (counts < 2).any():
            rare = [label_names[i] for i in np.flatnonzero(counts < 2)]
            raise AlrunError(
                f"labels {rare} have fewer than 2 documents; a stratified test split needs 2. "
                "Remove them from dataset.labels or give a dataset.test_path"
            )
        train_idx, test_idx = train_test_split(
            np.arange(len(full)),
            test_size=dataset.test_size,
            stratify=full.labels,
            random_state=seed,
        )
        pool, test = full.subset(np.sort(train_idx)), full.subset(np.sort(test_idx))
    log.info(
        "pool %d documents, test %d documents, %d labels", len(pool), len(test), len(label_names)
    )
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


def _read_tokens(cfg: DictConfig, path: Path) -> list[RawDoc]:
    _check_file(path, "a CoNLL or JSONL file")
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
        raise AlrunError(f"{path}: no sentences; the data file is empty")
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
    path = data_path(cfg, dataset.path)
    docs = _read_tokens(dataset, path)
    scheme = ner_label_scheme(dataset, docs, path)
    if dataset.get("test_path"):
        test_docs = _read_tokens(dataset, data_path(cfg, dataset.test_path))
    else:
        train_idx, test_idx = train_test_split(
            np.arange(len(docs)), test_size=dataset.test_size, random_state=seed
        )
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
    _check_file(path, "a Prodigy JSONL file", "loop.initial_from")
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
    return Splits(pool=pool, test=test), np.asarray(initial, dtype=np.int64)
