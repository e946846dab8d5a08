"""Frozen encoder vectors for every word of an NER corpus, computed once and cached on disk.

A word's vector is the mean of its sub-words' hidden states at one layer of the encoder (a
middle layer: the last layer of a sentence-embedding model is trained for mean-pooled sentence
similarity and keeps less of what tells a name from a word; experiments/conll_candidates).
Only the layers up to that one are computed. Sentences longer than `max_length` sub-words are
cut into consecutive chunks of whole words, each encoded on its own.

The cache key is (encoder, layer, max length, precision, fingerprint of the set of sentences),
so later rounds, runs and sweep jobs over the same corpus reuse one file; entries are float16
(half the disk, no loss that matters after the projection the CRF reads) and written
atomically, like the document embeddings.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from alrun.models.base import ModelContext
from alrun.models.embeddings import (
    autocast,
    load_encoder,
    load_entry,
    padded_batch,
    resolve_precision,
    save_entry,
)
from alrun.progress import progress_bar

log = logging.getLogger(__name__)

Chunk = tuple[int, list[int], list[int]]  # (sentence, sub-word ids, the word of each)


def chunk_words(s: int, ids: Sequence[int], words: Sequence[int | None], size: int) -> list[Chunk]:
    """Sentence s's sub-words (`words[k]`: the word of sub-word k) packed into chunks of at
    most `size` sub-words that end at word boundaries; a single word longer than `size` keeps
    its first `size` sub-words."""
    by_word: dict[int, list[int]] = {}
    for tid, w in zip(ids, words, strict=True):
        if w is not None:
            by_word.setdefault(w, []).append(tid)
    out: list[Chunk] = []
    cur_ids: list[int] = []
    cur_words: list[int] = []
    for w, sub in by_word.items():
        sub = sub[:size]
        if cur_ids and len(cur_ids) + len(sub) > size:
            out.append((s, cur_ids, cur_words))
            cur_ids, cur_words = [], []
        cur_ids += sub
        cur_words += [w] * len(sub)
    if cur_ids:
        out.append((s, cur_ids, cur_words))
    return out


def encode_words(
    sentences: Sequence[Sequence[str]],
    model: str,
    layer: int,
    max_length: int = 128,
    batch_size: int = 64,
    precision: str = "float32",
) -> list[np.ndarray]:
    """One float32 array [n_words, hidden] per sentence: each word's mean sub-word state at
    `layer` (1 = after the first transformer layer). Words with no sub-word get zeros."""
    import torch

    precision = resolve_precision(precision)
    tok, enc = load_encoder(model, precision, layer)
    dim = enc.config.hidden_size
    out = [np.zeros((len(s), dim), dtype=np.float32) for s in sentences]
    todo = [i for i, s in enumerate(sentences) if len(s)]
    if not todo:
        return out
    coded = tok(
        [list(sentences[i]) for i in todo], is_split_into_words=True, add_special_tokens=False
    )
    chunks = [
        c
        for j, i in enumerate(todo)
        for c in chunk_words(i, coded["input_ids"][j], coded.word_ids(j), max_length - 2)
    ]
    counts = [np.zeros(len(s)) for s in sentences]
    order = np.argsort([-len(c[1]) for c in chunks], kind="stable")  # similar lengths together
    total = sum(len(c[1]) for c in chunks)
    with (
        torch.inference_mode(),
        autocast(precision),
        progress_bar(f"token vectors of {len(sentences)} sentences", total) as bar,
    ):
        for start in range(0, len(chunks), batch_size):
            batch = [chunks[j] for j in order[start : start + batch_size]]
            input_ids, mask = padded_batch(tok, [ids for _, ids, _ in batch])
            hidden = enc(input_ids=input_ids, attention_mask=mask).last_hidden_state
            hidden = hidden.float().numpy()
            for row, (s, ids, words) in enumerate(batch):
                np.add.at(out[s], words, hidden[row, 1 : len(ids) + 1])
                np.add.at(counts[s], words, 1.0)
            bar(sum(len(c[1]) for c in batch))
    for v, c in zip(out, counts, strict=True):
        v /= np.maximum(c, 1.0)[:, None]
    return out


def cache_file(ctx: ModelContext, model: str, layer: int, max_length: int, precision: str) -> Path:
    """Where the corpus's word vectors for these settings are cached."""
    precision = resolve_precision(precision)
    key = hashlib.sha256(
        f"words|{model}|{layer}|{max_length}|{precision}|{ctx.sentence_fingerprint}".encode()
    ).hexdigest()
    return Path(ctx.cache_dir) / "token-vectors" / f"{key[:32]}.npy"


class WordVectorTable:
    """Word vectors by sentence from the cached corpus matrix; unseen sentences encoded live."""

    def __init__(
        self,
        ctx: ModelContext,
        model: str,
        layer: int,
        max_length: int,
        batch_size: int,
        precision: str,
    ) -> None:
        self.args = (model, layer, max_length, batch_size, resolve_precision(precision))
        corpus = ctx.corpus_sentences
        lengths = np.array([len(s) for s in corpus], dtype=np.int64)
        self.start = np.concatenate([[0], np.cumsum(lengths)])
        self.row = {s: i for i, s in enumerate(corpus)}
        self.path = path = cache_file(ctx, model, layer, max_length, precision)
        if not corpus:  # a saved model rebuilt for prediction: every sentence encoded live
            self.matrix = np.zeros((0, 0), dtype=np.float16)
            return
        cached = load_entry(path, int(self.start[-1]))
        if cached is not None:
            self.matrix = cached
            log.info("token vectors: cache hit %s", path)
            return
        self.matrix = np.concatenate(encode_words(corpus, *self.args)).astype(np.float16)
        save_entry(path, self.matrix)
        log.info("token vectors: cached %d x %d at %s", *self.matrix.shape, path)

    def __call__(self, sentences: Sequence[Sequence[str]]) -> list[np.ndarray]:
        keys = [tuple(s) for s in sentences]
        missing = [k for k in keys if k not in self.row]
        # rounded like the cached rows, so a sentence reads the same features either way
        fresh = encode_words(missing, *self.args) if missing else []
        live = {
            k: v.astype(np.float16).astype(np.float32) for k, v in zip(missing, fresh, strict=True)
        }
        out = []
        for k in keys:
            if k in live:
                out.append(live[k])
            else:
                i = self.row[k]
                out.append(self.matrix[self.start[i] : self.start[i + 1]].astype(np.float32))
        return out


_TABLES: dict[tuple, WordVectorTable] = {}


def word_vector_table(
    ctx: ModelContext, model: str, layer: int, max_length: int, batch_size: int, precision: str
) -> WordVectorTable:
    """One table per (encoder, layer, max length, precision, corpus) per process."""
    precision = resolve_precision(precision)
    key = (model, layer, max_length, precision, ctx.sentence_fingerprint, str(ctx.cache_dir))
    if key not in _TABLES:
        for k in [k for k in _TABLES if k[4:] != key[4:]]:  # a new corpus: free the old one
            del _TABLES[k]
        _TABLES[key] = WordVectorTable(ctx, model, layer, max_length, batch_size, precision)
    return _TABLES[key]
