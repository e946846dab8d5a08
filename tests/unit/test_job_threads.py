"""`threads` left null on a cluster: the job takes the CPUs the scheduler gave it."""

from __future__ import annotations

from alrun.cli import job_threads


def test_null_threads_take_slurms_cpus_per_task_and_a_given_count_wins(monkeypatch):
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "3")
    assert job_threads(None) == 3
    assert job_threads(2) == 2  # threads=2 on the command line
    monkeypatch.delenv("SLURM_CPUS_PER_TASK")
    assert job_threads(None) is None  # outside a cluster job: every core, as before
