"""Loading labelled text: JSONL/CSV (line numbers in every error), HF datasets; dedup; split."""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Iterator, Sequence
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
    pool: TextDataset  # the unlabelled pool the loop queries from (gold held by the oracle)
    test: TextDataset  # reporting only; never used for selection or tuning


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


def _read_jsonl(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    with path.open("rb") as f:
        for n, raw in enumerate(f, start=1):
            where = f"{path} line {n}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise AlrunError(
                    f"{where}: not UTF-8 ({e.reason}); re-save the file as UTF-8"
                ) from e
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise AlrunError(f"{where}: invalid JSON ({e.msg} at column {e.colno})") from e
            if not isinstance(rec, dict):
                raise AlrunError(
                    f"{where}: expected a JSON object per line, got {type(rec).__name__}"
                )
            yield where, rec


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


def read_records(cfg: DictConfig, path: Path, split: str) -> Iterator[tuple[str, dict[str, Any]]]:
    fmt = _fmt(path, cfg.get("format", "auto"))
    if fmt in ("jsonl", "csv"):
        if path.is_dir():
            raise AlrunError(f"{path} is a directory; dataset.path must name a {fmt} file")
        if not path.exists():
            raise AlrunError(
                f"data file not found: {path}. Set dataset.path, or the data directory "
                "with data_dir=... or the ALRUN_DATA_DIR environment variable"
            )
        return _read_jsonl(path) if fmt == "jsonl" else _read_csv(path)
    if fmt == "hf":
        return _read_hf(str(path) if path.exists() else str(cfg.path), split)
    raise AlrunError(f"dataset.format={fmt!r} is not one of auto, jsonl, csv, hf")


# --------------------------------------------------------------------------- building datasets


def _load_file(cfg: DictConfig, path: Path, split: str, label_names: list[str]) -> TextDataset:
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
    label_names = [str(x) for x in dataset.labels]
    if len(label_names) < 2 or len(set(label_names)) != len(label_names):
        raise AlrunError(
            f"dataset.labels={label_names} needs at least two distinct labels for classification"
        )
    full = _load_file(
        dataset, data_path(cfg, dataset.path), dataset.get("split", "train"), label_names
    )
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
