"""Resume: a run SIGKILLed in the middle of round 3 continues to the uninterrupted result."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
# plain margin from a random start: no document vectors to embed
NO_VECTORS = ("strategy=margin", "loop.initial_strategy=random")

ROOT = Path(__file__).resolve().parents[2]
ALRUN = [sys.executable, "-c", "from alrun.cli import main; main()"]
ARGS = (
    "candidates=[tfidf_logreg]",
    "strategy=margin",
    "loop.initial_strategy=random",  # no encoder: nothing to embed
    "loop.budget=60",
    "logger=wandb",
    "seed=3",
)


def env(data: Path, cache: Path) -> dict[str, str]:
    return {
        **os.environ,
        "ALRUN_DATA_DIR": str(data),
        "ALRUN_CACHE_DIR": str(cache),
        "HF_HUB_OFFLINE": "1",
        "WANDB_SILENT": "true",
    }


def alrun(*args: str, data: Path, cache: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*ALRUN, *args], cwd=ROOT, env=env(data, cache), capture_output=True, text=True, timeout=600
    )


def checkpoint_round(run: Path) -> int | None:
    try:
        return json.loads((run / "checkpoint.json").read_text())["round"]
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def results(run: Path) -> tuple:
    rounds = [json.loads(x) for x in (run / "rounds.jsonl").read_text().splitlines()]
    summary = json.loads((run / "summary.json").read_text())
    summary.pop("seconds")
    keep = ("round", "labeled", "cost", "validation", "chosen", "test", "queried")
    return (
        (run / "labeled.jsonl").read_text(),
        [{k: r[k] for k in keep} for r in rounds],
        summary,
    )


# in the default run: a SIGKILLed web run resumes from its checkpoint (test_web.py::
# test_killed_mid_batch_resumes_with_every_saved_answer); the loop's resume by hand
# (tests/unit/test_loop.py::test_resume_continues_exactly_where_the_run_stopped)
@pytest.mark.full
def test_sigkill_mid_round_3_then_resume_equals_an_uninterrupted_run(
    tmp_path, bbc_slice, cache_dir, run_alrun
):
    whole = run_alrun(*ARGS, name="whole")

    run = tmp_path / "killed"
    proc = subprocess.Popen(
        [*ALRUN, *ARGS, f"hydra.run.dir={run}"],
        cwd=ROOT,
        env=env(bbc_slice, cache_dir),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while checkpoint_round(run) != 2:  # rounds 0-2 done: round 3 is training now
        assert proc.poll() is None and time.monotonic() < deadline, "the run ended early"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert checkpoint_round(run) == 2 and not (run / "summary.json").exists()
    assert len((run / "rounds.jsonl").read_text().splitlines()) == 3
    # every file is whole: atomic writes leave no temporary or half file behind
    assert not [p.name for p in run.iterdir() if p.name.startswith(".") and p.name != ".hydra"]

    again = alrun(*ARGS, f"hydra.run.dir={run}", data=bbc_slice, cache=cache_dir)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "after round 2 (30 labelled)" in again.stdout  # not from the start
    assert results(run) == results(whole)
    final = json.loads((run / "checkpoint.json").read_text())
    assert final["complete"] is True and len(final["config_hash"]) == 64
    assert (
        final["config_hash"] == json.loads((whole / "checkpoint.json").read_text())["config_hash"]
    )


# a changed config refused in the default run: test_web.py (the annotator's database)
@pytest.mark.full
def test_resume_refuses_other_settings_and_a_folder_without_checkpoint(
    tmp_path, bbc_slice, cache_dir, run_alrun
):
    args = ("candidates=[tfidf_logreg]", "loop.budget=20", "logger=none", *NO_VECTORS)
    run = run_alrun(*args)

    def files() -> dict[str, bytes]:  # Hydra's own log and .hydra/ aside
        return {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.suffix != ".log"}

    before = files()

    other = alrun(
        "candidates=[tfidf_logreg]",
        "loop.budget=30",
        "strategy=entropy",
        "logger=none",
        "loop.initial_strategy=random",
        f"resume={run}",
        data=bbc_slice,
        cache=cache_dir,
    )
    assert other.returncode == 2
    err = other.stderr
    assert "loop.budget: 20 -> 30" in err and "strategy.name: 'margin' -> 'entropy'" in err
    assert f"alrun {' '.join(args)} resume={run}" in err
    assert files() == before

    done = alrun(*args, f"resume={run}", data=bbc_slice, cache=cache_dir)  # finished: no-op
    assert done.returncode == 0 and "this run is complete" in done.stdout
    assert files() == before

    empty = alrun(*args, f"resume={tmp_path / 'nothing'}", data=bbc_slice, cache=cache_dir)
    assert empty.returncode == 2 and "no checkpoint.json there" in empty.stderr
