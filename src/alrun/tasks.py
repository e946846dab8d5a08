"""Tasks: what an item and its label are, how a model is fed and scored, what labels cost.

The loop, selection and runner only talk to a task, so multiclass and NER share all of them:
`fit_data` turns labelled items into model inputs, `predict` gives item-level Predictions for
strategies, `decode` turns those into predicted labels, `metrics`/`score` compare with gold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

from alrun.data import SeqDataset, TextDataset
from alrun.data.tags import entities
from alrun.errors import AlrunError
from alrun.registry import Registry
from alrun.strategies import Predictions, sequence_predictions


@dataclass
class Multiclass:
    """One label per document; selection on a validation metric, cost in documents/tokens."""

    selection_metric: str = "accuracy"
    target: float = 0.9  # test headline[0] to reach: summary's labels-to-target
    name: str = "multiclass"
    headline: tuple[str, ...] = ("accuracy", "macro_f1")  # logged, summarised, plotted

    def inputs(self, data: TextDataset, idx: Sequence[int]) -> list[str]:
        return [data.texts[i] for i in idx]

    def fit_data(self, inputs: Sequence[str], labels: np.ndarray) -> tuple[Any, Any]:
        return list(inputs), np.asarray(labels, dtype=np.int64)

    def predict(self, model: Any, inputs: Sequence[str]) -> Predictions:
        return model.predict(list(inputs))

    def decode(self, preds: Predictions, inputs: Sequence[str]) -> np.ndarray:
        return preds.probs.argmax(axis=1)

    def strata(self, labels: np.ndarray) -> np.ndarray | None:
        return np.asarray(labels, dtype=np.int64)

    def item_losses(self, preds: Predictions, gold: Any, rule: str) -> np.ndarray:
        """Per-item loss of the predicted distribution under a proper scoring rule."""
        return proper_loss(preds.probs, np.asarray(gold, dtype=np.int64), rule)

    def score(self, gold: Any, pred: Any, label_names: Sequence[str]) -> float:
        """The single number candidates are ranked by (higher is better)."""
        return float(self.metrics(gold, pred, label_names)[self.selection_metric])

    def metrics(self, gold: Any, pred: Any, label_names: Sequence[str]) -> dict[str, Any]:
        y_true = np.asarray(list(gold), dtype=np.int64)
        y_pred = np.asarray(list(pred), dtype=np.int64)
        labels = np.arange(len(label_names))
        out: dict[str, Any] = {
            "accuracy": float(accuracy_score(y_true, y_pred)),
            "macro_f1": float(
                f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)
            ),
        }
        p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
        out["per_class"] = {
            name: {
                "precision": float(p[i]),
                "recall": float(r[i]),
                "f1": float(f[i]),
                "support": int(s[i]),
            }
            for i, name in enumerate(label_names)
        }
        return out

    def cost(self, data: TextDataset, idx: np.ndarray) -> dict[str, int]:
        """Labelled amount in every unit a curve may be drawn against."""
        return {
            "documents": len(idx),
            "tokens": int(sum(len(data.texts[i].split()) for i in idx)),
        }

    def item_record(self, data: TextDataset, i: int) -> dict[str, Any]:
        """What labeled.jsonl keeps of an item, so it converts to Prodigy on its own."""
        return {"text": data.texts[i]}

    def label_record(self, label: Any, label_names: Sequence[str]) -> dict[str, Any]:
        """The label's name, so the record reads without the run's label set."""
        return {"label": label_names[int(label)]}


def proper_loss(probs: np.ndarray, gold: np.ndarray, rule: str) -> np.ndarray:
    """Row-wise loss of probs[N, C] for gold[N] classes: `log_loss` (-log p of the gold
    class, clipped at 1e-12), `brier` (squared distance to the one-hot gold), or `error`
    (0/1: what accuracy ranks by, not a proper scoring rule)."""
    rows = np.arange(len(gold))
    p = np.asarray(probs, dtype=np.float64)
    if rule == "log_loss":
        return -np.log(np.clip(p[rows, gold], 1e-12, None))
    if rule == "brier":
        onehot = np.zeros_like(p)
        onehot[rows, gold] = 1.0
        return ((p - onehot) ** 2).sum(axis=1)
    if rule == "error":
        return (p.argmax(axis=1) != gold).astype(np.float64)
    raise ValueError(f"unknown scoring rule {rule!r}; choose log_loss, brier or error")


# --------------------------------------------------------------------------- NER


def entity_scores(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> dict[str, Any]:
    """conlleval's counts over sentences of tag names: micro P/R/F1, per type, token accuracy."""
    tp: dict[str, int] = {}
    n_gold: dict[str, int] = {}
    n_pred: dict[str, int] = {}
    correct_tags = n_tokens = 0
    for g, p in zip(gold, pred, strict=True):
        if len(g) != len(p):
            raise ValueError(f"sentence of {len(g)} gold tags has {len(p)} predicted tags")
        correct_tags += sum(a == b for a, b in zip(g, p, strict=True))
        n_tokens += len(g)
        ge, pe = set(entities(g)), set(entities(p))
        for _, _, t in ge:
            n_gold[t] = n_gold.get(t, 0) + 1
        for _, _, t in pe:
            n_pred[t] = n_pred.get(t, 0) + 1
        for _, _, t in ge & pe:
            tp[t] = tp.get(t, 0) + 1

    def prf(c: int, ng: int, np_: int) -> dict[str, float]:
        p = c / np_ if np_ else 0.0
        r = c / ng if ng else 0.0
        return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0}

    out: dict[str, Any] = prf(sum(tp.values()), sum(n_gold.values()), sum(n_pred.values()))
    out["token_accuracy"] = correct_tags / n_tokens if n_tokens else 0.0
    out["per_type"] = {
        t: {**prf(tp.get(t, 0), n_gold.get(t, 0), n_pred.get(t, 0)), "support": n_gold.get(t, 0)}
        for t in sorted(set(n_gold) | set(n_pred))
    }
    return out


@dataclass
class Ner:
    """Token tags (IOB2) per sentence; an item is a document or a sentence (loop.unit)."""

    selection_metric: str = "f1"
    target: float = 0.75
    name: str = "ner"
    headline: tuple[str, ...] = ("f1", "precision", "recall", "token_accuracy")

    def inputs(self, data: SeqDataset, idx: Sequence[int]) -> list[list[list[str]]]:
        return [data.sentences[i] for i in idx]

    def fit_data(
        self, inputs: Sequence[Any], labels: Sequence[Any] | np.ndarray
    ) -> tuple[Any, Any]:
        """Items -> sentences: models always learn from sentences, whatever the unit."""
        sents = [s for item in inputs for s in item]
        tags = [t for item in labels for t in item]
        return sents, tags

    def predict(self, model: Any, inputs: Sequence[Any]) -> Predictions:
        """Sentence predictions joined per item (independent sentences: log-probs add up)."""
        sents = [s for item in inputs for s in item]
        preds = model.predict(sents)
        if len(sents) == len(inputs):  # one sentence per item: already item-level
            return preds
        lengths = preds.mask.sum(axis=1)
        marg, best, lp = [], [], []
        k = 0
        for item in inputs:
            rows = range(k, k + len(item))
            marg.append(np.concatenate([preds.probs[j, : lengths[j]] for j in rows]))
            if preds.best is not None:
                best.append(np.concatenate([preds.best[j, : lengths[j]] for j in rows]))
            if preds.seq_logprob is not None:
                lp.append(float(preds.seq_logprob[k : k + len(item)].sum()))
            k += len(item)
        return sequence_predictions(
            marg, lp if preds.seq_logprob is not None else None, best or None
        )

    def decode(self, preds: Predictions, inputs: Sequence[Any]) -> list[list[np.ndarray]]:
        """The best path where the model gives one (Viterbi), else per-token argmax."""
        path = preds.best if preds.best is not None else preds.probs.argmax(axis=2)
        out = []
        for i, item in enumerate(inputs):
            cuts = np.cumsum([len(s) for s in item])[:-1]
            out.append(np.split(path[i, : sum(len(s) for s in item)], cuts))
        return out

    def strata(self, labels: Any) -> None:
        return None

    def item_losses(self, preds: Predictions, gold: Any, rule: str) -> np.ndarray:
        """Per-item mean over its tokens of the tag marginals' loss (proper scoring rule)."""
        out = np.empty(len(gold))
        for i, item in enumerate(gold):
            tags = np.concatenate([np.asarray(s, dtype=np.int64) for s in item])
            out[i] = proper_loss(preds.probs[i, : len(tags)], tags, rule).mean()
        return out

    def score(self, gold: Any, pred: Any, label_names: Sequence[str]) -> float:
        return float(self.metrics(gold, pred, label_names)[self.selection_metric])

    def metrics(self, gold: Any, pred: Any, label_names: Sequence[str]) -> dict[str, Any]:
        g = [[label_names[t] for t in s] for item in gold for s in item]
        p = [[label_names[t] for t in s] for item in pred for s in item]
        return entity_scores(g, p)

    def cost(self, data: SeqDataset, idx: np.ndarray) -> dict[str, int]:
        return {
            "documents": len({data.doc_ids[i] for i in idx}),
            "sentences": int(sum(len(data.sentences[i]) for i in idx)),
            "tokens": int(sum(len(s) for i in idx for s in data.sentences[i])),
        }

    def item_record(self, data: SeqDataset, i: int) -> dict[str, Any]:
        """What labeled.jsonl keeps of an item: its tokens per sentence and, when the pool has
        the original text (raw text, Prodigy tasks), each sentence's text byte for byte
        (`text`), its tokens' [start, end] in that text (`offsets`), the document (`doc`) and
        where each sentence starts in it (`doc_offsets`), so exports point into the original.
        Pre-tokenised items (CoNLL) keep only their tokens, as they always did."""
        rec: dict[str, Any] = {"tokens": data.sentences[i]}
        if data.source is None:
            return rec
        src = data.source[i]
        sents = [src.sentence(s) for s in range(len(src.sentences))]
        return {
            **rec,
            "text": [text for text, _ in sents],
            "offsets": [[[a, b] for a, b in offsets] for _, offsets in sents],
            "doc": src.doc_id,
            "doc_offsets": [src.offset + a for a, _ in src.sentences],
        }

    def label_record(self, label: Any, label_names: Sequence[str]) -> dict[str, Any]:
        """IOB2 tag names per sentence, beside the item's tokens."""
        return {"tags": [[label_names[t] for t in s] for s in label]}


TASKS: Registry = Registry("task", "task")


@TASKS.register
def multiclass(selection_metric: str = "accuracy", target: float = 0.9) -> Multiclass:
    if selection_metric not in ("accuracy", "macro_f1"):
        raise AlrunError(f"task.selection_metric={selection_metric!r}; choose accuracy or macro_f1")
    return Multiclass(selection_metric=selection_metric, target=target)


@TASKS.register
def ner(selection_metric: str = "f1", target: float = 0.75) -> Ner:
    if selection_metric not in ("f1", "precision", "recall", "token_accuracy"):
        raise AlrunError(
            f"task.selection_metric={selection_metric!r}; choose f1, precision, recall "
            "or token_accuracy"
        )
    return Ner(selection_metric=selection_metric, target=target)
