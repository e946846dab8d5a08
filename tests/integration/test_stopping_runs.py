"""Real runs with stopping rules on the BBC slice: a rule ends the run where its recorded
values say, and watching a run never changes what it labels."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_runs import alrun, jsonl  # same folder: pytest puts it on sys.path

from alrun.stopping import Rule, stop_round

pytestmark = pytest.mark.slow
FAST = [
    "candidates=[tfidf_logreg]",
    "strategy=margin",
    "loop.initial_strategy=random",
    "loop.round_size=10",
    "loop.budget=200",
    "logger=none",
    "stopping.stop_set=100",
]


def test_a_rule_ends_the_run_where_its_values_say_and_labels_nothing_else(run_alrun):
    stop = "loop.stop={rule: stabilizing, threshold: 0.9, window: 2}"
    run = run_alrun(*FAST, stop, name="stopped")
    rows = jsonl(run / "rounds.jsonl")
    values = [r["stopping"]["stabilizing"]["value"] for r in rows]
    assert values[0] is None  # no previous model in the first round
    assert all(r["stopping"]["stop_set"] == 100 for r in rows)
    assert all(0 <= r["stopping"]["uncertainty"]["value"] <= 1 for r in rows)
    assert stop_round(values, Rule("stabilizing", 0.9, 2)) == len(rows) - 1  # stopped there
    assert [r["stopping"]["stabilizing"]["stop"] for r in rows] == [False] * (len(rows) - 1) + [
        True
    ]
    assert rows[-1]["queried"] == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["final/labeled"] == rows[-1]["labeled"] < 200
    state = json.loads((run / "stop_set.json").read_text())
    assert len(state["items"]) == 100 and len(set(state["items"])) == 100
    assert "stopping rule stabilizing held for 2 rounds" in (run / "cli.log").read_text()

    # the same run unwatched, to the labels the rule stopped at: the same labelled sequence
    plain = run_alrun(
        *FAST[:-1], "stopping.stop_set=0", f"loop.budget={rows[-1]['labeled']}", name="plain"
    )
    assert (plain / "labeled.jsonl").read_text() == (run / "labeled.jsonl").read_text()
    unwatched = jsonl(plain / "rounds.jsonl")
    assert "stopping" not in unwatched[0]
    assert [r["test"] for r in unwatched] == [r["test"] for r in rows]


@pytest.mark.parametrize(
    ("override", "says"),
    [
        ("loop.stop=kappa", "loop.stop: unknown rule 'kappa'; choose stabilizing or uncertainty"),
        ("stopping.stop_set=-1", "stopping.stop_set=-1"),
    ],
)
def test_bad_stopping_settings_stop_at_start_with_the_key(override, says, bbc_slice, tmp_path):
    proc = alrun(
        *FAST,
        override,
        f"hydra.run.dir={tmp_path / 'run'}",
        data=bbc_slice,
        cache=tmp_path / "cache",
        check=False,
    )
    assert proc.returncode == 2
    assert says in proc.stderr
    assert not (Path(tmp_path / "run") / "rounds.jsonl").exists()
