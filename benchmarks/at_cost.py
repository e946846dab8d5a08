"""Compare finished runs at equal labelling cost (e.g. 30,000 labelled tokens).

    .venv/bin/python benchmarks/at_cost.py --unit tokens --at 30000 --metric f1 RUN_DIR...

A run's test metric at the given cost is linearly interpolated between the two rounds around
it (from rounds.jsonl). Runs are grouped by strategy (from .hydra/config.yaml); prints JSON.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf


def at_cost(rows: list[dict], unit: str, at: float, metric: str) -> float | None:
    xs = [r["labeled"] if unit == "items" else r["cost"][unit] for r in rows]
    ys = [r["test"][metric] for r in rows]
    if not xs or at < xs[0] or at > xs[-1]:
        return None  # outside the curve: never extrapolate
    return float(np.interp(at, xs, ys))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--unit", default="tokens", help="items | documents | sentences | tokens")
    ap.add_argument("--at", type=float, required=True)
    ap.add_argument("--metric", default="f1")
    a = ap.parse_args()
    groups: dict[str, list[float]] = {}
    per_run = {}
    for run in a.runs:
        rows = [json.loads(x) for x in (run / "rounds.jsonl").read_text().splitlines()]
        cfg = OmegaConf.load(run / ".hydra" / "config.yaml")
        value = at_cost(rows, a.unit, a.at, a.metric)
        per_run[str(run)] = {"strategy": cfg.strategy.name, "seed": cfg.seed, a.metric: value}
        if value is not None:
            groups.setdefault(cfg.strategy.name, []).append(value)
    print(
        json.dumps(
            {
                "at": {a.unit: a.at},
                "metric": a.metric,
                "runs": per_run,
                "mean": {k: round(float(np.mean(v)), 4) for k, v in groups.items()},
                "n": {k: len(v) for k, v in groups.items()},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
