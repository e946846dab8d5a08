"""Reading records (one dict per example) from JSONL, CSV and Hugging Face datasets, and the
registry of readers behind `dataset.format`. Every error names the file and line."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from alrun.errors import AlrunError

# ("NAME line N" or "SOURCE[split] row N", the record's fields): where names it in errors.
Record = tuple[str, dict[str, Any]]

JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson")


def json_records(stream: Iterable[bytes | str], name: str) -> Iterator[Record]:
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


def read_jsonl(path: Path) -> Iterator[Record]:
    """The records of a JSONL file, read lazily (the file opens on the first record)."""
    with path.open("rb") as f:
        yield from json_records(f, str(path))


def decode_utf8(raw: bytes, name: str) -> str:
    """UTF-8 bytes -> text, exactly (a leading byte-order mark, as Excel writes, is not text);
    an error names the line and column of the first bad byte."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        col = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        raise AlrunError(
            f"{name} line {line}: not UTF-8 (byte 0x{raw[e.start]:02x} at column {col}: "
            f"{e.reason}); re-save the file as UTF-8"
        ) from e


def field_error(where: str, first: bool, key: str, rec: dict[str, Any], setting: str) -> str:
    """A record lacks a field: on the first record the setting is wrong, later the record."""
    fields = ", ".join(map(str, rec)) or "none"
    fix = (
        f"set {setting}=... to the field that holds it"
        if first
        else f"add {key!r} to that record or delete the line (earlier records have it)"
    )
    return f"{where}: no field {key!r} (fields: {fields}); {fix}"


def read_csv(path: Path) -> Iterator[Record]:
    """The rows of a CSV file (TSV for a .tsv suffix) after its header, keyed by column."""
    text = decode_utf8(path.read_bytes(), str(path))
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


def read_hf(source: str, split: str) -> Iterator[Record]:
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


def check_file(
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


def is_hf_folder(path: Path) -> bool:
    """A folder written by `save_to_disk` (read as a Hugging Face dataset with format=auto)."""
    markers = ("dataset_info.json", "dataset_dict.json", "state.json")
    return path.is_dir() and any((path / m).exists() for m in markers)


def resolve_format(path: Path, fmt: Any) -> Any:
    """`dataset.format` of a text classification file; auto: jsonl or csv by suffix, else hf."""
    if fmt != "auto":
        return fmt
    suffix = path.suffix.lower()
    if suffix in JSONL_SUFFIXES:
        return "jsonl"
    if suffix in (".csv", ".tsv"):
        return "csv"
    return "hf"


# --------------------------------------------------------------------------- the registry


@dataclass(frozen=True)
class Reader:
    """What one `dataset.format` reads; None where it cannot read that kind of data.

    `records(cfg, path, split, key)`: (where, record) pairs for text classification, checked
    eagerly (a missing file fails on the call, not on the first record).
    `docs(cfg, path)`: NER documents of tagged sentences (`alrun.data.tokens.RawDoc`).
    """

    records: Callable[[DictConfig, Path, str, str], Iterator[Record]] | None = None
    docs: Callable[[DictConfig, Path], list[Any]] | None = None


# dataset.format -> its readers. Record readers are added below; tokens.py adds the NER ones.
READERS: dict[str, Reader] = {}


def register_reader(
    fmt: str,
    *,
    records: Callable[[DictConfig, Path, str, str], Iterator[Record]] | None = None,
    docs: Callable[[DictConfig, Path], list[Any]] | None = None,
) -> None:
    """Add what format `fmt` reads; one name may read both records and documents (jsonl)."""
    old = READERS.get(fmt, Reader())
    if (records and old.records) or (docs and old.docs):
        raise AlrunError(f"dataset.format {fmt!r}: a reader is registered twice")
    READERS[fmt] = Reader(records or old.records, docs or old.docs)


def find_reader(fmt: Any, kind: str) -> Callable[..., Any] | None:
    """The `kind` ("records" or "docs") reader of format `fmt`, or None when there is none."""
    reader = READERS.get(fmt) if isinstance(fmt, str) else None
    return getattr(reader, kind) if reader else None


def _jsonl_records(cfg: DictConfig, path: Path, split: str, key: str) -> Iterator[Record]:
    check_file(path, "a JSONL file", key, JSONL_SUFFIXES)
    return read_jsonl(path)


def _csv_records(cfg: DictConfig, path: Path, split: str, key: str) -> Iterator[Record]:
    check_file(path, "a CSV file", key, (".csv", ".tsv"))
    return read_csv(path)


def _hf_records(cfg: DictConfig, path: Path, split: str, key: str) -> Iterator[Record]:
    """A local folder or file by its resolved path, else dataset.path as written (a hub name)."""
    name = cfg.get(key.removeprefix("dataset."), cfg.path)  # the hub name as written
    return read_hf(str(path) if path.exists() else str(name), split)


register_reader("jsonl", records=_jsonl_records)
register_reader("csv", records=_csv_records)
register_reader("hf", records=_hf_records)


def read_records(
    cfg: DictConfig, path: Path, split: str, key: str = "dataset.path"
) -> Iterator[Record]:
    """Text classification records of `path` in `dataset.format`; `key` names it in errors."""
    fmt = cfg.get("format", "auto")
    if fmt == "auto" and path.is_dir() and not is_hf_folder(path):
        check_file(
            path, "a JSONL or CSV file (a Hugging Face dataset folder: dataset.format=hf)", key
        )
    fmt = resolve_format(path, fmt)
    read = find_reader(fmt, "records")
    if read is None:
        raise AlrunError(f"dataset.format={fmt!r} is not one of auto, jsonl, csv, hf, prodigy")
    return read(cfg, path, split, key)
