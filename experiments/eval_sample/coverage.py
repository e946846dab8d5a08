"""Coverage of the evaluation sample's interval: for every round of every job of a sweep run
with eval.size=N on data that also has a gold test split, does the sample's interval contain
the full test split's metric? Prints a table per job and the overall share.

    python experiments/eval_sample/coverage.py SWEEP_DIR [--metric accuracy]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("sweep", type=Path)
    p.add_argument("--metric", default="accuracy")
    args = p.parse_args()
    m = args.metric
    total = covered = 0
    print(f"| job | rounds | interval holds the test {m} | mean width | mean |eval - test| |")
    print("|---|---|---|---|---|")
    for job in sorted(d for d in args.sweep.iterdir() if (d / "rounds.jsonl").exists()):
        rows = [json.loads(line) for line in (job / "rounds.jsonl").read_text().splitlines()]
        hits = [r["eval"][f"{m}_low"] <= r["test"][m] <= r["eval"][f"{m}_high"] for r in rows]
        width = sum(r["eval"][f"{m}_high"] - r["eval"][f"{m}_low"] for r in rows) / len(rows)
        gap = sum(abs(r["eval"][m] - r["test"][m]) for r in rows) / len(rows)
        labeled = {x["index"] for x in map(json.loads, (job / "labeled.jsonl").open())}
        held = {x["index"] for x in map(json.loads, (job / "eval_sample.jsonl").open())}
        assert not labeled & held, f"{job}: evaluation items in labeled.jsonl"
        overrides = (job / ".hydra" / "overrides.yaml").read_text().split()
        seed = next((o.split("=")[1] for o in overrides if o.startswith("seed=")), "?")
        print(
            f"| seed {seed} (n={rows[0]['eval']['n']}) | {len(rows)} | {sum(hits)}/{len(rows)} "
            f"| {width:.3f} | {gap:.3f} |"
        )
        assert len(labeled) == rows[-1]["labeled"]
        total, covered = total + len(rows), covered + sum(hits)
    print(f"\noverall: {covered}/{total} rounds = {covered / total:.1%}")
    print("no evaluation item in any labeled.jsonl (checked against eval_sample.jsonl)")


if __name__ == "__main__":
    main()
