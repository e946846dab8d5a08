"""alrun's loop with one candidate against the plain loops of small-text and modAL.

The same BBC split (seed 0), the same cached MiniLM document embeddings, the same labelled
start (10 random pool items), margin sampling in rounds of 10 up to 200 labels, and the test
accuracy of every round: only the loop differs. alrun's runs through `alrun.loop` as the CLI
does (a lone candidate: no validation; logistic regression with its C chosen by inner CV);
small-text's and modAL's fit sklearn's LogisticRegression(C=100) on the embeddings. Times are
the loop alone (embeddings loaded before the clock starts), best of `--repeat` runs.

    .venv/bin/pip install -e '.[bench]'   # small-text 1.4.1, modAL 0.4.2.1: not alrun's own
    ALRUN_DATA_DIR=../shared/data .venv/bin/python benchmarks/peers.py --out peers.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

ROUNDS = dict(initial=10, round_size=10, budget=200)


def setup(cache_dir: str, seed: int, precision: str):
    from bench import _setup  # the split, parts and context alrun's CLI would build

    cfg, parts, splits, ctx = _setup(
        cache_dir, [f"seed={seed}", "candidates=[minilm_embed_logreg]", "strategy=margin"]
    )
    from alrun.models.embeddings import PACKAGED, embedding_table

    table = embedding_table(ctx, PACKAGED, 256, 4, 32, precision)
    return cfg, parts, splits, ctx, table(splits.pool.texts), table(splits.test.texts)


def first_batch(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).choice(n, size=ROUNDS["initial"], replace=False)


def run_alrun(cfg, parts, splits, ctx, seed: int) -> tuple[list[float], float]:
    from alrun.loop import active_learning
    from alrun.oracles import Labels
    from alrun.selection import select_best

    task, pool, test = parts.task, splits.pool, splits.test
    y = pool.labels

    def train(idx, labels, r):
        return select_best(
            task, parts.candidates, ctx, [pool.texts[i] for i in idx], labels, cfg.selection
        )

    accs = []

    def evaluate(model):
        accs.append(float((model.predict(test.texts).probs.argmax(1) == test.labels).mean()))
        return {}

    t0 = time.perf_counter()
    for _ in active_learning(
        n_pool=len(pool),
        label=lambda idx: Labels(idx, y[idx], np.empty(0, dtype=np.int64)),
        train=train,
        evaluate=evaluate,
        predict=lambda sel, idx: sel.model.predict([pool.texts[i] for i in idx]),
        query=parts.query,
        initial_size=ROUNDS["initial"],
        round_size=ROUNDS["round_size"],
        budget=ROUNDS["budget"],
        rng=np.random.default_rng(seed),
        initial=first_batch(len(pool), seed),
    ):
        pass
    return accs, time.perf_counter() - t0


def run_small_text(X, y, Xt, yt, seed: int) -> tuple[list[float], float]:
    from sklearn.linear_model import LogisticRegression
    from small_text import BreakingTies, PoolBasedActiveLearner, SklearnClassifierFactory
    from small_text.data import SklearnDataset

    t0 = time.perf_counter()
    labels = np.arange(5)
    test = SklearnDataset(Xt, yt, target_labels=labels)
    factory = SklearnClassifierFactory(LogisticRegression(C=100, max_iter=1000), 5)
    train = SklearnDataset(X, y, target_labels=labels)
    learner = PoolBasedActiveLearner(factory, BreakingTies(), train)
    start = first_batch(len(y), seed)
    learner.initialize_data(start, y[start])
    accs = [float((learner.classifier.predict(test) == yt).mean())]
    while len(learner.indices_labeled) < ROUNDS["budget"]:
        q = learner.query(num_samples=ROUNDS["round_size"])
        learner.update(y[q])
        accs.append(float((learner.classifier.predict(test) == yt).mean()))
    return accs, time.perf_counter() - t0


def run_modal(X, y, Xt, yt, seed: int) -> tuple[list[float], float]:
    from modAL.models import ActiveLearner
    from modAL.uncertainty import margin_sampling
    from sklearn.linear_model import LogisticRegression

    t0 = time.perf_counter()
    start = first_batch(len(y), seed)
    rest = np.setdiff1d(np.arange(len(y)), start)
    learner = ActiveLearner(
        estimator=LogisticRegression(C=100, max_iter=1000),
        query_strategy=margin_sampling,
        X_training=X[start],
        y_training=y[start],
    )
    accs = [float(learner.score(Xt, yt))]
    labelled = len(start)
    while labelled < ROUNDS["budget"]:
        q, _ = learner.query(X[rest], n_instances=ROUNDS["round_size"])
        learner.teach(X[rest[q]], y[rest[q]])
        rest = np.delete(rest, q)
        labelled += len(q)
        accs.append(float(learner.score(Xt, yt)))
    return accs, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache-dir", default=os.environ.get("ALRUN_CACHE_DIR", ".cache/alrun"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    cfg, parts, splits, ctx, X, Xt = setup(a.cache_dir, a.seed, a.precision)
    y, yt = splits.pool.labels, splits.test.labels
    loops = {
        "alrun (minilm_embed_logreg alone)": lambda: run_alrun(cfg, parts, splits, ctx, a.seed),
        "small-text 1.4.1 (LogisticRegression C=100)": lambda: run_small_text(X, y, Xt, yt, a.seed),
        "modAL 0.4.2.1 (LogisticRegression C=100)": lambda: run_modal(X, y, Xt, yt, a.seed),
    }
    out = {"machine": platform.processor() or platform.machine(), "seed": a.seed, "loops": {}}
    with contextlib.suppress(OSError, StopIteration):
        out["machine"] = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    for name, fn in loops.items():
        try:
            runs = [fn() for _ in range(a.repeat)]
        except Exception as e:  # a peer that no longer runs on this stack: say so, go on
            out["loops"][name] = {"error": f"{type(e).__name__}: {e}"}
            print(f"{name}: {out['loops'][name]}", flush=True)
            continue
        accs = runs[0][0]
        out["loops"][name] = {
            "seconds_best": min(t for _, t in runs),
            "seconds_all": [round(t, 3) for _, t in runs],
            "accuracy@100": accs[9],
            "accuracy@200": accs[-1],
            "rounds": len(accs),
        }
        print(f"{name}: {out['loops'][name]}", flush=True)
    base = out["loops"]["small-text 1.4.1 (LogisticRegression C=100)"]["seconds_best"]
    ours = out["loops"]["alrun (minilm_embed_logreg alone)"]["seconds_best"]
    out["alrun_over_small_text"] = ours / base
    print(json.dumps(out, indent=2))
    if a.out:
        a.out.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
