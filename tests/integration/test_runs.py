"""Real `alrun` runs on a slice of BBC News: files, W&B offline runs, sweeps, reproducibility."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from alrun.tracking import flatten, read_wandb_run, wandb_offline_runs

ROOT = Path(__file__).resolve().parents[2]
ALRUN = [sys.executable, "-c", "from alrun.cli import main; main()"]

pytestmark = pytest.mark.slow
# One window of 64 tokens per article (the YAML: up to 4 of 256) for the document vectors and
# every embedding candidate alike, one cache entry: embedding the slice at the defaults is the
# largest single cost of a run here (~45 s on 2 cores), paid by the `full` runs below.
SHORT_EMBEDDINGS = [
    f"{key}.{param}={value}"
    for key in (
        "features",
        "models.minilm_tfidf_logreg",
        "models.minilm_embed_logreg",
        "models.minilm_embed_centroid",
    )
    for param, value in (("max_length", 64), ("max_windows", 1))
]


def alrun(*args: str, data: Path, cache: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "ALRUN_DATA_DIR": str(data),
        "ALRUN_CACHE_DIR": str(cache),
        "HF_HUB_OFFLINE": "1",
        "WANDB_SILENT": "true",
    }
    proc = subprocess.run(
        [*ALRUN, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"alrun failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_two_real_rounds_write_files_and_wandb_history(run_alrun):
    run = run_alrun("loop.budget=20", *SHORT_EMBEDDINGS)  # the default experiment
    rounds = jsonl(run / "rounds.jsonl")
    assert [r["labeled"] for r in rounds] == [10, 20]
    default = {"minilm_tfidf_logreg", "minilm_embed_logreg", "minilm_embed_centroid", "ensemble"}
    for r in rounds:
        assert set(r["validation"]) == set(r["validation_loss"]) == default
        assert r["validation_method"] == "5-fold CV x2"  # repeated while the set is small
    for r in rounds:  # the lowest validation log-loss is kept (no incumbent rule by default)
        assert r["chosen"] == min(r["validation_loss"], key=r["validation_loss"].get)
        assert r["why"].startswith("lowest validation log_loss")
    for r in rounds:
        assert 0.2 < r["test"]["accuracy"] <= 1.0
        assert set(r["test"]["per_class"]) == {
            "business",
            "entertainment",
            "politics",
            "sport",
            "tech",
        }
        assert r["cost"]["documents"] == r["labeled"] and r["cost"]["tokens"] > 0
        assert r["seconds"]["train"] > 0
    labeled = jsonl(run / "labeled.jsonl")
    assert [x["round"] for x in labeled] == [0] * 10 + [1] * 10
    assert len({x["index"] for x in labeled}) == 20  # no document labelled twice
    assert (run / "learning_curve.png").stat().st_size > 10_000
    assert (run / ".hydra" / "config.yaml").exists()

    [wandb_file] = wandb_offline_runs(run / "wandb")
    w = read_wandb_run(wandb_file)
    history = [h for h in w["history"] if "labeled" in h and "test/accuracy" in h]
    assert [h["labeled"] for h in history] == [10, 20]
    assert [h["test/accuracy"] for h in history] == [r["test"]["accuracy"] for r in rounds]
    assert w["summary"]["final/test_accuracy"] == rounds[-1]["test"]["accuracy"]
    assert "strategy:diverse_margin" in w["tags"] and w["config"]["loop"]["budget"] == 20


# also in the default run: a resumed run equals an uninterrupted one (test_resume.py), runs
# with test labels changed take the same decisions (test_tuning.py, full)
@pytest.mark.full
def test_same_command_twice_is_identical(run_alrun):
    args = ("loop.budget=30", "strategy=entropy", "logger=none", *SHORT_EMBEDDINGS)
    a, b = run_alrun(*args, name="a"), run_alrun(*args, name="b")
    assert (a / "labeled.jsonl").read_text() == (b / "labeled.jsonl").read_text()
    assert [r["test"] for r in jsonl(a / "rounds.jsonl")] == [
        r["test"] for r in jsonl(b / "rounds.jsonl")
    ]
    c = run_alrun(*args, "seed=1", name="c")
    assert (a / "labeled.jsonl").read_text() != (c / "labeled.jsonl").read_text()


# sweeps in the default run: test_report_runs.py
@pytest.mark.full
def test_multirun_sweep_gives_one_wandb_run_per_job_in_one_group(run_alrun):
    sweep = run_alrun(
        "-m",
        "strategy=random,margin",
        "seed=0,1",
        "loop.budget=30",
        *SHORT_EMBEDDINGS,
        name="sweep",
    )
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir() and p.name.isdigit())
    assert len(jobs) == 4
    groups, labelled, summary_keys, varied = set(), [], [], set()
    for job in jobs:
        rounds = jsonl(job / "rounds.jsonl")
        [wandb_file] = wandb_offline_runs(job / "wandb")
        w = read_wandb_run(wandb_file)
        hist = [h for h in w["history"] if "test/accuracy" in h]
        assert [h["labeled"] for h in hist] == [10, 20, 30]
        for h, r in zip(hist, rounds, strict=True):  # every per-round number, as logged
            # a value the round has not (the first round's stabilizing agreement) is not logged
            flat = {k: v for k, v in flatten(r).items() if k != "queried" and v is not None}
            assert {k: h[k] for k in flat} == flat
        groups.add(w["group"])
        labelled.append((job / "labeled.jsonl").read_text())
        # what a comparison needs: the varying overrides as config keys, tags, summary keys
        over = w["config"]["overrides"]
        varied.add((over["strategy"], over["seed"]))
        assert {"dataset:bbc_news", "task:multiclass", f"strategy:{over['strategy']}"} <= set(
            w["tags"]
        )
        summary_keys.append(
            sorted(k for k in w["summary"] if k.split("/")[0] in ("final", "aulc", "target"))
        )
        assert w["summary"]["target/accuracy"] == 0.9
    assert len(groups) == 1 and None not in groups and "" not in groups
    assert len(set(labelled)) == 4  # strategies and seeds really differ
    assert varied == {(s, seed) for s in ("random", "margin") for seed in ("0", "1")}
    assert summary_keys[0] and all(k == summary_keys[0] for k in summary_keys)
    assert "target/labels" in summary_keys[0]


# the default experiment (typiclust, diverse_margin, the vote) runs in
# test_two_real_rounds_write_files_and_wandb_history; the pure functions in tests/unit
@pytest.mark.full
def test_cold_start_diverse_batches_and_a_kept_vote(run_alrun, bbc_slice, cache_dir):
    """loop.initial_strategy=typiclust picks the first batch from the pool's document vectors
    (the same picks as the pure function on the cached embeddings); diverse_margin chooses
    the next; the ensemble competes, and whatever is kept is saved and predicts."""
    from hydra import compose, initialize_config_dir

    from alrun.config import CONF_DIR, register_schema
    from alrun.data import load_splits
    from alrun.models import ModelContext
    from alrun.models.embeddings import embedding_table
    from alrun.strategies import cold_start

    args = [
        "loop.budget=30",
        "loop.initial_strategy=typiclust",
        "strategy=diverse_margin",
        "candidates=[minilm_embed_logreg,minilm_embed_centroid,ensemble]",
        "logger=none",
        *(a for a in SHORT_EMBEDDINGS if "minilm_tfidf_logreg" not in a),  # not a candidate
    ]
    run = run_alrun(*args)
    register_schema()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=[*args, f"data_dir={bbc_slice}"])
    splits = load_splits(cfg, cfg.dataset, cfg.seed)
    ctx = ModelContext(5, 0, cache_dir, corpus=splits.pool.texts + splits.test.texts)
    feats = embedding_table(ctx, cfg.features.encoder, 64, 1, 32, cfg.features.precision)
    want = cold_start(feats(splits.pool.texts), 10, np.random.default_rng([0, 7]), "typiclust")
    labeled = jsonl(run / "labeled.jsonl")
    assert [x["index"] for x in labeled if x["round"] == 0] == want.tolist()
    rounds = jsonl(run / "rounds.jsonl")
    assert [r["labeled"] for r in rounds] == [10, 20, 30]
    assert all("ensemble" in r["validation_loss"] for r in rounds)
    meta = json.loads((run / "model" / "alrun-model.json").read_text())
    assert meta["candidate"] == rounds[-1]["chosen"]
    texts = "".join(json.dumps({"text": t}) + "\n" for t in splits.test.texts[:5])
    out = subprocess.run(
        [sys.executable, "-c", "from alrun.predict import main; main()", str(run)],
        input=texts,
        capture_output=True,
        text=True,
        env={**os.environ, "ALRUN_CACHE_DIR": str(cache_dir), "HF_HUB_OFFLINE": "1"},
        check=True,
    )
    assert len(out.stdout.splitlines()) == 5
