"""Real NER runs on CoNLL-2003 (the CRF, offline): files, costs, W&B history, reproducibility."""

from __future__ import annotations

import pytest
from test_runs import alrun, jsonl  # same folder: pytest puts it on sys.path

from alrun.tracking import read_wandb_run, wandb_offline_runs

pytestmark = pytest.mark.slow

SMALL = (
    "dataset=conll2003",
    "loop.unit=sentence",
    "loop.initial_size=40",
    "loop.round_size=60",
    "loop.budget=160",
    "models.crf_ner.max_iterations=40",
)


def test_sentence_unit_run_writes_costs_metrics_and_wandb(data_dir, run_alrun):
    # 1,500 of the 12,691 pool sentences scored a round (scoring them all: the full runs)
    run = run_alrun(*SMALL, "loop.pool_sample=1500", data=data_dir)
    rounds = jsonl(run / "rounds.jsonl")
    assert [r["labeled"] for r in rounds] == [40, 100, 160]
    for r in rounds:
        assert r["cost"]["sentences"] == r["labeled"]
        assert 0 < r["cost"]["documents"] <= r["labeled"] < r["cost"]["tokens"]
        assert set(r["test"]["per_type"]) == {"PER", "ORG", "LOC", "MISC"}
        assert 0.0 < r["test"]["precision"] <= 1 and 0.8 < r["test"]["token_accuracy"] <= 1
        assert r["chosen"] == "crf_ner" and r["validation_method"] == "none"  # nothing to choose
    assert rounds[-1]["test"]["f1"] > 0.3  # 160 CRF sentences: far above nothing
    labeled = jsonl(run / "labeled.jsonl")
    assert len({x["id"] for x in labeled}) == 160  # no sentence bought twice
    assert all(len(x["tags"]) == 1 and x["tags"][0] for x in labeled)
    [wandb_file] = wandb_offline_runs(run / "wandb")
    w = read_wandb_run(wandb_file)
    history = [h for h in w["history"] if "test/f1" in h]
    assert [h["test/f1"] for h in history] == [r["test"]["f1"] for r in rounds]
    assert [h["cost/tokens"] for h in history] == [r["cost"]["tokens"] for r in rounds]
    assert w["summary"]["final/test_f1"] == rounds[-1]["test"]["f1"]
    assert "strategy:mnlp" in w["tags"] and "task:ner" in w["tags"]


# document items in the default run: tests/unit/test_ner.py; an NER run: the test above
@pytest.mark.full
def test_document_unit_same_seed_same_sequence(data_dir, run_alrun):
    args = (
        "experiment=seed_study",
        "candidates=ner",  # the plain CRF: this test is about the document unit, not features
        "loop.initial_size=4",
        "loop.round_size=3",
        "loop.budget=10",
        "models.crf_ner.max_iterations=30",
        "loop.pool_sample=100",  # score 100 random unlabelled documents a round, not all 946
        "logger=none",
    )
    runs = [run_alrun(*args, name=name, data=data_dir) for name in ("a", "b")]
    a, b = (jsonl(run / "labeled.jsonl") for run in runs)
    assert a == b and len(a) == 10
    assert {t for x in a for s in x["tags"] for t in s} <= {
        "O",
        "B-PERSON",
        "I-PERSON",
        "B-ORG",
        "I-ORG",
        "B-LOCATION",
        "I-LOCATION",
    }
    ra, rb = (jsonl(run / "rounds.jsonl") for run in runs)
    assert [r["test"] for r in ra] == [r["test"] for r in rb]
    assert [r["cost"]["documents"] for r in ra] == [4, 7, 10]


# in-process: test_bad_input.py::test_bad_input_ends_in_one_message_and_writes_nothing
# [task_strategy_mismatch]; the exit-code contract: test_bad_input_exits_2_with_one_error_line
@pytest.mark.full
def test_ner_run_with_a_multiclass_strategy_fails_before_training(tmp_path, data_dir, cache_dir):
    proc = alrun(
        "dataset=conll2003",
        "strategy=margin",
        f"hydra.run.dir={tmp_path / 'r'}",
        data=data_dir,
        cache=cache_dir,
        check=False,
    )
    assert proc.returncode == 2
    assert "strategy 'margin' supports tasks ['multiclass'], not 'ner'" in proc.stderr
    assert not (tmp_path / "r" / "rounds.jsonl").exists()
