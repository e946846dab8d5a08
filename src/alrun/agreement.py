"""Agreement between annotators who labelled the same items (`oracle.overlap` >= 2).

Pure functions over the web annotator's answer rows ({session, answer, label, spans}), so
they are checked by hand in tests/unit/test_agreement.py:

- multiclass: Krippendorff's alpha (nominal; any number of annotators per item, missing
  values allowed), overall and per label (that label against the rest), and Cohen's kappa,
  the mean over pairs of annotators of their kappa on the items both answered;
- NER: entity-level F1 between annotators (exact span and type, 2|A and B| / (|A| + |B|),
  pooled over pairs and items), overall and per entity type.

An accepted answer's value is its label (NER: its entities); a rejected item is the value
"reject"; an ignored one is missing (the person did not say). Two answers of an item agree when
they have the same answer and the same label or entities: only items whose answers all agree
are settled without a reviewer.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

REJECT = "(reject)"


def kappa(a: Sequence[int] | np.ndarray, b: Sequence[int] | np.ndarray) -> float:
    """Cohen's kappa of two labelings of the same items: (po - pe) / (1 - pe). Two identical
    constant labelings agree perfectly (1.0), though kappa's formula is 0/0 there."""
    x, y = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(f"kappa needs two labelings of the same items, got {len(x)} and {len(y)}")
    po = float(np.mean(x == y))
    k = int(max(x.max(), y.max())) + 1
    pe = float(np.dot(np.bincount(x, minlength=k), np.bincount(y, minlength=k))) / len(x) ** 2
    if pe >= 1.0:
        return 1.0 if po == 1.0 else 0.0
    return (po - pe) / (1 - pe)


def _entities(answer: dict[str, Any]) -> frozenset[tuple[int, int, int, str]]:
    """An NER answer's entities: (sentence, first token, last token, type)."""
    return frozenset(
        (int(s["sentence"]), int(s["token_start"]), int(s["token_end"]), str(s["label"]))
        for s in answer.get("spans") or []
    )


def value(answer: dict[str, Any], kind: str) -> Hashable | None:
    """What an answer says about its item, comparable across annotators (None: nothing)."""
    if answer["answer"] == "ignore":
        return None
    if answer["answer"] == "reject":
        return REJECT
    return answer["label"] if kind == "multiclass" else _entities(answer)


def agree(answers: Sequence[dict[str, Any]], kind: str) -> bool:
    """All answers of one item say the same (answer and label, or answer and entities)."""
    return len({(a["answer"], value(a, kind)) for a in answers}) == 1


def by_item(answers: Sequence[dict[str, Any]]) -> dict[tuple[int, int], list[dict[str, Any]]]:
    """Stored answers -> each task's (round, pool index) answers, in the order given."""
    out: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for a in answers:
        out.setdefault((a["round"], a["index"]), []).append(a)
    return out


def versions(answers: Sequence[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """An item's distinct answers, each with the sessions that gave it (what a reviewer
    sees, and Prodigy's `versions` in the export)."""
    out: list[dict[str, Any]] = []
    for a in answers:
        same = next((v for v in out if agree([v, a], kind)), None)
        if same is None:
            same = {k: a[k] for k in ("answer", "label", "spans")} | {"sessions": []}
            out.append(same)
        same["sessions"].append(a["session"])
    return out


def krippendorff_alpha(units: Sequence[Sequence[Hashable | None]]) -> float | None:
    """Nominal Krippendorff's alpha; each unit lists its annotators' values (None: missing).

    alpha = 1 - (n - 1) * sum_{c != k} o_ck / sum_{c != k} n_c n_k, with the coincidence
    matrix o_ck = sum over units with m >= 2 values of (pairs c, k in the unit) / (m - 1).
    None when no unit has two values or every value is the same category (alpha is 0/0)."""
    o: defaultdict[tuple[Hashable, Hashable], float] = defaultdict(float)
    for unit in units:
        vals = [v for v in unit if v is not None]
        m = len(vals)
        if m < 2:
            continue
        for i, j in itertools.permutations(range(m), 2):
            o[vals[i], vals[j]] += 1.0 / (m - 1)
    n_c: defaultdict[Hashable, float] = defaultdict(float)
    for (c, _), w in o.items():
        n_c[c] += w
    n = sum(n_c.values())
    expected = n * n - sum(v * v for v in n_c.values())  # sum over c != k of n_c n_k
    if n == 0 or expected <= 0:
        return None
    observed = sum(w for (c, k), w in o.items() if c != k)
    return float(1.0 - (n - 1) * observed / expected)


def _pairs(items: Sequence[Sequence[dict[str, Any]]]) -> dict[tuple[str, str], list[int]]:
    """(session a, session b) -> the items both answered (a < b)."""
    out: dict[tuple[str, str], list[int]] = defaultdict(list)
    for k, answers in enumerate(items):
        names = sorted({a["session"] for a in answers})
        for pair in itertools.combinations(names, 2):
            out[pair].append(k)
    return out


def mean_kappa(items: Sequence[Sequence[dict[str, Any]]], kind: str) -> float | None:
    """Cohen's kappa of each pair of annotators on the items both gave a value, averaged
    over the pairs (None: no pair shares two such items)."""
    scores = []
    for (a, b), shared in _pairs(items).items():
        xs, ys = [], []
        for k in shared:
            by = {x["session"]: value(x, kind) for x in items[k]}
            if by[a] is not None and by[b] is not None:
                xs.append(by[a])
                ys.append(by[b])
        if len(xs) < 2:
            continue
        codes = {v: c for c, v in enumerate(dict.fromkeys(xs + ys))}
        scores.append(kappa([codes[x] for x in xs], [codes[y] for y in ys]))
    return float(np.mean(scores)) if scores else None


def entity_f1(items: Sequence[Sequence[dict[str, Any]]], label: str | None = None) -> float | None:
    """Entity-level F1 between annotators: over every pair of accepted answers of an item,
    2 |A and B| / (|A| + |B|) pooled (exact span and type; `label`: that type's entities
    only). None when no pair marked any entity."""
    both = total = 0
    for answers in items:
        sets = [_entities(a) for a in answers if a["answer"] == "accept"]
        if label is not None:
            sets = [frozenset(e for e in s if e[3] == label) for s in sets]
        for x, y in itertools.combinations(sets, 2):
            both += 2 * len(x & y)
            total += len(x) + len(y)
    return both / total if total else None


def summarize(
    items: Sequence[Sequence[dict[str, Any]]], kind: str, labels: Sequence[str], reviewed: int
) -> dict[str, Any]:
    """One batch's (or the run's) agreement: counts, the overall measure and per label.

    `items`: each item's answers from two or more annotators; `reviewed`: decisions taken."""
    shared = [a for a in items if len({x["session"] for x in a}) >= 2]
    out: dict[str, Any] = {
        "items": len(shared),
        "disagreed": sum(not agree(a, kind) for a in shared),
        "reviewed": reviewed,
    }
    if kind == "multiclass":
        units = [[value(x, kind) for x in a] for a in shared]
        out["alpha"] = krippendorff_alpha(units)
        out["kappa"] = mean_kappa(shared, kind)
        out["per_label"] = {
            y: krippendorff_alpha([[None if v is None else v == y for v in u] for u in units])
            for y in labels
        }
    else:
        out["f1"] = entity_f1(shared)
        out["per_label"] = {y: entity_f1(shared, y) for y in labels}
    return out
