"""Stopping rules: when do more labels stop paying? Pure functions of what a round has.

Every round the kept model predicts a fixed random *stop set* of pool items (drawn once per
run, outside the evaluation sample; it may overlap what gets labelled, as in the papers: the
rules watch the model, not the labels). Two rules read those predictions:

- `stabilizing`: stabilizing predictions (Bloodgood and Vijay-Shanker, CoNLL 2009, "A Method
  for Stopping Active Learning Based on Stabilizing Predictions and the Need for
  User-Adjustable Stopping"): the agreement between successive rounds' kept models on the stop
  set, Cohen's kappa of their classes, or for NER the entity-level F1 of one round's entities
  against the other's (exact span and type, so a boundary or type change is a disagreement).
  It stops once the last `window` agreements are all at or above `threshold` (the paper: 0.99
  over 3 rounds, a stop set of 2,000).
- `uncertainty`: overall uncertainty (Zhu, Wang and Hovy, COLING 2008, "Multi-criteria-based
  strategy to stop active learning for data annotation"): the mean least confidence of the
  kept model over the stop set (1 - max class probability; for an NER item, its least
  confident token's 1 - max tag marginal); it stops once the last `window` values are all at
  or below `threshold`.

Each round records every rule's value and whether it would stop there (`rounds.jsonl`
`stopping`), so a report can say where each rule would have stopped a run; `loop.stop` names
the rule that ends it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from alrun.agreement import kappa
from alrun.checkpoint import decode_labels, encode_labels
from alrun.data.tags import entities
from alrun.errors import AlrunError
from alrun.strategies import Predictions
from alrun.tracking import write_atomic

RULES = ("stabilizing", "uncertainty")
STATE_FILE = "stop_set.json"  # the stop set and the last two rounds' predictions (resume)


def entity_agreement(a: Sequence[Sequence[str]], b: Sequence[Sequence[str]]) -> float:
    """Entity-level F1 of one tagging's entities against another's over the same sentences
    (symmetric: 2 |A and B| / (|A| + |B|)); a span counts only with the same boundaries and
    type. No entity on either side is full agreement (1.0)."""
    if len(a) != len(b):
        raise ValueError(f"entity agreement needs the same sentences, got {len(a)} and {len(b)}")
    both = n_a = n_b = 0
    for s, t in zip(a, b, strict=True):
        ea, eb = set(entities(s)), set(entities(t))
        both += len(ea & eb)
        n_a += len(ea)
        n_b += len(eb)
    return 1.0 if n_a + n_b == 0 else 2 * both / (n_a + n_b)


def least_confidence(preds: Predictions) -> np.ndarray:
    """Each item's least confidence: 1 - its top class probability; for sequences, that of
    its least confident token (the token a person would most likely have to correct)."""
    probs = np.asarray(preds.probs, dtype=np.float64)
    if probs.ndim == 2:
        return 1.0 - probs.max(axis=1)
    if preds.mask is None:
        raise ValueError("sequence predictions need a token mask")
    token = np.where(preds.mask, 1.0 - probs.max(axis=2), 0.0)
    return token.max(axis=1)


@dataclass(frozen=True)
class Rule:
    """A rule's settings: stop when the last `window` values are all past `threshold`."""

    name: str
    threshold: float
    window: int

    @property
    def above(self) -> bool:
        """Whether the rule waits for values at or above the threshold (else at or below)."""
        return self.name == "stabilizing"

    def holds(self, value: float | None) -> bool:
        if value is None:
            return False
        return value >= self.threshold if self.above else value <= self.threshold

    def stops(self, values: Sequence[float | None]) -> bool:
        """Whether a run whose rounds gave `values` (oldest first) stops after the last."""
        tail = values[-self.window :]
        return len(tail) == self.window and all(self.holds(v) for v in tail)


def stop_round(values: Sequence[float | None], rule: Rule) -> int | None:
    """The first round (position in `values`) after which `rule` stops; None: never."""
    for r in range(len(values)):
        if rule.stops(values[: r + 1]):
            return r
    return None


def rules_from(stopping: Mapping[str, Any], stop: Any) -> tuple[dict[str, Rule], str | None]:
    """The rules every round records (`stopping.<rule>` settings, with what `loop.stop` sets
    for its own rule) and the name of the rule that ends the run (None: the budget does).
    `stop`: null, a rule name, or {rule: NAME, threshold: X, window: K}."""
    own: dict[str, Any] = {}
    if stop is None:
        chosen = None
    elif isinstance(stop, str):
        chosen = stop
    elif isinstance(stop, Mapping):
        own = dict(stop)
        chosen = own.pop("rule", None)
        unknown = sorted(set(own) - {"threshold", "window"})
        if chosen is None or unknown:
            raise AlrunError(
                f"loop.stop={dict(stop)}: give {{rule: NAME, threshold: X, window: K}} "
                f"(rule one of {', '.join(RULES)})"
                + (f"; unknown keys {unknown}" if unknown else "")
            )
    else:
        raise AlrunError(f"loop.stop={stop!r}: give a rule name ({', '.join(RULES)}) or null")
    if chosen is not None and chosen not in RULES:
        raise AlrunError(f"loop.stop: unknown rule {chosen!r}; choose {' or '.join(RULES)}")
    rules = {}
    for name in RULES:
        cfg = {**dict(stopping.get(name) or {}), **(own if name == chosen else {})}
        where = f"loop.stop.{{}} ({name})" if name == chosen and own else f"stopping.{name}.{{}}"
        try:
            threshold, window = float(cfg["threshold"]), int(cfg["window"])
        except (KeyError, TypeError, ValueError) as e:
            raise AlrunError(
                f"stopping.{name} needs a numeric threshold and an integer window ({e}), "
                f"e.g. stopping.{name}.threshold=0.99 stopping.{name}.window=3"
            ) from e
        if window < 1:
            raise AlrunError(f"{where.format('window')}={window}: at least 1 round, e.g. 3")
        if not 0 <= threshold <= 1:
            raise AlrunError(
                f"{where.format('threshold')}={threshold}: a value in [0, 1] "
                "(agreement for stabilizing, mean least confidence for uncertainty)"
            )
        rules[name] = Rule(name, threshold, window)
    return rules, chosen


def configured(cfg: DictConfig) -> tuple[dict[str, Rule], str | None]:
    """`rules_from` a run's config (`stopping`, `loop.stop`)."""
    stop = cfg.loop.get("stop")
    if isinstance(stop, DictConfig):
        stop = OmegaConf.to_container(stop)
    stopping = OmegaConf.to_container(cfg.stopping)
    assert isinstance(stopping, dict)
    return rules_from(stopping, stop)


def draw_stop_set(
    n_pool: int, size: int, seed: int, exclude: np.ndarray | None = None
) -> np.ndarray:
    """`size` random pool items (sorted), outside `exclude` (the evaluation sample), from an
    RNG of their own, so watching a run never changes what it labels."""
    allowed = np.setdiff1d(np.arange(n_pool), [] if exclude is None else exclude)
    rng = np.random.default_rng([seed, 17])
    return np.sort(rng.choice(allowed, size=min(size, len(allowed)), replace=False))


def agreement(task: str, now: Any, before: Any, label_names: Sequence[str]) -> float:
    """Agreement of two rounds' decoded predictions of the stop set: kappa of classes, or
    the entity agreement of their tag sequences (items' sentences flattened)."""
    if task != "ner":
        return kappa(now, before)

    def names(pred: Any) -> list[list[str]]:
        return [[label_names[t] for t in s] for item in pred for s in item]

    return entity_agreement(names(now), names(before))


@dataclass
class Watch:
    """One run's stopping rules: the stop set, the previous round's predictions on it and
    each rule's values so far. `state_dir` keeps the last two rounds' predictions so a resumed
    run compares with the round it resumes after."""

    task: Any
    label_names: Sequence[str]
    items: np.ndarray  # the stop set's pool indices
    rules: dict[str, Rule]
    stop: str | None  # the rule that ends the run
    state_dir: Path | None = None
    values: dict[str, list[float | None]] = field(default_factory=dict)
    previous: dict[int, Any] = field(default_factory=dict)  # round -> decoded predictions

    def resume(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Restore the values of the rounds already run and the last one's predictions."""
        self.values = {
            name: [((r.get("stopping") or {}).get(name) or {}).get("value") for r in rows]
            for name in self.rules
        }
        if not rows or self.state_dir is None:
            return
        path = self.state_dir / STATE_FILE
        last = int(rows[-1]["round"])
        if path.is_file():
            state = json.loads(path.read_text(encoding="utf-8"))
            if state.get("items") == self.items.tolist():
                saved = {int(k): v for k, v in state.get("predictions", {}).items()}
                if last in saved:
                    self.previous = {last: decode_labels(saved[last], self.task.name == "ner")}

    def observe(self, r: int, preds: Predictions, decoded: Any) -> tuple[dict[str, Any], bool]:
        """Round r's record per rule ({value, stop}) and whether the run stops here."""
        before = self.previous.get(r - 1)
        value = {
            "stabilizing": None
            if before is None
            else agreement(self.task.name, decoded, before, self.label_names),
            "uncertainty": float(least_confidence(preds).mean()),
        }
        record: dict[str, Any] = {"stop_set": len(self.items)}
        for name, rule in self.rules.items():
            self.values.setdefault(name, []).append(value[name])
            record[name] = {"value": value[name], "stop": rule.stops(self.values[name])}
        self.previous = {r: decoded, **({r - 1: before} if before is not None else {})}
        self._save()
        return record, self.stop is not None and record[self.stop]["stop"]

    def _save(self) -> None:
        if self.state_dir is None:
            return
        state = {
            "items": self.items.tolist(),
            "predictions": {str(k): encode_labels(v) for k, v in self.previous.items()},
        }
        write_atomic(self.state_dir / STATE_FILE, json.dumps(state) + "\n")
