"""Reference point for NER learning curves: a candidate trained on ALL of CoNLL-2003 train.

    ALRUN_DATA_DIR=../shared/data .venv/bin/python benchmarks/ner_full_train.py [crf_ner] [N]

Reads the data with alrun's reader, trains the candidate with its conf/model defaults (on the
first N train sentences when N is given: one fit's cost at a round's size), scores test.txt
with alrun's conlleval-style metrics, and prints one JSON line (seconds included).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from omegaconf import OmegaConf

from alrun.config import CONF_DIR
from alrun.data import read_conll
from alrun.models import ModelContext, build_model
from alrun.tasks import Ner

NAMES = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]


def sentences(path: Path) -> tuple[list[list[str]], list[list[int]]]:
    index = {n: i for i, n in enumerate(NAMES)}
    pairs = [(toks, tags) for _, sents in read_conll(path) for _, toks, tags in sents]
    return [t for t, _ in pairs], [[index[x] for x in g] for _, g in pairs]


def main() -> None:
    name = sys.argv[1] if len(sys.argv) > 1 else "crf_ner"
    limit = int(sys.argv[2]) if len(sys.argv) > 2 else None  # first N train sentences
    data = Path(os.environ.get("ALRUN_DATA_DIR", "data")) / "conll2003"
    spec = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "model" / f"{name}.yaml"))
    for key in ("tasks", "search", "validation"):  # what the runner keeps to itself
        spec.pop(key, None)
    train_x, train_y = sentences(data / "train.txt")
    test_x, test_y = sentences(data / "test.txt")
    all_train = train_x  # the pool: what minilm_crf_ner's feature map is fitted on
    train_x, train_y = train_x[:limit], train_y[:limit]
    ctx = ModelContext(
        n_classes=len(NAMES),
        seed=0,
        cache_dir=Path(os.environ.get("ALRUN_CACHE_DIR", ".cache/alrun")),
        label_names=NAMES,
        pool_sentences=all_train,
        test_sentences=test_x,
    )
    model = build_model(ctx, spec)
    t0 = time.perf_counter()
    model.fit(train_x, train_y)
    t1 = time.perf_counter()
    task = Ner()
    items = [[s] for s in test_x]
    pred = task.decode(task.predict(model, items), items)
    t2 = time.perf_counter()
    scores = task.metrics([[g] for g in test_y], pred, NAMES)
    print(
        json.dumps(
            {
                "model": name,
                "train_sentences": len(train_x),
                "test_sentences": len(test_x),
                "fit_seconds": round(t1 - t0, 1),
                "predict_seconds": round(t2 - t1, 1),
                **{k: round(scores[k], 4) for k in ("f1", "precision", "recall", "token_accuracy")},
                "per_type_f1": {t: round(v["f1"], 4) for t, v in scores["per_type"].items()},
            }
        )
    )


if __name__ == "__main__":
    main()
