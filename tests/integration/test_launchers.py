"""Sweeps on Hydra's launcher plugins: joblib and submitit (local) give the same runs, and a
killed job leaves the other jobs and the report intact."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_runs import ALRUN, ROOT, jsonl

# Sweeps in the default run: test_report_runs.py (Hydra's basic launcher)
pytestmark = [pytest.mark.slow, pytest.mark.full]
# threads=1: jobs side by side on 2 cores, one BLAS thread each (else they thrash)
SWEEP = [
    "strategy=random,margin",
    "candidates=[tfidf_logreg]",
    "loop.initial_strategy=random",  # no encoder: nothing to embed
    "logger=none",
    "threads=1",
]


def _runs(sweep: Path) -> dict[str, tuple[list, str]]:
    """Per job overrides: (test accuracy per round, labeled.jsonl)."""
    out = {}
    for job in sorted(p for p in sweep.iterdir() if p.name.isdigit()):
        key = (job / ".hydra" / "overrides.yaml").read_text()
        rounds = [r["test"]["accuracy"] for r in jsonl(job / "rounds.jsonl")]
        out[key] = (rounds, (job / "labeled.jsonl").read_text())
    return out


def test_joblib_and_submitit_local_sweeps_give_the_same_runs(run_alrun):
    joblib, submitit = (
        _runs(
            run_alrun("-m", f"hydra/launcher={launcher}", *SWEEP, "loop.budget=30", name=launcher)
        )
        for launcher in ("joblib", "submitit_local")
    )
    assert len(joblib) == 2 and joblib == submitit


def _job_pids() -> list[int]:
    """submitit's local jobs: one `python -m submitit.core._submit` process per job."""
    out = subprocess.run(["pgrep", "-f", "submitit.core._submit"], capture_output=True, text=True)
    return sorted(int(p) for p in out.stdout.split())


def test_a_killed_job_leaves_the_others_and_the_report_intact(tmp_path, bbc_slice, cache_dir):
    sweep = tmp_path / "sweep"
    env = {
        **os.environ,
        "ALRUN_DATA_DIR": str(bbc_slice),
        "ALRUN_CACHE_DIR": str(cache_dir),
        "HF_HUB_OFFLINE": "1",
    }
    args = [*SWEEP, "loop.budget=80", "hydra/launcher=submitit_local"]
    proc = subprocess.Popen(
        [*ALRUN, "-m", *args, f"hydra.sweep.dir={sweep}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    victim = sweep / "1" / "rounds.jsonl"
    deadline = time.time() + 240
    while not (victim.exists() and len(victim.read_text().splitlines()) >= 2):
        assert time.time() < deadline and proc.poll() is None, "job 1 never reached round 2"
        time.sleep(0.2)
    pids = _job_pids()
    assert len(pids) == 2  # both jobs are running at once
    os.kill(pids[1], signal.SIGKILL)  # job 1 (submitted second)
    proc.communicate(timeout=300)
    assert proc.returncode != 0  # the sweep says a job failed ...
    # ... job 0 finished untouched, job 1 stopped between rounds with whole files
    assert (sweep / "0" / "summary.json").exists()
    assert [r["labeled"] for r in jsonl(sweep / "0" / "rounds.jsonl")][-1] == 80
    assert not (sweep / "1" / "summary.json").exists()
    done = jsonl(victim)  # every line parses: atomic writes
    assert len(jsonl(sweep / "1" / "labeled.jsonl")) == done[-1]["labeled"]
    report = subprocess.run(
        [sys.executable, "-c", "from alrun.report import main; main()", str(sweep)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert report.returncode == 0, report.stderr
    assert "Runs: 1 used, 1 skipped" in report.stdout
    assert "| all | 1 |" in report.stdout  # only job 0's strategy is left to compare
    assert f"`{sweep / '1'}`: unfinished: {len(done)} round" in report.stdout
    assert (sweep / "report.png").stat().st_size > 0
