"""A team's own text as a pool: no gold labels, the label set from the config, the original
text kept byte for byte (NER: tokenised and split into sentences with spaCy, every token and
sentence located by character offsets into its document).

Held-out labels come from an evaluation sample the person labels (eval.size), or from an
annotated file (dataset.test_path: labelled CSV/JSONL or Prodigy for text classification;
CoNLL, tokens/tags JSONL or Prodigy for NER)."""

from __future__ import annotations

import logging

import numpy as np
from omegaconf import DictConfig, OmegaConf

from alrun.config import check_label_set
from alrun.data.datasets import (
    ItemText,
    SeqDataset,
    Splits,
    TextDataset,
    dataset_path,
    load_file,
    seq_dataset,
)
from alrun.data.raw import read_texts, sentences_with_offsets
from alrun.data.tokens import read_docs
from alrun.errors import AlrunError

log = logging.getLogger("alrun.data")


def is_raw(dataset: DictConfig) -> bool:
    """A pool without gold labels: `dataset.raw: true` (dataset=raw_text), or a labelled-file
    preset told there is no label field (dataset.label_field=null)."""
    return bool(dataset.get("raw")) or ("label_field" in dataset and dataset.label_field is None)


def entity_labels(dataset: DictConfig) -> list[str]:
    """NER on raw text: the entity types to label, from dataset.labels (there is no file to
    read them from)."""
    types = [str(x) for x in dataset.get("labels") or []]
    if not types:
        raise AlrunError(
            "dataset.labels is empty: name the entity types to label, e.g. "
            "'dataset.labels=[PERSON,ORG,PRODUCT,LOCATION]'"
        )
    twice = [t for t in dict.fromkeys(types) if types.count(t) > 1]
    if twice or any(t == "O" or not t.strip() for t in types):
        raise AlrunError(f"dataset.labels={types}: list each entity type once (not 'O', not blank)")
    return types


def load_raw_splits(cfg: DictConfig, dataset: DictConfig, task: str, unit: str) -> Splits:
    """The unlabelled pool and, when dataset.test_path names an annotated file, its test set."""
    path = dataset_path(cfg, dataset)
    docs = read_texts(dataset, path)
    test = _test_set(cfg, dataset, task) if dataset.get("test_path") else None
    if test is not None and task == "multiclass":
        seen = set(test.texts)
        kept = [d for d in docs if d[1] not in seen]
        if len(kept) < len(docs):
            log.info("dropped %d pool documents that are in the test file", len(docs) - len(kept))
        docs = kept
    if not docs:
        raise AlrunError(f"{path}: no documents left to label (every one is in the test file)")
    if task == "multiclass":
        labels = [str(x) for x in dataset.get("labels") or []]
        check_label_set(labels, f"dataset.labels={labels} (the classes to label)")
        pool: TextDataset | SeqDataset = TextDataset(
            ids=[d[0] for d in docs],
            texts=[d[1] for d in docs],
            labels=np.full(len(docs), -1, dtype=np.int64),
            label_names=labels,
            gold=False,
        )
    else:
        pool = _ner_pool(dataset, docs, unit)
    log.info("unlabelled pool: %d %ss from %s", len(pool), unit, path)
    return Splits(pool=pool, test=test, source=f"{path} (an unlabelled pool)")


def _ner_pool(dataset: DictConfig, docs: list[tuple[str, str, str]], unit: str) -> SeqDataset:
    """Documents -> items (a document, or each of its sentences) with their original text."""
    types = entity_labels(dataset)
    names = ["O"] + [f"{p}-{t}" for t in types for p in "BI"]
    tokenizer = str(dataset.get("tokenizer") or "blank:en")
    split = sentences_with_offsets([d[1] for d in docs], tokenizer, dataset.get("sentencizer"))
    items: list[ItemText] = []
    for (doc_id, text, _), sents in zip(docs, split, strict=True):
        if not sents:
            continue  # whitespace only: nothing to label
        if unit == "document":
            items.append(ItemText(doc_id, text, 0, [s for s, _ in sents], [t for _, t in sents]))
            continue
        for (a, b), toks in sents:
            items.append(
                ItemText(doc_id, text[a:b], a, [(0, b - a)], [[(x - a, y - a) for x, y in toks]])
            )
    ids = [it.doc_id if unit == "document" else f"{it.doc_id}-c{it.offset}" for it in items]
    labels = np.empty(len(items), dtype=object)
    return SeqDataset(
        ids=ids,
        sentences=[[[it.text[x:y] for x, y in toks] for toks in it.tokens] for it in items],
        labels=labels,
        label_names=names,
        doc_ids=[it.doc_id for it in items],
        source=items,
        gold=False,
    )


def _test_set(cfg: DictConfig, dataset: DictConfig, task: str) -> TextDataset | SeqDataset:
    """dataset.test_path, read as an annotated file of the task (its own format settings:
    test_format, and test_label_field for labelled CSV/JSONL)."""
    node = OmegaConf.create(OmegaConf.to_container(dataset, resolve=True))
    node.format = dataset.get("test_format", "auto")
    node.label_field = dataset.get("test_label_field", "label")
    path = dataset_path(cfg, dataset, "test_path")
    if task == "multiclass":
        labels = [str(x) for x in dataset.get("labels") or []]
        return load_file(node, path, "test", labels, "dataset.test_path")
    types = entity_labels(dataset)
    renames = {str(k): str(v) for k, v in (dataset.get("label_map") or {}).items()}
    # the pool's types in its order; other types in the file are not labelled here: O
    scheme = {t: t for t in types} | {k: v for k, v in renames.items() if v in types}
    return seq_dataset(read_docs(node, path, "dataset.test_path"), scheme, "sentence")
