"""`alrun-report` on a real sweep with one job killed after its first round."""

from __future__ import annotations

import csv
import subprocess
import sys

import numpy as np
import pytest
from test_runs import ROOT, jsonl

from alrun.tracking import aulc

# The report's numbers by hand in the default run: tests/unit/test_report.py
pytestmark = [pytest.mark.slow, pytest.mark.full]


def test_report_of_a_sweep_with_a_killed_job(run_alrun, monkeypatch):
    # one BLAS thread: on a busy 2-core machine OpenBLAS's spinning threads make these tiny
    # fits 10x slower (35 s instead of 4 s a job, measured)
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    sweep = run_alrun(
        "-m",
        "strategy=random,margin",
        "seed=0,1",
        "candidates=[tfidf_logreg]",
        "loop.initial_strategy=random",  # no encoder: nothing to embed
        "loop.budget=30",
        "logger=none",
        name="sweep",
    )
    killed = sweep / "3"  # margin, seed 1: as if killed after its first round
    (killed / "summary.json").unlink()
    first = (killed / "rounds.jsonl").read_text().splitlines()[0]
    (killed / "rounds.jsonl").write_text(first + "\n")

    proc = subprocess.run(
        [sys.executable, "-c", "from alrun.report import main; main()", str(sweep), "--at", "25"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    md = (sweep / "report.md").read_text()
    assert proc.stdout == md
    assert (sweep / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with (sweep / "report.csv").open() as f:
        rows = {r["group"]: r for r in csv.DictReader(f)}
    assert {g: r["n"] for g, r in rows.items()} == {"strategy=random": "2", "strategy=margin": "1"}

    curves = {job: jsonl(sweep / str(job) / "rounds.jsonl") for job in (0, 1, 2)}
    xs = {j: [r["labeled"] for r in c] for j, c in curves.items()}
    ys = {j: [r["test"]["accuracy"] for r in c] for j, c in curves.items()}
    assert all(x == [10, 20, 30] for x in xs.values())
    for group, jobs in (("strategy=random", (0, 1)), ("strategy=margin", (2,))):
        row = rows[group]
        at25 = [np.interp(25, xs[j], ys[j]) for j in jobs]
        areas = [aulc(xs[j], ys[j]) for j in jobs]
        finals = [ys[j][-1] for j in jobs]
        for col, values in (("accuracy@25", at25), ("aulc", areas), ("final", finals)):
            assert float(row[f"{col}_mean"]) == pytest.approx(np.mean(values)), (group, col)
            assert float(row[f"{col}_std"]) == pytest.approx(np.std(values)), (group, col)
        mean, std = np.mean(finals), np.std(finals)
        assert f"| {group} | {len(jobs)} | " in md and f"{mean:.3f} ± {std:.3f}" in md
    skipped = md.split("## Skipped runs")[1]
    assert f"- `{killed}`: unfinished: 1 round, last at 10 labels" in skipped
    assert skipped.count("\n- ") == 1
