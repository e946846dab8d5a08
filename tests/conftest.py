"""Shared fixtures: the real data directory (../shared/data in CI) and small real slices of it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("ALRUN_PROGRESS", "0")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    d = Path(os.environ.get("ALRUN_DATA_DIR", ROOT / "data")).resolve()
    if not (d / "bbc-news" / "bbc-news.jsonl").exists():
        msg = f"BBC News data not found under {d}; set ALRUN_DATA_DIR (CI: ../shared/data)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return d


@pytest.fixture(scope="session")
def bbc_rows(data_dir: Path) -> list[dict]:
    with (data_dir / "bbc-news" / "bbc-news.jsonl").open(encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="session")
def bbc_slice(tmp_path_factory, bbc_rows) -> Path:
    """A fixed random 300-article slice of BBC News (all 5 classes), as a JSONL data dir."""
    d = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(1234)
    rows = [bbc_rows[i] for i in np.sort(rng.choice(len(bbc_rows), 300, replace=False))]
    (d / "bbc-news").mkdir()
    with (d / "bbc-news" / "bbc-news.jsonl").open("w", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    return d


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    """One embedding cache for the whole session, so the slice is embedded once."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def conll(data_dir: Path) -> dict[str, list]:
    """CoNLL-2003 train/test as alrun reads them: lists of (doc_id, [(where, tokens, tags)])."""
    from alrun.data import read_conll

    return {s: read_conll(data_dir / "conll2003" / f"{s}.txt") for s in ("train", "test")}


@pytest.fixture(scope="session")
def conll_slice(conll) -> dict[str, object]:
    """Fixed slices as model inputs: 600 train sentences, 300 test sentences, IOB2 tag ids."""
    names = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
    index = {n: i for i, n in enumerate(names)}

    def flat(docs, n):
        sents = [(toks, tags) for _, ss in docs for _, toks, tags in ss][:n]
        return [t for t, _ in sents], [np.array([index[x] for x in g]) for _, g in sents]

    return {"names": names, "train": flat(conll["train"], 600), "test": flat(conll["test"], 300)}
