"""The candidates' protocol, context and registry, and saving/loading the kept model.

Every candidate module imports this one; `alrun.models` imports every candidate module (to
register it), so imports go one way."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from alrun.registry import Registry
from alrun.strategies import Predictions


@dataclass
class ModelContext:
    """What every candidate may need besides its hyper-parameters."""

    n_classes: int  # classes (multiclass) or tags (NER)
    seed: int
    cache_dir: Path
    corpus: Sequence[str] = ()  # every text of the run (pool + test), embedded once if needed
    label_names: Sequence[str] = ()  # class names, or tag names ("O", "B-PER", "I-PER", ...)
    # NER: the pool's sentences (unsupervised feature maps are fitted on these, never on test)
    # and the test split's; token vectors are computed once for both
    pool_sentences: Sequence[Sequence[str]] = ()
    test_sentences: Sequence[Sequence[str]] = ()

    @cached_property
    def corpus_texts(self) -> list[str]:
        """The corpus's distinct texts, sorted: what on-disk caches hold rows for. Every seed
        splits the same texts into another pool and test order; they share one cache entry."""
        return sorted(set(self.corpus))

    @cached_property
    def corpus_fingerprint(self) -> str:
        """Identifies the set of corpus texts, for on-disk caches of anything computed from it."""
        h = hashlib.sha256()
        for t in self.corpus_texts:
            h.update(t.encode("utf-8"))
            h.update(b"\0")
        return h.hexdigest()

    @cached_property
    def corpus_sentences(self) -> list[tuple[str, ...]]:
        """Every distinct sentence (pool and test), sorted: the rows of the token-vector cache."""
        return sorted({tuple(s) for s in (*self.pool_sentences, *self.test_sentences)})

    @cached_property
    def sentence_fingerprint(self) -> str:
        """Identifies the set of corpus sentences (tokens as given)."""
        return sentences_fingerprint(self.corpus_sentences)

    @cached_property
    def pool_fingerprint(self) -> str:
        """Identifies the set of pool sentences: what unsupervised feature maps are fitted on."""
        return sentences_fingerprint(self.pool_sentences)


def sentences_fingerprint(sentences: Sequence[Sequence[str]]) -> str:
    """Identifies a set of token sequences, whatever their order and repeats."""
    h = hashlib.sha256()
    for s in sorted({tuple(s) for s in sentences}):
        h.update("\x1f".join(s).encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()


class Model(Protocol):
    """multiclass: fit(texts, int labels) / predict(texts) -> probs[N, C].

    ner: fit(sentences as token lists, one int tag array per sentence) /
    predict(sentences) -> per-token marginals (see strategies.Predictions), tag ids index
    ctx.label_names with 0 = "O".
    """

    def fit(self, texts: Sequence[Any], labels: Sequence[Any] | np.ndarray) -> None: ...

    def predict(self, texts: Sequence[Any]) -> Predictions: ...

    def save(self, path: Path) -> None:
        """Write the fitted state into the folder `path`, in the library's native format."""

    def load(self, path: Path) -> None:
        """Restore what `save` wrote, into a fresh model built from the same spec."""


MODELS: Registry = Registry("model", "models.<key>.name (conf/model/)")


def build_model(ctx: ModelContext, spec: dict[str, Any]) -> Model:
    """A fresh, untrained model from its config block (`name` + hyper-parameters)."""
    params = {k: v for k, v in spec.items() if k != "name"}
    return MODELS.get(spec["name"])(ctx, **params)


MODEL_FILE = "alrun-model.json"


def save_model(
    model: Model, spec: dict[str, Any], ctx: ModelContext, path: Path, info: dict[str, Any]
) -> None:
    """The kept model in its native format plus what rebuilding it needs (spec, labels).

    Written to a sibling folder and renamed into place, so a kill leaves the old model or the
    new one, never half of either.
    """
    import shutil
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    final, path = path, Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
    path.chmod(0o755)
    model.save(path)
    meta = {
        "spec": spec,
        "n_classes": ctx.n_classes,
        "label_names": list(ctx.label_names),
        "seed": ctx.seed,
        **info,
    }
    (path / MODEL_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    if final.exists():
        old = final.with_name(f".{final.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)
        path.rename(final)
        shutil.rmtree(old)
    else:
        path.rename(final)


def load_model(path: Path, cache_dir: Path) -> tuple[Model, dict[str, Any]]:
    """A saved model, ready to predict, and its metadata (task, label names, tokenizer)."""
    from alrun.errors import AlrunError

    meta_file = path / MODEL_FILE
    if not meta_file.exists():
        raise AlrunError(
            f"{path} holds no saved model ({MODEL_FILE} missing); give a finished run's folder"
        )
    meta = json.loads(meta_file.read_text(encoding="utf-8"))
    ctx = ModelContext(
        n_classes=meta["n_classes"],
        seed=meta["seed"],
        cache_dir=cache_dir,
        label_names=meta["label_names"],
    )
    model = build_model(ctx, meta["spec"])
    model.load(path)
    return model, meta


def expand_probs(probs: np.ndarray, classes: np.ndarray, n_classes: int) -> np.ndarray:
    """Columns for the classes a model saw -> all n_classes columns (unseen classes get 0)."""
    out = np.zeros((probs.shape[0], n_classes), dtype=np.float64)
    out[:, classes] = probs
    return out
