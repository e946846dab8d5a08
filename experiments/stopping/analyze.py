"""Where each stopping rule stops the runs of a sweep, against the metric at the full budget.

    python experiments/stopping/analyze.py outputs/multirun/stopping_bbc \
        outputs/multirun/stopping_conll --out experiments/stopping/stopping.md

Reads only rounds.jsonl and .hydra/config.yaml. For every run and rule it replays the values
the run recorded (rounds.jsonl `stopping.<rule>.value`) through `alrun.stopping.stop_round`,
with the run's own settings and with a grid of other thresholds and windows: the grid shows
how sensitive a rule is, it is not a tuned default (picking the best cell here would fit the
threshold to these very test scores).

Goal (issue 17): stop with at least 30% of the budget left while losing at most 1 point of the
test metric against the full budget.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import yaml

from alrun.stopping import Rule, stop_round

HEADLINE = {"multiclass": "accuracy", "ner": "f1"}
GRID = {
    "stabilizing": ([0.95, 0.97, 0.98, 0.99, 0.995], [1, 3, 5]),
    "uncertainty": ([0.01, 0.02, 0.05, 0.1, 0.15], [1, 3, 5]),
}
LEFT, LOSS = 0.30, 0.01  # the goal: >= 30% of the budget left, <= 1 point lost
DASH = "\u2013"  # en dash: no value


def load(run: Path) -> dict:
    cfg = yaml.safe_load((run / ".hydra" / "config.yaml").read_text())
    rows = [json.loads(line) for line in (run / "rounds.jsonl").read_text().splitlines()]
    metric = HEADLINE[cfg["task"]["name"]]
    return {
        "path": run,
        "seed": cfg["seed"],
        "dataset": cfg["dataset"]["name"],
        "unit": cfg["loop"]["unit"],
        "budget": cfg["loop"]["budget"],
        "metric": metric,
        "labels": [r["labeled"] for r in rows],
        "ys": [r["test"][metric] for r in rows],
        "values": {
            k: [(r.get("stopping") or {}).get(k, {}).get("value") for r in rows] for k in GRID
        },
        "rules": {
            k: Rule(k, float(v["threshold"]), int(v["window"]))
            for k, v in cfg["stopping"].items()
            if k in GRID
        },
    }


def outcome(run: dict, rule: Rule) -> dict:
    """Where `rule` stops `run`: labels, metric there, share of the budget left, points lost."""
    r = stop_round(run["values"][rule.name], rule)
    final = run["ys"][-1]
    if r is None:
        return {"labels": None, "there": None, "left": 0.0, "lost": 0.0, "goal": False}
    left = 1 - run["labels"][r] / run["budget"]
    lost = final - run["ys"][r]
    return {
        "labels": run["labels"][r],
        "there": run["ys"][r],
        "left": left,
        "lost": lost,
        "goal": left >= LEFT and lost <= LOSS,
    }


def per_run_table(runs: list[dict]) -> list[str]:
    lines = [
        "| data | seed | rule (threshold, window) | stops at | metric there | at the budget | "
        "budget left | points lost | goal |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        for name, rule in run["rules"].items():
            o = outcome(run, rule)
            at = "never" if o["labels"] is None else f"{o['labels']:,} {run['unit']}s"
            there = DASH if o["there"] is None else f"{o['there']:.4f}"
            lines.append(
                f"| {run['dataset']} | {run['seed']} | {name} ({rule.threshold:g}, {rule.window}) "
                f"| {at} | {there} | {run['ys'][-1]:.4f} ({run['labels'][-1]:,}) "
                f"| {o['left']:.0%} | {100 * o['lost']:+.2f} | {'yes' if o['goal'] else 'no'} |"
            )
    return lines


def grid_table(runs: list[dict], name: str) -> list[str]:
    """Per (threshold, window): mean budget left and mean points lost over the runs, and how
    many runs meet the goal."""
    thresholds, windows = GRID[name]
    lines = [
        f"| {name}: threshold \\ window | " + " | ".join(str(w) for w in windows) + " |",
        "|---|" + "---|" * len(windows),
    ]
    for t in thresholds:
        cells = []
        for w in windows:
            outs = [outcome(run, Rule(name, t, w)) for run in runs]
            left = np.mean([o["left"] for o in outs])
            lost = np.mean([100 * o["lost"] for o in outs])
            goal = sum(o["goal"] for o in outs)
            cells.append(f"{left:.0%} left, {lost:+.2f} pts, {goal}/{len(outs)}")
        lines.append(f"| {t:g} | " + " | ".join(cells) + " |")
    return lines


def values_table(run: dict) -> list[str]:
    """A run's recorded values per round (the curve the rules read)."""
    lines = [
        f"| {run['unit']}s | test {run['metric']} | stabilizing | uncertainty |",
        "|---|---|---|---|",
    ]
    for i, n in enumerate(run["labels"]):
        s, u = run["values"]["stabilizing"][i], run["values"]["uncertainty"][i]
        lines.append(
            f"| {n:,} | {run['ys'][i]:.4f} | {DASH if s is None else f'{s:.4f}'} "
            f"| {DASH if u is None else f'{u:.4f}'} |"
        )
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("sweeps", nargs="+", type=Path)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    groups = []
    for sweep in args.sweeps:
        runs = sorted(
            (load(d.parent) for d in sweep.glob("*/rounds.jsonl")), key=lambda r: r["seed"]
        )
        groups.append((sweep, runs))
    out = ["# Stopping rules: where they stop, against the full budget", ""]
    out += [
        f"Generated by `python experiments/stopping/analyze.py {' '.join(map(str, args.sweeps))} "
        f"--out {args.out}`.",
        "",
    ]
    out += ["## Each run at the runs' own settings", ""]
    out += per_run_table([r for _, runs in groups for r in runs])
    for sweep, runs in groups:
        out += ["", f"## Sensitivity: {runs[0]['dataset']} ({sweep}, {len(runs)} runs)", ""]
        out += [
            "Mean share of the budget left, mean points lost against the full budget, "
            "runs meeting the goal (>= 30% left, <= 1 point lost).",
            "",
        ]
        for name in GRID:
            out += [*grid_table(runs, name), ""]
        out += [f"### Recorded values, seed {runs[0]['seed']}", ""]
        out += values_table(runs[0])
    args.out.write_text("\n".join(out) + "\n")
    print("\n".join(out))


if __name__ == "__main__":
    main()
