"""`alrun-curve` on real runs: the kept model refit on its own labels scores what the run
reported (tf-idf, a soft vote, the CRF), the table and files, and the evaluation sample
standing in for a missing test split."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_runs import jsonl  # same folder: pytest puts it on sys.path

from alrun.curve import main

pytestmark = pytest.mark.slow
CURVE = Path(sys.executable).parent / "alrun-curve"
TFIDF = (
    "candidates=[tfidf_logreg]",
    "loop.initial_strategy=random",  # no encoder: nothing to embed
    "strategy=margin",
    "loop.budget=30",
    "logger=none",
)


def table_rows(out: str) -> list[list[str]]:
    """The printed table's body rows, cells stripped."""
    lines = [x for x in out.splitlines() if x.startswith("| ") and "%" in x.split("|")[1]]
    return [[c.strip() for c in x.strip("|").split("|")] for x in lines]


@pytest.fixture
def data_env(monkeypatch, cache_dir):
    """In-process `main`: the data and cache folders as alrun reads them, from the env."""

    def use(data: Path) -> None:
        monkeypatch.setenv("ALRUN_DATA_DIR", str(data))
        monkeypatch.setenv("ALRUN_CACHE_DIR", str(cache_dir))

    return use


def test_tfidf_run_curve_table_files_and_refit_equal_to_the_run(
    run_alrun, bbc_slice, cache_dir, data_env, capsys
):
    run = run_alrun(*TFIDF)
    rounds = jsonl(run / "rounds.jsonl")
    assert [r["labeled"] for r in rounds] == [10, 20, 30]
    env = {**os.environ, "ALRUN_DATA_DIR": str(bbc_slice), "ALRUN_CACHE_DIR": str(cache_dir)}
    proc = subprocess.run(
        [str(CURVE), str(run), "--resamples", "200"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    rows = table_rows(proc.stdout)
    assert [r[:3] for r in rows] == [
        ["25%", "8", "3"],
        ["50%", "15", "3"],
        ["75%", "23", "3"],
        ["100%", "30", "1"],
    ]
    assert "Gain of the last quarter (75% -> 100%)" in proc.stdout
    assert "at 2x (60 labels): accuracy" in proc.stdout
    curve = json.loads((run / "curve.json").read_text())
    assert (run / "curve.png").stat().st_size > 10_000
    assert len(curve["points"]) == 10 and curve["candidate"] == "tfidf_logreg"
    [full] = [p for p in curve["points"] if p["fraction"] == 1.0]
    for m in ("accuracy", "macro_f1"):  # a deterministic model, the run's own seed: the same
        assert full["metrics"][m] == pytest.approx(rounds[-1]["test"][m], abs=1e-12)
    fit = curve["fit"]
    assert fit is not None and fit["a"] <= 1 and fit["b"] > 0 and fit["c"] > 0
    for e in curve["extrapolations"]:
        assert e["low"] <= e["high"] and e["labels"] == 30 * e["factor"]
    assert curve["interval"]["level"] == 0.95 and curve["interval"]["resamples"] == 200
    assert curve["run_curve"] == [[r["labeled"], r["test"]["accuracy"]] for r in rounds]

    # the run as it stood at 20 labels: that round's model again, its own files
    data_env(bbc_slice)
    assert main([str(run), "--labels", "20", "--resamples", "100"]) == 0
    capsys.readouterr()
    at20 = json.loads((run / "curve-20.json").read_text())
    assert at20["labeled"] == 20 and at20["round"] == 1 and (run / "curve-20.png").is_file()
    [full] = [p for p in at20["points"] if p["fraction"] == 1.0]
    assert full["metrics"]["accuracy"] == pytest.approx(rounds[1]["test"]["accuracy"], abs=1e-12)
    assert main([str(run), "--labels", "15"]) == 2
    err = capsys.readouterr().err
    assert "alrun-curve: error: --labels 15: no round had exactly 15" in err
    assert "10, 20, 30" in err


def test_a_kept_soft_vote_is_refit_as_selection_made_it(run_alrun, bbc_slice, data_env, capsys):
    """Two tf-idf candidates and their vote (oof weights): every round's kept candidate,
    refit on all its labels, scores that round's test metrics exactly."""
    run = run_alrun(
        "candidates=[tfidf_logreg,ensemble]",
        "+models.tfidf_uni={name: tfidf_logreg, tasks: [multiclass], ngram_max: 1, "
        "sublinear_tf: false}",
        "loop.initial_strategy=random",
        "strategy=margin",
        "loop.budget=40",
        "logger=none",
    )
    rounds = jsonl(run / "rounds.jsonl")
    assert "ensemble" in {r["chosen"] for r in rounds}, "the vote is never kept on this slice"
    data_env(bbc_slice)
    for r in rounds:
        code = main([str(run), "--labels", str(r["labeled"]), "--fractions", "1"])
        out = capsys.readouterr().out
        assert code == 0
        # one fraction: no curve to fit, said in one line; the table still prints
        assert "Learning curve: the curve has 3 parameters" in out
        assert table_rows(out)[0][:3] == ["100%", str(r["labeled"]), "1"]
        curve = json.loads((run / f"curve-{r['labeled']}.json").read_text())
        assert curve["candidate"] == r["chosen"] and curve["fit"] is None
        [point] = curve["points"]
        for m in ("accuracy", "macro_f1"):
            assert point["metrics"][m] == pytest.approx(r["test"][m], abs=1e-12), r["chosen"]


def test_ner_run_curve(run_alrun, conll_files, data_env, capsys):
    run = run_alrun(
        "dataset=custom_tokens",
        "dataset.path=train.jsonl",
        "dataset.test_path=test.jsonl",
        "loop.unit=sentence",
        "loop.initial_size=20",
        "loop.round_size=20",
        "loop.budget=60",
        "models.crf_ner.max_iterations=40",
        "logger=none",
        data=conll_files,
    )
    rounds = jsonl(run / "rounds.jsonl")
    data_env(conll_files)
    assert main([str(run), "--resamples", "100"]) == 0
    out = capsys.readouterr().out
    assert "| fraction | labels | fits | f1 | precision | recall | token_accuracy | Δ f1 |" in out
    assert [r[:3] for r in table_rows(out)] == [
        ["25%", "15", "3"],
        ["50%", "30", "3"],
        ["75%", "45", "3"],
        ["100%", "60", "1"],
    ]
    curve = json.loads((run / "curve.json").read_text())
    assert curve["metric"] == "f1" and curve["unit"] == "sentence"
    [full] = [p for p in curve["points"] if p["fraction"] == 1.0]
    for m in ("f1", "precision", "recall", "token_accuracy"):
        assert full["metrics"][m] == pytest.approx(rounds[-1]["test"][m], abs=1e-12)
    assert (run / "curve.png").is_file()


def test_without_a_test_split_the_evaluation_sample_is_scored_on(run_alrun, bbc_slice, data_env):
    """The data has a test split here, so the run's `eval` point metrics are what the refit
    must give on the sample when the split is taken away (as a raw pool has none)."""
    from alrun.curve import heldout_data, prepare
    from alrun.data import Splits

    run = run_alrun(*TFIDF, "eval.size=40")
    last = jsonl(run / "rounds.jsonl")[-1]
    data_env(bbc_slice)
    rd = prepare(run)
    held, where = heldout_data(rd.run, Splits(rd.splits.pool, None), rd.task)
    assert where == "the evaluation sample (40 items)" and len(held) == 40
    got = rd.score(rd.fit(np.arange(len(rd.labels))), held)
    assert got["accuracy"] == pytest.approx(last["eval"]["accuracy"], abs=1e-12)
    assert got["macro_f1"] == pytest.approx(last["eval"]["macro_f1"], abs=1e-12)
