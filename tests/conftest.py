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
