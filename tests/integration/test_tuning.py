"""selection.trials: Optuna tuning inside a round, on validation data only, reproducible."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_runs import jsonl

# Tuning in the default run: tests/unit/test_loop.py (trials reproducible, per seed)
pytestmark = [pytest.mark.slow, pytest.mark.full]
LABELS = ["business", "entertainment", "politics", "sport", "tech"]


def _data(tmp_path: Path, bbc_slice: Path) -> tuple[Path, Path, Path]:
    """The slice as a pool file, and two test files with the same texts: one with the gold
    labels, one with every label rotated to another class (a test set no tuner should see)."""
    rows = jsonl(bbc_slice / "bbc-news" / "bbc-news.jsonl")
    test, pool = rows[:60], rows[60:]
    d = tmp_path / "data"
    d.mkdir()
    (d / "pool.jsonl").write_text("".join(json.dumps(r) + "\n" for r in pool))
    (d / "test_gold.jsonl").write_text("".join(json.dumps(r) + "\n" for r in test))
    rotated = [{**r, "label": LABELS[(LABELS.index(r["label"]) + 1) % 5]} for r in test]
    (d / "test_rotated.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rotated))
    return d, d / "test_gold.jsonl", d / "test_rotated.jsonl"


def _run(run_alrun, name: str, data: Path, test: Path) -> list:
    run = run_alrun(
        "dataset=custom_file",
        "dataset.path=pool.jsonl",
        f"dataset.test_path={test}",
        "dataset.id_field=id",
        f"dataset.labels=[{','.join(LABELS)}]",
        "candidates=[tfidf_logreg]",
        "loop.initial_strategy=random",  # no encoder: nothing to embed
        "strategy=margin",
        "selection.trials=5",
        "loop.budget=30",
        "logger=none",
        name=name,
        data=data,
    )
    return jsonl(run / "rounds.jsonl")


def test_tuning_is_reproducible_changes_params_and_never_reads_test(tmp_path, bbc_slice, run_alrun):
    data, gold, rotated = _data(tmp_path, bbc_slice)
    a = _run(run_alrun, "a", data, gold)
    again = _run(run_alrun, "again", data, gold)
    poisoned = _run(run_alrun, "poisoned", data, rotated)
    tuned = [r["tuned"]["tfidf_logreg"] for r in a]
    assert set(tuned[0]) == {"ngram_max", "sublinear_tf", "max_features"}
    assert len({json.dumps(t, sort_keys=True) for t in tuned}) > 1  # re-tuned as labels grow
    # same seed: the same trials, the same choices
    keys = ("labeled", "tuned", "validation", "chosen")
    assert [{k: r[k] for k in keys} for r in again] == [{k: r[k] for k in keys} for r in a]
    # test labels rotated: every tuning and selection decision identical, test scores not
    assert [{k: r[k] for k in keys} for r in poisoned] == [{k: r[k] for k in keys} for r in a]
    assert all(p["test"] != r["test"] for p, r in zip(poisoned, a, strict=True))  # it was read
