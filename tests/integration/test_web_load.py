"""20 simulated annotators against one server (benchmarks/web_load.py, shortened): no request
fails, and the database holds exactly the answers the clients were told were stored."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def web_load():
    spec = importlib.util.spec_from_file_location("web_load", ROOT / "benchmarks" / "web_load.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_twenty_clients_lose_and_double_no_answer(bbc_rows):
    got = web_load().run_load(seconds=3, clients=20, batch=30)
    assert got["n_errors"] == 0, got["errors"]
    assert got["answers_sent"] >= 30 and got["rounds"] >= 1
    assert got["rows"] == got["answers_sent"] and got["same_answers"] and got["doubled"] == 0
    assert got["answers_sent"] == 30 * got["rounds"]  # every batch finished, nothing extra
    assert got["loop_finished"]


def test_two_annotators_per_task_and_reviewers_under_load(bbc_rows):
    """Overlap 2 with random topics (most tasks disagree) and 2 reviewers: every task gets
    exactly 2 answers from 2 sessions, every disagreement exactly one decision."""
    got = web_load().run_load(seconds=3, clients=20, batch=30, overlap=2, reviewers=2)
    assert got["n_errors"] == 0, got["errors"]
    assert got["rounds"] >= 1 and got["loop_finished"]
    assert got["rows"] == got["answers_sent"] == 2 * 30 * got["rounds"] and got["same_answers"]
    assert got["doubled"] == 0 and got["tasks_short_of_k"] == 0
    assert got["decisions"] == got["decisions_sent"] > 0 and got["same_decisions"]
    assert got["decided_twice"] == 0
