"""Data for a run: readers by format behind one registry (records.py, tokens.py, prodigy.py),
entity tags (tags.py), datasets and splits (datasets.py), seeding from annotations (seed.py),
unlabelled raw text pools and their sentences with character offsets (raw.py)."""

from alrun.data import prodigy
from alrun.data.datasets import (
    SeqDataset,
    Splits,
    TextDataset,
    check_pool,
    dataset_path,
    load_splits,
    load_token_splits,
)
from alrun.data.prodigy import load_nlp
from alrun.data.raw import raw_format, read_texts, sentences_with_offsets
from alrun.data.records import READERS, json_records, read_csv, read_jsonl, read_records
from alrun.data.seed import seed_from_prodigy
from alrun.data.tags import entities, spans_from_tags, spans_to_tags, to_iob2
from alrun.data.tokens import RawDoc, entity_types, ner_label_scheme, read_conll, read_docs

__all__ = [
    "READERS",
    "RawDoc",
    "SeqDataset",
    "Splits",
    "TextDataset",
    "check_pool",
    "dataset_path",
    "entities",
    "entity_types",
    "json_records",
    "load_nlp",
    "load_splits",
    "load_token_splits",
    "ner_label_scheme",
    "prodigy",
    "raw_format",
    "read_conll",
    "read_csv",
    "read_docs",
    "read_jsonl",
    "read_records",
    "read_texts",
    "seed_from_prodigy",
    "sentences_with_offsets",
    "spans_from_tags",
    "spans_to_tags",
    "to_iob2",
]
