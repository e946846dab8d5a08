"""Quality floors of the neural candidates: each one, trained on a fixed slice, must reach a
score well above chance on held-out data. Moved here from the test suite, which now only
proves that each candidate fits and overfits a tiny batch (tests/integration/test_models.py,
tests/integration/test_ner_models.py); these are the measurements that take minutes.

    ALRUN_DATA_DIR=../shared/data .venv/bin/python benchmarks/quality_floors.py [--only NAME ...]

The same slices and thresholds the suite used:

- BBC News: a fixed permutation (seed 7) of all articles, the first 60 to train on and the next
  100 to test on; test accuracy >= 0.8 for minilm_embed_centroid, minilm_embed_logreg and
  minilm_finetune (2 epochs, 64 tokens). Chance is 0.2.
- CoNLL-2003: the first 600 sentences of train.txt, the first 300 of test.txt, IOB2 tags;
  entity micro F1 (seqeval) >= 0.55 for spacy_ner (6 epochs) and >= 0.45 for minilm_token_cls
  (2 epochs, 64 sub-words); measured at 0.69-0.73 (spaCy, seeds 0-2) and 0.60 (MiniLM, seeds
  0-1); untrained models score ~0.

Each check also asserts the shape of the predictions (probabilities summing to 1, masks,
best paths). One JSON line per check on stdout (score, floor, seconds, ok); exit status 1 if
any check misses its floor. About 2 minutes on a 2-core machine (AMD EPYC, float32);
2026-12-02: accuracy 0.95 / 0.95 / 0.89 (centroid, logreg, finetune), entity F1 0.68 (spaCy),
0.60 (MiniLM).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

LABELS = ["business", "entertainment", "politics", "sport", "tech"]
TAGS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]

# (spec, floor): small, fast settings; the YAML defaults are for real runs
BBC = [
    ({"name": "minilm_embed_centroid"}, 0.8),
    ({"name": "minilm_embed_logreg"}, 0.8),
    ({"name": "minilm_finetune", "epochs": 2, "max_length": 64}, 0.8),
]
CONLL = [
    ({"name": "spacy_ner", "epochs": 6, "min_steps": 0}, 0.55),
    ({"name": "minilm_token_cls", "epochs": 2, "min_steps": 0, "max_length": 64}, 0.45),
]


def bbc_split(data: Path) -> tuple[tuple[list[str], np.ndarray], tuple[list[str], np.ndarray]]:
    """60 articles to train on, 100 to test on: a fixed permutation (seed 7) of all of them."""
    with (data / "bbc-news" / "bbc-news.jsonl").open(encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    idx = np.random.default_rng(7).permutation(len(rows))

    def take(ii):
        return [rows[i]["text"] for i in ii], np.array([LABELS.index(rows[i]["label"]) for i in ii])

    return take(idx[:60]), take(idx[60:160])


def conll_slice(data: Path) -> dict[str, tuple[list[list[str]], list[np.ndarray]]]:
    """The first 600 train sentences and the first 300 test sentences, IOB2 tag ids."""
    from alrun.data import read_conll

    index = {n: i for i, n in enumerate(TAGS)}

    def flat(name: str, n: int):
        docs = read_conll(data / "conll2003" / f"{name}.txt")
        sents = [(toks, tags) for _, ss in docs for _, toks, tags in ss][:n]
        return [t for t, _ in sents], [np.array([index[x] for x in g]) for _, g in sents]

    return {"train": flat("train", 600), "test": flat("test", 300)}


def check_bbc(spec: dict[str, Any], data: Path, cache: Path) -> float:
    from alrun.models import ModelContext, build_model

    (tr_x, tr_y), (te_x, te_y) = bbc_split(data)
    ctx = ModelContext(n_classes=5, seed=0, cache_dir=cache, corpus=tr_x + te_x)
    model = build_model(ctx, spec)
    model.fit(tr_x, tr_y)
    probs = model.predict(te_x).probs
    assert probs.shape == (100, 5), probs.shape
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    return float((probs.argmax(axis=1) == te_y).mean())


def check_conll(spec: dict[str, Any], data: Path, cache: Path) -> float:
    from seqeval.metrics import f1_score

    from alrun.models import ModelContext, build_model

    sl = conll_slice(data)
    (tr_x, tr_y), (te_x, te_y) = sl["train"], sl["test"]
    ctx = ModelContext(n_classes=len(TAGS), seed=0, cache_dir=cache, label_names=TAGS)
    model = build_model(ctx, spec)
    model.fit(tr_x, tr_y)
    preds = model.predict(te_x)
    lengths = np.array([len(s) for s in te_x])  # shapes and masks: tests/integration
    decoded = [[TAGS[k] for k in preds.probs[i, :n].argmax(axis=1)] for i, n in enumerate(lengths)]
    gold = [[TAGS[k] for k in y] for y in te_y]
    return float(f1_score(gold, decoded))


CHECKS: dict[str, tuple[Callable[..., float], dict[str, Any], float, str]] = {
    **{s["name"]: (check_bbc, s, f, "accuracy (BBC, 60 -> 100 articles)") for s, f in BBC},
    **{s["name"]: (check_conll, s, f, "entity F1 (CoNLL, 600 -> 300 sentences)") for s, f in CONLL},
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--only", nargs="+", choices=sorted(CHECKS), help="run these checks (default: all)"
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=Path(os.environ.get("ALRUN_DATA_DIR", "data")),
        help="the data folder (default: $ALRUN_DATA_DIR or data/)",
    )
    parser.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="embedding cache folder (default: a temporary folder, deleted at the end)",
    )
    parser.add_argument("--out", type=Path, help="also write the JSON lines to this file")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("ALRUN_PROGRESS", "0")

    lines, failed = [], []
    with tempfile.TemporaryDirectory(prefix="alrun-floors-") as tmp:
        cache = args.cache or Path(tmp)
        for name in args.only or list(CHECKS):
            check, spec, floor, metric = CHECKS[name]
            t0 = time.perf_counter()
            try:
                score, error = check(spec, args.data, cache), None
            except AssertionError as e:  # a shape or normalisation check
                score, error = None, str(e) or "assertion failed"
            ok = score is not None and score >= floor
            line = {
                "model": name,
                "spec": spec,
                "metric": metric,
                "score": None if score is None else round(score, 4),
                "floor": floor,
                "ok": ok,
                "seconds": round(time.perf_counter() - t0, 1),
                **({"error": error} if error else {}),
            }
            print(json.dumps(line), flush=True)
            lines.append(line)
            if not ok:
                failed.append(name)
    if args.out:
        args.out.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    if failed:
        print(f"below the floor: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
