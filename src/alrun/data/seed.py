"""The labelled seed set from Prodigy annotations (loop.initial_from), merged into the pool."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig

from alrun.config import data_path
from alrun.data.datasets import ItemText, SeqDataset, Splits, TextDataset
from alrun.data.prodigy import check_report, dataset_options, read_ner, read_textcat
from alrun.data.records import check_file
from alrun.errors import AlrunError

log = logging.getLogger("alrun.data")  # the package's logger, as before it was split

# (key, id, item, label): key matches the item in the pool, label is encoded like the pool's.
SeedItem = tuple[Any, str, Any, Any]


def _text_seed(path: Path, pool: TextDataset) -> list[SeedItem]:
    """Accepted text classification annotations; a label outside the run's set stops the run."""
    names = pool.label_names
    index = {name: i for i, name in enumerate(names)}
    examples, report = read_textcat(path, names)
    check_report(report, None)
    items = []
    for e in examples:
        if e.label not in index:
            raise AlrunError(
                f"{path} line {e.line}: label {e.label!r} is not in the run's label set "
                f"{names}; fix the annotation or the dataset's labels"
            )
        items.append((e.text, str(e.meta.get("id", f"seed-{e.line}")), e.text, index[e.label]))
    return items


def _ner_seed(cfg: DictConfig, path: Path, pool: SeqDataset) -> list[SeedItem]:
    """Accepted NER annotations, renamed by dataset.label_map; types the run does not learn
    are tagged O (with a warning), as they are in the dataset."""
    alignment, tokenizer = dataset_options(cfg.dataset)
    index = {name: i for i, name in enumerate(pool.label_names)}
    ner, report = read_ner(path, alignment, tokenizer)
    check_report(report, alignment)
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
        id_ = str(e.meta.get("id", f"seed-{e.line}"))
        items.append((key, id_, ([e.words], _item_text(id_, e.text, e.tokens)), [np.asarray(tags)]))
    if dropped:
        log.warning("%s: entity types %s are not in the run's label set: tagged O", path, dropped)
    return items


def _item_text(id_: str, text: str, tokens: list[dict[str, Any]]) -> ItemText:
    """An annotated task as a one-sentence item with its own text (a raw pool shows it so)."""
    return ItemText(id_, text, 0, [(0, len(text))], [[(t["start"], t["end"]) for t in tokens]])


def _key_of(data: TextDataset | SeqDataset, i: int) -> Any:
    """What identifies item i across the pool, the test split and the annotations."""
    if isinstance(data, TextDataset):
        return data.texts[i]
    return tuple(tuple(s) for s in data.sentences[i])


def _extended(
    pool: TextDataset | SeqDataset, labels: list[Any], extra: list[tuple]
) -> TextDataset | SeqDataset:
    """`pool` relabelled with `labels`, plus the annotated items it lacked (id, item, label)."""
    if isinstance(pool, TextDataset):
        return TextDataset(
            pool.ids + [e[0] for e in extra],
            pool.texts + [e[1] for e in extra],
            np.asarray(labels + [e[2] for e in extra], dtype=np.int64),
            pool.label_names,
            gold=pool.gold,
        )
    arr = np.empty(len(labels) + len(extra), dtype=object)
    arr[:] = labels + [e[2] for e in extra]
    return SeqDataset(
        pool.ids + [e[0] for e in extra],
        pool.sentences + [e[1][0] for e in extra],
        arr,
        pool.label_names,
        pool.doc_ids + [e[0] for e in extra],
        source=None if pool.source is None else pool.source + [e[1][1] for e in extra],
        gold=pool.gold,
    )


def _merge_seed(
    pool: TextDataset | SeqDataset, seed: list[SeedItem]
) -> tuple[TextDataset | SeqDataset, list[int], int]:
    """(pool with the annotations, their pool positions, how many were added to the pool)."""
    where = {_key_of(pool, i): i for i in range(len(pool))}
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
    return _extended(pool, labels, extra), initial, len(extra)


def seed_from_prodigy(cfg: DictConfig, splits: Splits) -> tuple[Splits, np.ndarray]:
    """The labelled seed set from annotations (loop.initial_from), instead of a random start.

    An annotated item already in the pool is labelled with the annotation (which wins over the
    dataset's own label); one not in the pool is added to it; one in the test split leaves the
    test split (it is training data now). The pool is everything else.
    """
    path = data_path(cfg, cfg.loop.initial_from)
    check_file(path, "a Prodigy JSONL file", "loop.initial_from", (".jsonl",))
    pool, test = splits.pool, splits.test
    seed = _text_seed(path, pool) if isinstance(pool, TextDataset) else _ner_seed(cfg, path, pool)
    if not seed:
        raise AlrunError(f"loop.initial_from={path}: no accepted annotations to start from")
    seed_keys = {k for k, *_ in seed}
    in_test = [] if test is None else [i for i in range(len(test)) if _key_of(test, i) in seed_keys]
    if test is not None and in_test:
        test = test.subset(np.setdiff1d(np.arange(len(test)), in_test))
        log.warning("%d annotated seed items were in the test split: moved out of it", len(in_test))
    pool, initial, n_added = _merge_seed(pool, seed)
    log.info(
        "seed set: %d annotated items from %s (%d matched the pool, %d added)",
        len(initial),
        path,
        len(initial) - n_added,
        n_added,
    )
    where = f"dataset.path plus the annotations in {path}"
    return Splits(pool=pool, test=test, source=where), np.asarray(initial, dtype=np.int64)
