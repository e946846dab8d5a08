"""20 simulated annotators against one server (benchmarks/web_load.py, shortened): no request
fails, and the database holds exactly the answers the clients were told were stored."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def test_twenty_clients_lose_and_double_no_answer(bbc_rows):
    spec = importlib.util.spec_from_file_location("web_load", ROOT / "benchmarks" / "web_load.py")
    assert spec is not None and spec.loader is not None
    web_load = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(web_load)
    got = web_load.run_load(seconds=3, clients=20, batch=30)
    assert got["n_errors"] == 0, got["errors"]
    assert got["answers_sent"] >= 30 and got["rounds"] >= 1
    assert got["rows"] == got["answers_sent"] and got["same_answers"] and got["doubled"] == 0
    assert got["answers_sent"] == 30 * got["rounds"]  # every batch finished, nothing extra
    assert got["loop_finished"]
