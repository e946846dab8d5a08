"""The evaluation sample (eval.size) in a real simulated run on the BBC slice: reported each
round with its interval next to the test split, and never trained on, queried or tuned on."""

from __future__ import annotations

import pytest
from test_runs import jsonl

from alrun.heldout import draw

pytestmark = pytest.mark.slow
FAST = [
    "candidates=[tfidf_logreg]",
    "loop.initial_strategy=random",  # no encoder: nothing to embed
    "strategy=margin",
    "loop.budget=30",
    "logger=none",
]


def _pool_size(bbc_slice) -> int:
    """The slice's pool as the run reads it (after duplicates and the test split)."""
    from hydra import compose, initialize_config_dir

    from alrun.cli import load_data
    from alrun.config import CONF_DIR, register_schema

    register_schema()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=[*FAST, f"data_dir={bbc_slice}"])
    return len(load_data(cfg)[0].pool)


def test_an_evaluation_sample_is_reported_with_its_interval_and_never_learned_from(
    run_alrun, bbc_slice
):
    run = run_alrun(*FAST, "eval.size=40")
    rounds = jsonl(run / "rounds.jsonl")
    assert [r["labeled"] for r in rounds] == [10, 20, 30]
    for r in rounds:
        assert r["heldout"] == "test split"  # the slice has a test split: it stays the test
        ev = r["eval"]
        assert ev["n"] == 40 and ev["level"] == 0.95
        for m in ("accuracy", "macro_f1"):
            assert 0 <= ev[f"{m}_low"] <= ev[m] <= ev[f"{m}_high"] <= 1
        assert ev["accuracy_high"] - ev["accuracy_low"] > 0.05  # 40 items: a wide interval
    held = set(draw(_pool_size(bbc_slice), 40, seed=0).tolist())
    labeled = [x["index"] for x in jsonl(run / "labeled.jsonl")]
    assert len(labeled) == 30 and not set(labeled) & held  # never asked, never trained on
    sample = jsonl(run / "eval_sample.jsonl")  # what was held out, with the oracle's labels
    assert {x["index"] for x in sample} == held and all(x["label"] for x in sample)
