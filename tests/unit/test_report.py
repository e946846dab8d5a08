"""`alrun-report` on hand-made run folders whose numbers can be checked by hand."""

from __future__ import annotations

import csv
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from alrun.report import clip_curve, interp_at, labels_to_target, main, mean_std
from alrun.tracking import aulc

XS = [10, 20, 30, 40]
DASH = "\u2013"  # the report's en dash for a missing value or a range


def make_run(
    root: Path,
    name: str,
    overrides: list[str],
    ys: list[float] | None,
    *,
    xs: list[int] = XS,
    finished: bool = True,
    task: str = "multiclass",
    unit: str = "document",
    config: dict | None = None,
    seconds: float = 10.0,
    stops: dict[str, list[bool]] | None = None,
) -> Path:
    """A run folder shaped like `alrun` writes it (only the fields the report reads)."""
    d = root / name
    (d / ".hydra").mkdir(parents=True)
    (d / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    cfg = {"seed": 0, "task": {"name": task}, "loop": {"unit": unit, "round_size": 10}}
    (d / ".hydra" / "config.yaml").write_text(yaml.safe_dump({**cfg, **(config or {})}))
    if ys is None:
        return d
    metric = "f1" if task == "ner" else "accuracy"
    rows = [
        {
            "round": i,
            "labeled": x,
            "cost": {"documents": x, "tokens": 100 * x},
            "validation": {"tfidf_logreg": 0.5},
            "chosen": "tfidf_logreg",
            "test": {metric: y, "macro_f1": y / 2},
            "seconds": {"round": 1.0},
            **(
                {
                    "stopping": {
                        "stop_set": 9,
                        **{k: {"value": 0.5, "stop": v[i]} for k, v in stops.items()},
                    }
                }
                if stops
                else {}
            ),
        }
        for i, (x, y) in enumerate(zip(xs, ys, strict=True))
    ]
    (d / "rounds.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    if finished:
        summary = {"final/labeled": xs[-1] if xs else 0, "rounds": len(rows), "seconds": seconds}
        (d / "summary.json").write_text(json.dumps(summary))
    return d


def write_multirun(sweep: Path, task_overrides: list[str]) -> None:
    sweeper = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"
    hydra = {
        "sweep": {"dir": str(sweep), "subdir": "${hydra.job.num}"},
        "sweeper": {"_target_": sweeper, "max_batch_size": None, "params": None},
        "overrides": {"hydra": [f"hydra.sweep.dir={sweep}"], "task": task_overrides},
    }
    sweep.mkdir(parents=True, exist_ok=True)
    (sweep / "multirun.yaml").write_text(yaml.safe_dump({"hydra": hydra, "seed": 0}))


def report(*args: str | Path, capsys) -> tuple[str, list[dict[str, str]], str]:
    main([str(a) for a in args])
    out = Path(args[args.index("--out") + 1]) if "--out" in args else Path(args[0])
    with (out / "report.csv").open() as f:
        rows = list(csv.DictReader(f))
    md = (out / "report.md").read_text()
    assert capsys.readouterr().out == md
    return md, rows, (out / "report.png").read_bytes()[:8].hex()


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    """strategy=random,margin x seed=0,1 with round numbers: every statistic is by hand."""
    s = tmp_path / "sweep"
    write_multirun(s, ["strategy=random,margin", "seed=0,1", "logger=none"])
    curves = {
        ("random", 0): ([0.2, 0.4, 0.6, 0.8], 10.0),
        ("random", 1): ([0.4, 0.6, 0.8, 1.0], 20.0),
        ("margin", 0): ([0.5, 0.5, 0.5, 0.5], 30.0),
        ("margin", 1): ([0.3, 0.5, 0.7, 0.9], 50.0),
    }
    for job, ((strategy, seed), (ys, secs)) in enumerate(curves.items()):
        ov = [f"strategy={strategy}", f"seed={seed}", "logger=none"]
        make_run(s, str(job), ov, ys, seconds=secs, config={"seed": seed})
    return s


# --------------------------------------------------------------------------- curve arithmetic


def test_interpolation_is_linear_inside_and_nan_outside():
    xs, ys = np.array([10.0, 20.0, 40.0]), np.array([0.2, 0.4, 0.8])
    assert interp_at(xs, ys, 15) == pytest.approx(0.3)
    assert interp_at(xs, ys, 30) == pytest.approx(0.6)
    assert interp_at(xs, ys, 40) == pytest.approx(0.8)
    assert math.isnan(interp_at(xs, ys, 9)) and math.isnan(interp_at(xs, ys, 41))


def test_clip_curve_gives_the_aulc_of_the_shared_range():
    xs, ys = np.array([10.0, 20.0, 30.0, 40.0]), np.array([0.2, 0.4, 0.6, 0.8])
    cx, cy = clip_curve(xs, ys, 15, 35)
    assert cx.tolist() == [15, 20, 30, 35]
    assert cy == pytest.approx([0.3, 0.4, 0.6, 0.7])
    # (0.35 * 5 + 0.5 * 10 + 0.65 * 5) / 20
    assert aulc(cx, cy) == pytest.approx(0.5)


def test_labels_to_target():
    xs, ys = np.array([10.0, 20.0, 30.0]), np.array([0.5, 0.6, 0.9])
    assert labels_to_target(xs, ys, 0.5) == 10  # the first round already reaches it
    assert labels_to_target(xs, ys, 0.6) == 20
    assert labels_to_target(xs, ys, 0.8) == pytest.approx(20 + 10 * 0.2 / 0.3)
    assert math.isnan(labels_to_target(xs, ys, 0.95))
    # a dip after reaching it does not move the answer
    assert labels_to_target(np.array([1.0, 2, 3]), np.array([0.0, 1, 0]), 0.5) == 1.5


def test_mean_std_is_population_std_over_non_nan():
    assert mean_std([0.2, 0.4]) == pytest.approx((0.3, 0.1, 2))
    assert mean_std([0.2, math.nan]) == (0.2, 0.0, 1)
    m, s, k = mean_std([math.nan])
    assert math.isnan(m) and math.isnan(s) and k == 0


# --------------------------------------------------------------------------- whole reports


def test_group_table_numbers_by_hand(sweep, tmp_path, capsys):
    out = tmp_path / "out"
    md, rows, png = report(
        sweep, "--at", "15,25,40", "--target", "0.9", "--out", out, capsys=capsys
    )
    assert png == "89504e470d0a1a0a"
    by = {r["group"]: r for r in rows}
    assert list(by) == ["strategy=random", "strategy=margin"]
    expect = {
        # seed 0: 0.2 0.4 0.6 0.8; seed 1: 0.4 0.6 0.8 1.0; AULCs 0.5 and 0.7; target: 35 / never
        "strategy=random": {
            "strategy": "random",
            "n": 2,
            "accuracy@15_mean": 0.4,
            "accuracy@15_std": 0.1,
            "accuracy@25_mean": 0.6,
            "accuracy@25_std": 0.1,
            "accuracy@40_mean": 0.9,
            "accuracy@40_std": 0.1,
            "aulc_mean": 0.6,
            "aulc_std": 0.1,
            "to_0.9_mean": 35,
            "to_0.9_std": 0,
            "to_0.9_reached": 1,
            "final_mean": 0.9,
            "final_std": 0.1,
            "seconds_mean": 15,
        },
        # seed 0: flat 0.5; seed 1: 0.3 0.5 0.7 0.9; AULCs 0.5 and 0.6; target: never / 40
        "strategy=margin": {
            "n": 2,
            "accuracy@15_mean": 0.45,
            "accuracy@15_std": 0.05,
            "accuracy@25_mean": 0.55,
            "accuracy@25_std": 0.05,
            "accuracy@40_mean": 0.7,
            "accuracy@40_std": 0.2,
            "aulc_mean": 0.55,
            "aulc_std": 0.05,
            "to_0.9_mean": 40,
            "to_0.9_reached": 1,
            "final_mean": 0.7,
            "seconds_mean": 40,
        },
    }
    for group, want in expect.items():
        for col, v in want.items():
            got = by[group][col]
            assert (got if isinstance(v, str) else float(got)) == pytest.approx(v), (group, col)
    assert by["strategy=random"]["seeds"] == "0 1"
    assert (
        "| strategy=random | 2 | 0.400 ± 0.100 | 0.600 ± 0.100 | 0.900 ± 0.100 | 0.600 ± 0.100 "
        "| 35.0 ± 0.0 (1/2 reached) | 0.900 ± 0.100 | 15.0 |" in md
    )
    assert "Varies: `strategy` (random, margin); replicates: `seed` (0, 1)" in md
    assert "Fixed overrides: `logger=none`" in md
    assert "ddof=0" in md and f"`{sweep}`" in md
    assert md.rstrip().endswith("## Skipped runs\n\nNone.")


def test_worst_round_from_a_point_on_by_hand(sweep, tmp_path, capsys):
    # rounds at 10, 20, 30, 40: from 20 on random's worst is seed 0's 0.4, margin's seed 0's
    # flat 0.5 (seed 1's 0.3 is at 10); from 45 on no round: a dash
    md, rows, _ = report(sweep, "--floor-from", "20", "--out", tmp_path / "a", capsys=capsys)
    assert [float(r["worst_from_20"]) for r in rows] == [0.4, 0.5]
    assert "| worst from 20 |" in md and "from 20 labelled documents on" in md
    md, rows, _ = report(sweep, "--floor-from", "45", "--out", tmp_path / "b", capsys=capsys)
    assert rows[0]["worst_from_45"] == "nan"


def test_where_each_stopping_rule_would_have_stopped_by_hand(tmp_path, capsys):
    s = tmp_path / "sweep"
    write_multirun(s, ["seed=0,1"])
    flags = {
        # seed 0 (0.2 0.4 0.6 0.8): stabilizing says stop from round 2 (x 30, 0.6; final 0.8)
        0: {"stabilizing": [False, False, True, True], "uncertainty": [False] * 4},
        # seed 1 (0.4 0.6 0.8 1.0): stabilizing at round 3 (x 40, 1.0, the final), uncertainty
        # at round 1 (x 20, 0.6)
        1: {"stabilizing": [False, False, False, True], "uncertainty": [False, True, True, True]},
    }
    for seed, ys in ((0, [0.2, 0.4, 0.6, 0.8]), (1, [0.4, 0.6, 0.8, 1.0])):
        make_run(s, str(seed), [f"seed={seed}"], ys, config={"seed": seed}, stops=flags[seed])
    md, rows, _ = report(s, "--out", tmp_path / "out", capsys=capsys)
    (row,) = rows
    assert float(row["stabilizing_stop_mean"]) == pytest.approx(35)
    assert float(row["stabilizing_stop_std"]) == pytest.approx(5)
    assert row["stabilizing_stop_stopped"] == "2"
    assert float(row["stabilizing_there_mean"]) == pytest.approx(0.8)
    assert float(row["stabilizing_minus_final_mean"]) == pytest.approx(-0.1)
    assert float(row["stabilizing_minus_final_std"]) == pytest.approx(0.1)
    assert float(row["uncertainty_stop_mean"]) == 20 and row["uncertainty_stop_stopped"] == "1"
    assert float(row["uncertainty_minus_final_mean"]) == pytest.approx(-0.4)
    assert "| stabilizing stops @ | accuracy there (- final) |" in md
    assert "| 35.0 ± 5.0 (2/2) | 0.800 ± 0.200 (-0.100 ± 0.100) | 20.0 ± 0.0 (1/2) |" in md


def test_default_points_and_aulc_use_the_range_all_runs_share(tmp_path, capsys):
    root = tmp_path / "runs"
    make_run(root, "a", ["loop.budget=40", "seed=0"], [0.2, 0.4, 0.6, 0.8])
    make_run(root, "b", ["loop.budget=30", "seed=0"], [0.1, 0.2, 0.3], xs=[10, 20, 30])
    md, rows, _ = report(root, "--at", "20,35", capsys=capsys)
    a, b = rows
    assert (a["group"], b["group"]) == ("loop.budget=40", "loop.budget=30")
    assert float(a["aulc_mean"]) == pytest.approx(0.4)  # over 10-30, not 10-40 (0.5)
    assert float(b["aulc_mean"]) == pytest.approx(0.2)
    assert float(a["accuracy@35_mean"]) == pytest.approx(0.7) and a["accuracy@35_n"] == "1"
    assert b["accuracy@35_mean"] == "nan" and b["accuracy@35_n"] == "0"
    assert f"| loop.budget=30 | 1 | 0.200 ± 0.000 | {DASH} |" in md
    assert f"over 10{DASH}30 labelled documents" in md

    _, rows, _ = report(root, capsys=capsys)  # default: 4 points over 10-30, rounded
    assert [k[: -len("_mean")] for k in rows[0] if k.endswith("_mean")][:4] == [
        "accuracy@10",
        "accuracy@17",
        "accuracy@23",
        "accuracy@30",
    ]
    assert float(rows[1]["accuracy@17_mean"]) == pytest.approx(0.17)


def test_varying_keys_group_by_all_but_seed(tmp_path, capsys):
    root = tmp_path / "runs"
    for i, (strategy, size, seed) in enumerate(
        [("margin", 20, 0), ("margin", 20, 1), ("margin", 10, 0), ("random", 10, 0)]
    ):
        ov = [f"strategy={strategy}", f"seed={seed}", "logger=none"]
        if size == 20:  # the others ran with the config's round_size (10)
            ov.append("loop.round_size=20")
        make_run(root, str(i), ov, [0.5] * 4, config={"seed": seed})
    _, rows, _ = report(root, capsys=capsys)
    assert [(r["group"], r["n"]) for r in rows] == [
        ("strategy=margin, loop.round_size=20", "2"),
        ("strategy=margin, loop.round_size=10", "1"),
        ("strategy=random, loop.round_size=10", "1"),
    ]
    assert list(rows[0])[:3] == ["strategy", "loop.round_size", "group"]


def test_nothing_but_seed_varies_is_one_group_all(tmp_path, capsys):
    root = tmp_path / "runs"
    for seed in range(3):
        make_run(root, str(seed), [f"seed={seed}", "strategy=margin"], [0.5, 0.6, 0.7, 0.8])
    md, rows, _ = report(root, "--x", "tokens", capsys=capsys)
    assert [(r["group"], r["n"], r["seeds"]) for r in rows] == [("all", "3", "0 1 2")]
    assert "accuracy@1000_mean" in rows[0] and "labelled tokens" in md
    assert "Varies: nothing but the seed" in md


def test_skipped_runs_are_listed_with_reasons_and_the_report_still_written(sweep, tmp_path, capsys):
    # job 3 (margin, seed 1) never started; job 1 killed after 2 rounds; job 2 corrupt
    shutil.rmtree(sweep / "3")
    (sweep / "1" / "summary.json").unlink()
    lines = (sweep / "1" / "rounds.jsonl").read_text().splitlines()[:2]
    (sweep / "1" / "rounds.jsonl").write_text("\n".join(lines) + "\n")
    r2 = sweep / "2" / "rounds.jsonl"
    r2.write_text(r2.read_text().splitlines()[0] + '\n{"round": 1, "lab\n')
    make_run(sweep, "extra/never", ["strategy=random", "seed=5", "logger=none"], None)
    make_run(sweep, "extra/empty", ["strategy=random", "seed=6", "logger=none"], [], xs=[])
    ner = ["strategy=random", "seed=7", "logger=none"]
    make_run(sweep, "extra/ner", ner, [0.1] * 4, task="ner")
    md, rows, _ = report(sweep, capsys=capsys)
    assert [(r["group"], r["n"]) for r in rows] == [("all", "1")]  # only job 0 is left
    skipped = md.split("## Skipped runs")[1]
    for folder, reason in [
        ("1", "unfinished: 2 rounds, last at 20 labels"),
        ("2", "corrupt rounds.jsonl line 2: "),
        ("3", "not started: job 3 (strategy=margin seed=1)"),
        ("extra/never", "no finished round"),
        ("extra/empty", "no finished round"),
        ("extra/ner", "task ner differs from the majority (multiclass)"),
    ]:
        assert f"- `{sweep / folder}`: {reason}" in skipped, folder
    assert skipped.count("\n- ") == 6


def test_ner_headline_metric_and_explicit_metric(tmp_path, capsys):
    root = tmp_path / "runs"
    make_run(root, "0", ["seed=0"], [0.2, 0.4, 0.6, 0.8], task="ner", unit="sentence")
    md, rows, _ = report(root, capsys=capsys)
    assert "f1@40_mean" in rows[0] and "labelled sentences" in md
    _, rows, _ = report(root, "--metric", "macro_f1", capsys=capsys)
    assert float(rows[0]["final_mean"]) == pytest.approx(0.4)


def test_exit_2_when_no_run_is_usable(tmp_path, capsys):
    root = tmp_path / "runs"
    make_run(root, "0", ["seed=0"], [0.5, 0.6], xs=[10, 20], finished=False)
    with pytest.raises(SystemExit) as e:
        main([str(root)])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("alrun-report: error: no usable run under")
    assert "unfinished: 2 rounds, last at 20 labels" in err
    assert not (root / "report.md").exists()

    for argv in ([str(tmp_path / "missing")], [str(root), "--metric", "nope"]):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2
        assert capsys.readouterr().err.startswith("alrun-report: error: ")
