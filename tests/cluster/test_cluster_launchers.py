"""Sweeps on real clusters: a one-node SLURM (scripts/local-slurm.sh: slurmctld, slurmd,
slurmdbd) and a Ray head (scripts/local-ray.sh). The jobs give the runs a joblib sweep gives,
fill one embedding cache once, and a requeued SLURM job resumes from its checkpoint.

Skipped when no cluster is up; under CI=true that fails instead (.ci/run starts both).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[2]
ALRUN = [sys.executable, "-c", "from alrun.cli import main; main()"]
RAY = Path(sys.executable).parent / "ray"
# 4 jobs of a few seconds each on the 300-article slice: TF-IDF LR after a k-means cold start,
# which embeds the corpus (short windows: seconds on one core) into the shared cache
SWEEP = (
    "strategy=random,margin",
    "seed=0,1",
    "candidates=[tfidf_logreg]",
    "loop.initial_strategy=kmeans",
    "loop.budget=30",
    "features.max_length=64",
    "features.max_windows=1",
    "logger=none",
)
# one job per CPU of the 2-core test machine; threads left null: each job takes its CPU count
SLURM = ("hydra/launcher=slurm", "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=2")
RAY_ARGS = (
    "hydra/launcher=ray",
    "hydra.launcher.ray.remote.num_cpus=1",
    "hydra.launcher.ray.remote.memory=2000000000",
)
# the reference: the same sweep on this machine, its own cache (embedded with one thread too)
JOBLIB = ("-m", *SWEEP, "hydra/launcher=joblib", "threads=1")
KEEP = ("round", "labeled", "cost", "validation", "chosen", "test", "queried")


def _missing(what: str, fix: str) -> None:
    msg = f"{what}: start it with {fix}"
    if os.environ.get("CI"):
        pytest.fail(msg)
    pytest.skip(msg)


@pytest.fixture(scope="module")
def slurm() -> None:
    """A SLURM controller that answers, with an idle node and job accounting (sacct)."""
    if shutil.which("sbatch") is None:
        _missing("SLURM is not installed", "sudo scripts/local-slurm.sh start")
    ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True)
    if ping.returncode != 0 or "UP" not in ping.stdout:
        said = (ping.stdout + ping.stderr).strip().splitlines()[-1:]
        _missing(f"no SLURM controller answers {said}", "sudo scripts/local-slurm.sh start")
    acct = subprocess.run(["sacct", "-n", "-X", "-S", "now"], capture_output=True, text=True)
    assert acct.returncode == 0, f"sacct does not work (no slurmdbd?): {acct.stderr}"


@pytest.fixture(scope="module")
def ray_head() -> None:
    """A running Ray head reachable at RAY_ADDRESS or this machine's default port."""
    if not RAY.exists():
        _missing("ray is not installed (pip install -e '.[ray]')", "scripts/local-ray.sh")
    address = os.environ.get("RAY_ADDRESS", "127.0.0.1:6379")
    host, _, port = address.rpartition(":")
    try:  # `ray status` retries a closed port for 40 s: ask the socket first
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as e:
        _missing(f"no Ray head at {address} ({e})", "scripts/local-ray.sh start")
    status = subprocess.run(
        [str(RAY), "status", "--address", address], capture_output=True, text=True, timeout=60
    )
    if status.returncode != 0:
        _missing(f"no Ray head at {address}", "scripts/local-ray.sh start")


def jsonl(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def runs(sweep: Path) -> dict[str, tuple[str, list[dict]]]:
    """Per job overrides: (labeled.jsonl, the deterministic fields of every round)."""
    out = {}
    for job in sorted(p for p in sweep.iterdir() if p.name.isdigit()):
        overrides = (job / ".hydra" / "overrides.yaml").read_text().splitlines()
        key = "\n".join(o for o in overrides if "threads=" not in o)  # 1 by choice or by CPUs
        rounds = [{k: r[k] for k in KEEP} for r in jsonl(job / "rounds.jsonl")]
        out[key] = ((job / "labeled.jsonl").read_text(), rounds)
    return out


def cache_filled_once(sweep: Path, cache: Path) -> None:
    """One whole entry in the sweep's cache; every job used that file, and the jobs that
    started after it was written read it instead of embedding again."""
    entries = [p for p in cache.rglob("*") if p.is_file()]
    assert len(entries) == 1 and entries[0].suffix == ".npy", entries  # no duplicate, no temp
    wrote, read = [], []
    for job in sorted(p for p in sweep.iterdir() if p.name.isdigit()):
        log = (job / "cli.log").read_text()
        found = re.findall(r"embeddings: (cached \d+ x \d+ at|cache hit) (\S+)", log)
        assert [path for _, path in found] == [str(entries[0])], (job, found)
        (wrote if found[0][0].startswith("cached") else read).append(job.name)
    # jobs start one per free CPU: at most that many raced to write it, the rest read it
    assert len(wrote) <= 2 and len(read) >= 2, (wrote, read)


def sacct(job_ids: set[str]) -> list[list[str]]:
    """sacct's records of these jobs (-D: a requeued job's earlier runs too), once every one
    has ended: submitit returns on the job's result file, seconds before SLURM records the end."""
    cmd = ["sacct", "-n", "-X", "-D", "-P", "-o", "JobID,JobName,State,ExitCode", "-S", "now-1hour"]
    deadline = time.monotonic() + 60
    while True:
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        rows = [line.split("|") for line in out.splitlines()]
        rows = [r for r in rows if r[0].split("_")[0] in job_ids]
        running = [r for r in rows if r[2] in ("PENDING", "RUNNING", "COMPLETING")]
        if not running or time.monotonic() > deadline:
            return rows
        time.sleep(1)


def slurm_job_ids(sweep: Path) -> set[str]:
    """The SLURM array job ids submitit used (its folders under .submitit/)."""
    return {p.name.split("_")[0] for p in (sweep / ".submitit").iterdir() if p.name[0].isdigit()}


def test_slurm_sweep_gives_the_joblib_sweeps_runs_and_the_report(
    slurm, run_alrun, tmp_path, capsys
):
    start = time.monotonic()
    cache = tmp_path / "slurm-cache"
    sweep = run_alrun("-m", *SWEEP, *SLURM, name="slurm", cache=cache)
    seconds = time.monotonic() - start
    ids = slurm_job_ids(sweep)
    records = sacct(ids)
    with capsys.disabled():
        print(f"\nSLURM sweep: {seconds:.0f} s; sacct:", *("|".join(r) for r in records), sep="\n")
    (array,) = ids  # one array job: 4 tasks, each COMPLETED in SLURM's own accounting
    assert sorted(r[0] for r in records) == [f"{array}_{i}" for i in range(4)]
    assert {(r[2], r[3]) for r in records} == {("COMPLETED", "0:0")}
    for job in range(4):  # threads null: the job took the CPU SLURM gave it
        assert (
            "threads=1: the CPUs SLURM gave this job" in (sweep / str(job) / "cli.log").read_text()
        )
    cache_filled_once(sweep, cache)

    local = run_alrun(*JOBLIB, name="joblib", cache=tmp_path / "joblib-cache")
    assert len(runs(sweep)) == 4 and runs(sweep) == runs(local)

    def report(folder: Path) -> list[str]:
        out = subprocess.run(
            [sys.executable, "-c", "from alrun.report import main; main()", str(folder)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr
        assert "Runs: 4 used, 0 skipped" in out.stdout
        assert (folder / "report.png").stat().st_size > 0
        # the table's rows without their last cell (wall time)
        lines = out.stdout.splitlines()
        return [x.rsplit("|", 2)[0] for x in lines if x.startswith("| strategy=")]

    rows = report(sweep)
    assert len(rows) == 2 and rows == report(local)  # random and margin, over 2 seeds each


def checkpoint_round(run: Path) -> int:
    try:
        return json.loads((run / "checkpoint.json").read_text())["round"]
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return -1


def results(run: Path) -> tuple:
    summary = json.loads((run / "summary.json").read_text())
    summary.pop("seconds")
    rounds = [{k: r[k] for k in KEEP} for r in jsonl(run / "rounds.jsonl")]
    return (run / "labeled.jsonl").read_text(), rounds, summary


def test_a_preempted_slurm_job_is_requeued_and_resumes_to_the_uninterrupted_result(
    slurm, run_alrun, tmp_path, bbc_slice, cache_dir
):
    args = ("candidates=[tfidf_logreg]", "strategy=margin", "loop.initial_strategy=random")
    args += ("loop.budget=150", "logger=none", "seed=2")
    sweep = tmp_path / "requeued"
    env = {
        **os.environ,
        "ALRUN_DATA_DIR": str(bbc_slice),
        "ALRUN_CACHE_DIR": str(cache_dir),
        "HF_HUB_OFFLINE": "1",
    }
    proc = subprocess.Popen(
        [*ALRUN, "-m", *args, *SLURM, f"hydra.sweep.dir={sweep}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    run = sweep / "0"
    deadline = time.monotonic() + 240
    while checkpoint_round(run) < 2:  # rounds 0-2 done, the job is in the middle of its run
        assert proc.poll() is None and time.monotonic() < deadline, "the job never reached round 2"
        time.sleep(0.1)
    (job,) = slurm_job_ids(sweep)
    # what a preempting scheduler sends (submitit's signal): submitit requeues the job
    subprocess.run(["scancel", "--signal=USR2", job], check=True)
    killed_at = checkpoint_round(run)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]

    log = (run / "cli.log").read_text()
    assert "this job is preempted" in log and f"Requeued job {job}" in log
    resumed = re.findall(r"resuming \S+ after round (\d+)", log)
    assert len(resumed) == 1 and int(resumed[0]) >= killed_at >= 2  # not from the start
    states = [r[2] for r in sacct({job})]
    assert states == ["REQUEUED", "COMPLETED"], states

    whole = run_alrun(*args, "threads=1", name="whole")
    assert results(run) == results(whole)


def test_ray_sweep_gives_the_joblib_sweeps_runs(ray_head, run_alrun, tmp_path, capsys):
    start = time.monotonic()
    cache = tmp_path / "ray-cache"
    sweep = run_alrun("-m", *SWEEP, *RAY_ARGS, name="ray", cache=cache)
    with capsys.disabled():
        print(f"\nRay sweep: {time.monotonic() - start:.0f} s")
    for job in range(4):
        assert "threads=1: the CPUs Ray gave this job" in (sweep / str(job) / "cli.log").read_text()
    cache_filled_once(sweep, cache)
    local = run_alrun(*JOBLIB, name="joblib", cache=tmp_path / "joblib-cache")
    assert len(runs(sweep)) == 4 and runs(sweep) == runs(local)


def test_a_ray_job_refuses_a_relative_path(ray_head, tmp_path, bbc_slice):
    """A Ray task runs where `ray start` ran (the repository here): a relative cache_dir given
    from another folder would name another folder, so the job stops and names the key."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    args = ("seed=0", "candidates=[tfidf_logreg]", "strategy=random", "loop.budget=20")
    args += ("loop.initial_strategy=random", "logger=none", *RAY_ARGS)
    done = subprocess.run(
        [*ALRUN, "-m", *args, f"hydra.sweep.dir={tmp_path / 'sweep'}", "cache_dir=rel-cache"],
        cwd=elsewhere,
        env={**os.environ, "ALRUN_DATA_DIR": str(bbc_slice), "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode != 0
    assert "cache_dir=rel-cache: relative, and this job runs in" in done.stderr + done.stdout
    assert not (elsewhere / "rel-cache").exists() and not (ROOT / "rel-cache").exists()
