"""Datasets and splits: the text classification and NER pools with their test splits,
deduplicated and checked against the loop's sizes before a run starts."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig
from sklearn.model_selection import train_test_split

from alrun.config import check_label_set, data_path
from alrun.data.prodigy import check_report, read_textcat
from alrun.data.records import check_file, field_error, read_records, resolve_format
from alrun.data.tokens import RawDoc, Sentence, ner_label_scheme, read_docs
from alrun.errors import AlrunError

log = logging.getLogger("alrun.data")  # the package's logger, as before it was split


@dataclass
class TextDataset:
    """Documents with integer labels; position i is the same document in every array.

    `gold=False`: an unlabelled pool (text only); `labels` then holds -1 for every document
    and only a person (oracle=web) can label it."""

    ids: list[str]
    texts: list[str]
    labels: np.ndarray  # int64 indices into label_names (-1: unknown)
    label_names: list[str]
    gold: bool = True

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, idx: Sequence[int] | np.ndarray) -> TextDataset:
        idx = np.asarray(idx, dtype=np.int64)
        return TextDataset(
            ids=[self.ids[i] for i in idx],
            texts=[self.texts[i] for i in idx],
            labels=self.labels[idx],
            label_names=self.label_names,
            gold=self.gold,
        )


@dataclass(frozen=True)
class ItemText:
    """An NER item's original text, byte for byte, and where its sentences and tokens lie in it.

    `text`: the document (loop.unit=document) or the sentence's slice of it (sentence);
    `offset`: where `text` starts in the document; `sentences[s]`: (start, end) of sentence s
    in `text`; `tokens[s][k]`: (start, end) of token k of sentence s in `text`. A span's
    character offsets into the document are its offsets into `text` plus `offset`.
    """

    doc_id: str
    text: str
    offset: int
    sentences: list[tuple[int, int]]
    tokens: list[list[tuple[int, int]]]

    def sentence(self, s: int) -> tuple[str, list[tuple[int, int]]]:
        """Sentence s's text and its tokens' (start, end) within that text."""
        a, b = self.sentences[s]
        return self.text[a:b], [(x - a, y - a) for x, y in self.tokens[s]]


@dataclass
class SeqDataset:
    """Token-labelled items; an item is what one query labels (a document or a sentence).

    Item i has sentences[i] (token lists) and labels[i] (one int64 tag array per sentence).
    Sentence boundaries are kept: conlleval ends every entity at a sentence end.
    `source[i]`: item i's original text with offsets, when the data has one (raw text,
    Prodigy tasks); None for pre-tokenised data (CoNLL, tokens/tags), shown joined by spaces.
    `gold=False`: an unlabelled pool (labels[i] is None); only a person can label it.
    """

    ids: list[str]
    sentences: list[list[list[str]]]
    labels: np.ndarray  # object array: per item, a list of int64 arrays of tag ids
    label_names: list[str]  # tag names: "O", then B-/I- for each entity type
    doc_ids: list[str]  # the document each item comes from
    source: list[ItemText] | None = None
    gold: bool = True

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
            source=None if self.source is None else [self.source[i] for i in idx],
            gold=self.gold,
        )


@dataclass
class Splits:
    pool: (
        TextDataset | SeqDataset
    )  # the unlabelled pool the loop queries from (gold held by the oracle)
    test: TextDataset | SeqDataset | None  # reporting only; None: a raw pool without test_path
    source: str = ""  # where the pool came from, for the pool-size checks' messages


def check_pool(
    cfg: DictConfig, pool: TextDataset | SeqDataset, where: str, n_seed: int | None = None
) -> None:
    """loop.initial_size and loop.round_size must fit the pool (known only once it is read).
    The one check of a run's settings that needs the data: the runner calls it right after
    loading, before any training or file writing. `where`: where the pool came from, for the
    message; `n_seed`: the seed set's size when annotations (loop.initial_from) start the run.
    """
    loop = cfg.get("loop")
    if loop is None or (n_seed is None and loop.get("initial_from")):
        return  # a loader used on its own, or the seed set decides (checked with n_seed)
    unit = "document" if isinstance(pool, TextDataset) else str(loop.get("unit", "document"))
    held = int((cfg.get("eval") or {}).get("size") or 0)
    n = len(pool) - held
    has = f"the pool holds {n} {unit}{'s' if n != 1 else ''} ({where}"
    has += f", less the eval.size={held} evaluation sample)" if held else ")"
    if n < 1:
        raise AlrunError(
            f"eval.size={held} takes the whole pool ({len(pool)} {unit}s, {where}); lower "
            f"eval.size (e.g. eval.size={max(1, len(pool) // 10)})"
        )
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


def dataset_path(cfg: DictConfig, dataset: DictConfig, key: str = "path") -> Path:
    """`dataset.<key>` under data_dir; a preset's missing file says where to get it (`source`)."""
    path = data_path(cfg, dataset[key])
    if dataset.get("source") and dataset.get("format") != "hf" and not path.exists():
        raise AlrunError(
            f"data file not found: {path} (dataset.{key} under data_dir={cfg.data_dir}). "
            + " ".join(str(dataset.source).split())
        )
    return path


# --------------------------------------------------------------------------- text classification


def _prodigy_text(cfg: DictConfig, path: Path, label_names: list[str] | None) -> TextDataset:
    """Accepted text classification tasks; without `label_names`, the file's own labels."""
    check_file(path, "a Prodigy JSONL file", like=(".jsonl",))
    examples, report = read_textcat(path, label_names)
    check_report(report, None)
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


def _text_and_label(
    cfg: DictConfig, where: str, rec: dict[str, Any], label_names: list[str], first: bool
) -> tuple[str, str]:
    """A record's text and label, checked: every error names the record and the fix."""
    text_field, label_field = cfg.text_field, cfg.label_field
    id_field = cfg.get("id_field")
    fields = [(text_field, "dataset.text_field"), (label_field, "dataset.label_field")]
    if id_field:
        fields.append((id_field, "dataset.id_field (or null: records numbered by line)"))
    for name, setting in fields:
        if name not in rec:
            raise AlrunError(field_error(where, first, name, rec, setting))
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
    if label not in label_names:
        raise AlrunError(
            f"{where}: label {label!r} is not in the label set {label_names}; "
            "fix the data or add the label to dataset.labels"
        )
    return text, label


def _record_id(
    cfg: DictConfig,
    where: str,
    rec: dict[str, Any],
    text: str,
    label: str,
    first_use: dict[str, tuple[str, str, str]],
) -> str:
    """dataset.id_field's value, else the line; one id for two different records is an error.

    `first_use`: id -> (where, text, label) of its first record; an exact repeat is allowed
    (it is dropped later as a duplicate text)."""
    id_field = cfg.get("id_field")
    id_ = str(rec[id_field]) if id_field else where.split()[-1]
    if id_ in first_use and first_use[id_][1:] != (text, label):
        earlier = " ".join(first_use[id_][0].split()[-2:])  # "line 4" (HF: "row 3")
        raise AlrunError(
            f"{where}: duplicate id {id_!r} (dataset.id_field={id_field}), already the id "
            f"of another record at {earlier}; give every record its own id, or set "
            "dataset.id_field=null to number records by line"
        )
    first_use.setdefault(id_, (where, text, label))
    return id_


def load_file(
    cfg: DictConfig, path: Path, split: str, label_names: list[str], key: str = "dataset.path"
) -> TextDataset:
    """`key`: the setting that names `path` (dataset.path or dataset.test_path), for errors."""
    if resolve_format(path, cfg.get("format", "auto")) == "prodigy":
        return _prodigy_text(cfg, path, label_names)
    index = {name: i for i, name in enumerate(label_names)}
    ids: list[str] = []
    texts: list[str] = []
    labels: list[int] = []
    first_use: dict[str, tuple[str, str, str]] = {}
    for where, rec in read_records(cfg, path, split, key):
        text, label = _text_and_label(cfg, where, rec, label_names, first=not texts)
        ids.append(_record_id(cfg, where, rec, text, label, first_use))
        texts.append(text)
        labels.append(index[label])
    if not texts:
        raise AlrunError(
            f"{key}={path}: no records, the file is empty; fill it (one record per line, with "
            f"fields {cfg.text_field!r} and {cfg.label_field!r}) or point {key} at the right file"
        )
    return TextDataset(ids, texts, np.asarray(labels, dtype=np.int64), label_names)


def _dedup(ds: TextDataset, exclude: AbstractSet[str] = frozenset()) -> tuple[TextDataset, int]:
    """Drop exact duplicate texts (first kept), and texts in `exclude` (e.g. the test file)."""
    seen = set(exclude)
    keep = []
    for i, t in enumerate(ds.texts):
        if t not in seen:
            seen.add(t)
            keep.append(i)
    return ds.subset(keep), len(ds) - len(keep)


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


def _labelled_file(dataset: DictConfig, path: Path) -> TextDataset:
    """dataset.path with its label set: dataset.labels, or a Prodigy file's own labels."""
    label_names = [str(x) for x in dataset.labels or []]
    full = None
    source = f"dataset.labels={label_names}"
    if not label_names and resolve_format(path, dataset.get("format", "auto")) == "prodigy":
        full = _prodigy_text(dataset, path, None)  # a Prodigy file names its own labels
        label_names = full.label_names
        source = f"{path} (dataset.labels unset: the labels its annotations use)"
    check_label_set(label_names, source)
    if full is None:
        full = load_file(dataset, path, dataset.get("split", "train"), label_names)
    return full


def _with_test_file(
    cfg: DictConfig, dataset: DictConfig, path: Path, full: TextDataset
) -> tuple[TextDataset, TextDataset, str]:
    """(pool, test, where the pool came from) when dataset.test_path gives the test split."""
    test_path = dataset_path(cfg, dataset, "test_path")
    test, n_test_dup = _dedup(
        load_file(
            dataset,
            test_path,
            dataset.get("test_split", "test"),
            full.label_names,
            "dataset.test_path",
        )
    )
    pool, n_dup = _dedup(full, exclude=set(test.texts))
    log.info(
        "dropped %d duplicate texts from the pool (incl. copies of test texts), %d from test",
        n_dup,
        n_test_dup,
    )
    return pool, test, f"{path}, after dropping {n_dup} duplicates and copies of test texts"


def _check_labels_left(pool: TextDataset, label_names: list[str], where: str) -> None:
    """A classifier learns nothing from a pool with fewer than two labels: stop before it."""
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


def load_splits(cfg: DictConfig, dataset: DictConfig, seed: int) -> Splits:
    """The pool and the test split, deduplicated; stratified split fixed by the seed."""
    path = dataset_path(cfg, dataset)
    full = _labelled_file(dataset, path)
    label_names = full.label_names
    if dataset.get("test_path"):
        pool, test, where = _with_test_file(cfg, dataset, path, full)
    else:
        full, n_dup = _dedup(full)
        log.info("dropped %d exact duplicate texts before splitting", n_dup)
        pool, test = _split(full, dataset, seed)
        where = f"{path}, after dropping {n_dup} duplicates and {len(test)} for the test split"
    _check_labels_left(pool, label_names, where)
    log.info(
        "pool %d documents, test %d documents, %d labels", len(pool), len(test), len(label_names)
    )
    return Splits(pool=pool, test=test, source=where)


# --------------------------------------------------------------------------- token labels (NER)


def seq_dataset(docs: list[RawDoc], scheme: dict[str, str], unit: str) -> SeqDataset:
    types = list(dict.fromkeys(scheme.values()))
    names = ["O"] + [f"{p}-{t}" for t in types for p in "BI"]
    index = {n: i for i, n in enumerate(names)}

    def encode(tags: list[str]) -> np.ndarray:
        out = []
        for t in tags:
            kept = t != "O" and t[2:] in scheme
            out.append(index[f"{t[0]}-{scheme[t[2:]]}"] if kept else 0)
        return np.asarray(out, dtype=np.int64)

    ids, sentences, labels, doc_ids, texts = [], [], [], [], []
    for doc_id, sents in docs:
        groups = [sents] if unit == "document" else [[x] for x in sents]
        for k, group in enumerate(groups):
            ids.append(doc_id if unit == "document" else f"{doc_id}-s{k}")
            sentences.append([x[1] for x in group])
            labels.append([encode(x[2]) for x in group])
            doc_ids.append(doc_id)
            texts.append(_original(doc_id, group))
    arr = np.empty(len(labels), dtype=object)
    arr[:] = labels
    source = None if any(t is None for t in texts) else [t for t in texts if t is not None]
    return SeqDataset(ids, sentences, arr, names, doc_ids, source=source)


def _original(doc_id: str, group: list[Sentence]) -> ItemText | None:
    """The item's original text when its sentences carry one (Prodigy tasks): each task's
    text as written, tasks of one document joined by a newline; None for CoNLL-like data."""
    if any(len(x) < 4 for x in group):
        return None
    text, spans, toks, at = "", [], [], 0
    for k, x in enumerate(group):
        own, offsets = x[3]  # type: ignore[misc]  # len(x) == 4 here
        at = len(text) + (1 if k else 0)
        text += ("\n" if k else "") + own
        spans.append((at, at + len(own)))
        toks.append([(a + at, b + at) for a, b in offsets])
    return ItemText(doc_id, text, 0, spans, toks)


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


def _split_docs(
    cfg: DictConfig, dataset: DictConfig, docs: list[RawDoc], path: Path, seed: int
) -> tuple[list[RawDoc], list[RawDoc]]:
    """(pool documents, test documents): the test file when given, else a seeded split."""
    if dataset.get("test_path"):
        test_path = dataset_path(cfg, dataset, "test_path")
        return docs, read_docs(dataset, test_path, "dataset.test_path")
    try:
        train_idx, test_idx = train_test_split(
            np.arange(len(docs)), test_size=dataset.test_size, random_state=seed
        )
    except ValueError as e:  # too few documents for this share
        raise AlrunError(
            f"dataset.test_size={dataset.test_size} cannot split the {len(docs)} documents "
            f"of {path} ({e}); give a dataset.test_path or a file with more documents"
        ) from e
    return [docs[i] for i in np.sort(train_idx)], [docs[i] for i in np.sort(test_idx)]


def load_token_splits(cfg: DictConfig, dataset: DictConfig, seed: int, unit: str) -> Splits:
    """NER pool and test: the test file when given, else a seeded split by document."""
    if unit not in ("document", "sentence"):
        raise AlrunError(f"loop.unit={unit!r}; choose document or sentence")
    path = dataset_path(cfg, dataset)
    docs = read_docs(dataset, path)
    scheme = ner_label_scheme(dataset, docs, path)
    docs, test_docs = _split_docs(cfg, dataset, docs, path, seed)
    if unit == "document" and len(docs) < 2:
        raise AlrunError(
            f"{path} holds a single document (no -DOCSTART- lines or doc_field); "
            "use loop.unit=sentence"
        )
    pool, n_dup = _dedup_items(seq_dataset(docs, scheme, unit))
    test = seq_dataset(test_docs, scheme, "sentence")
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
    where = f"{path}, after dropping {n_dup} duplicates and the test split"
    return Splits(pool=pool, test=test, source=where)
