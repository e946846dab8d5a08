"""alrun-curve's extrapolation against what a longer run really reached.

    python experiments/stopping/curve_check.py \
        outputs/multirun/stopping_bbc/0/curve.json=outputs/multirun/stopping_bbc_1000/0 ...

Each argument pairs a `curve.json` (or `curve-N.json`) written by `alrun-curve` with the run
folder of the same setting and seed with a larger budget (the same labelled sequence up to
the smaller one's labels: same config and seed). For every extrapolation whose label count is
one of the longer run's rounds, it prints the forecast, its interval, the real test metric
there and the error (forecast minus real).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def check(curve_file: Path, longer: Path) -> list[str]:
    curve = json.loads(curve_file.read_text())
    metric = curve["metric"]
    rows = {
        r["labeled"]: r for r in map(json.loads, (longer / "rounds.jsonl").read_text().splitlines())
    }
    lines = []
    for e in curve["extrapolations"]:
        real = rows.get(round(e["labels"]))
        if real is None:
            continue
        y = real["test"][metric]
        inside = e["low"] <= y <= e["high"]
        lines.append(
            f"| {curve_file} | {curve['labeled']:,} | {e['factor']:g}x = {round(e['labels']):,} "
            f"| {e[metric]:.4f} [{e['low']:.4f}, {e['high']:.4f}] | {y:.4f} "
            f"| {e[metric] - y:+.4f} | {'yes' if inside else 'no'} |"
        )
    return lines


def main() -> None:
    out = [
        "| curve | labels used | extrapolated to | forecast [95% interval] | real | error | "
        "inside |",
        "|---|---|---|---|---|---|---|",
    ]
    for arg in sys.argv[1:]:
        curve_file, longer = arg.split("=", 1)
        out += check(Path(curve_file), Path(longer))
    print("\n".join(out))


if __name__ == "__main__":
    main()
