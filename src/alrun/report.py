"""`alrun-report`: one table and one plot from a sweep, so strategies compare at a glance.

Reads only the files a run writes (`.hydra/`, `rounds.jsonl`, `summary.json`) and the sweep's
`multirun.yaml`, so it works on sweeps that are still running or were killed: runs that cannot
be used are listed with the reason instead of failing the report. Groups are the override
values that differ between runs; `seed` is the replicate key, averaged over.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import sys
import textwrap
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from alrun.data import json_records
from alrun.errors import AlrunError
from alrun.tracking import aulc, labels_to_target, save_figure, write_atomic

HEADLINE = {"multiclass": "accuracy", "ner": "f1"}  # the task's first headline metric
X_UNITS = ("labeled", "tokens", "documents", "sentences")
REPLICATE = "seed"
DEFAULT = "(default)"
DASH = "\u2013"  # en dash: a missing value in the table


class _Skip(Exception):
    """A run that cannot go into the report; the message is the reason shown."""


@dataclass
class Run:
    path: Path
    overrides: list[str]
    config: dict[str, Any]
    rows: list[tuple[int, dict[str, Any]]]  # (line number in rounds.jsonl, row)
    seconds: float
    xs: np.ndarray = field(default_factory=lambda: np.empty(0))
    ys: np.ndarray = field(default_factory=lambda: np.empty(0))

    @property
    def task(self) -> str:
        return str(_get(self.config, "task.name") or "unknown")

    def unit(self, x: str) -> str:
        """What one x step counts: items of the run's `loop.unit` or a cost unit."""
        return f"{_get(self.config, 'loop.unit') or 'item'}s" if x == "labeled" else x

    def value(self, key: str) -> str:
        """The run's value for an override key, from the config when it was not overridden."""
        for o in self.overrides:
            k, v = _split(o)
            if k == key:
                return v
        found = _get(self.config, key)
        if isinstance(found, dict):
            found = found.get("name")
        return DEFAULT if found is None or isinstance(found, list) else str(found)


@dataclass
class Skipped:
    path: Path
    reason: str


@dataclass
class Group:
    name: str
    keys: dict[str, str]
    runs: list[Run]
    at: list[tuple[float, float, int]]  # mean, std, runs covering the point
    aulc: tuple[float, float, int]
    target: tuple[float, float, int] | None  # mean, std over runs that reached it, how many
    final: tuple[float, float, int]
    seconds: float
    floor: float | None = None  # lowest score of any run's round at x >= Report.floor_from
    # per stopping rule: x where it stops, the metric there, that minus the final metric
    # (mean, std, runs it stopped); the rules the runs recorded (rounds.jsonl `stopping`)
    stops: dict[str, tuple[tuple[float, float, int], ...]] = field(default_factory=dict)

    @property
    def seeds(self) -> list[str]:
        return [r.value(REPLICATE) for r in self.runs]


@dataclass
class Report:
    paths: list[Path]
    title: str
    metric: str
    task: str
    x: str
    unit: str
    points: list[float]
    aulc_range: tuple[float, float] | None  # None: each run over its own range
    target: float | None
    varying: list[str]
    fixed: list[str]
    groups: list[Group]
    skipped: list[Skipped]
    notes: list[str]
    floor_from: float | None = None

    @property
    def rules(self) -> list[str]:
        """The stopping rules any group recorded (their columns), in the order recorded."""
        return list(dict.fromkeys(k for g in self.groups for k in g.stops))


# --------------------------------------------------------------------------- small helpers


def _get(d: Any, dotted: str) -> Any:
    for part in dotted.lstrip("+").split("."):
        if not isinstance(d, dict) or part not in d:
            return None
        d = d[part]
    return d


def _split(override: str) -> tuple[str, str]:
    """`key=value` -> (key, value); `+key`/`++key` name the same key, `~key` deletes it."""
    key, eq, value = override.partition("=")
    key = key.lstrip("+")
    if key.startswith("~"):
        return key[1:], "(deleted)"
    return key, value if eq else ""


def _natural(name: str) -> tuple[int, int | str]:
    return (0, int(name)) if name.isdigit() else (1, name)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _fmt_x(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _short(path: Path) -> str:
    """A folder's name for titles; a job folder (`3`) keeps its sweep's name (`12-00-00/3`)."""
    p = path.resolve()
    return f"{p.parent.name}/{p.name}" if p.name.isdigit() else p.name


def _yaml_error(e: Exception) -> str:
    mark = getattr(e, "problem_mark", None)
    problem = getattr(e, "problem", None) or str(e).splitlines()[0]
    return f"line {mark.line + 1}: {problem}" if mark is not None else problem


# --------------------------------------------------------------------------- curve arithmetic


def interp_at(xs: np.ndarray, ys: np.ndarray, x: float) -> float:
    """The curve at x, linear between rounds; NaN outside the run's range (no extrapolation)."""
    if len(xs) == 0 or x < xs[0] or x > xs[-1]:
        return math.nan
    return float(np.interp(x, xs, ys))


def clip_curve(xs: np.ndarray, ys: np.ndarray, lo: float, hi: float) -> tuple[np.ndarray, ...]:
    """The curve restricted to [lo, hi], with interpolated end points, so AULCs share a range."""
    inside = (xs > lo) & (xs < hi)
    cx = np.concatenate([[lo], xs[inside], [hi]]) if hi > lo else np.array([lo])
    cy = np.array([interp_at(xs, ys, v) for v in cx])
    return cx, cy


def mean_std(values: Sequence[float]) -> tuple[float, float, int]:
    """Mean and population std (ddof=0) of the non-NaN values, and how many there were."""
    v = np.asarray([x for x in values if not math.isnan(x)], float)
    if len(v) == 0:
        return math.nan, math.nan, 0
    return float(v.mean()), float(v.std()), len(v)


def default_points(runs: Sequence[Run], n: int = 4) -> list[float]:
    """n evenly spaced whole x values inside the range every run covers (else the union)."""
    lo, hi = max(float(r.xs[0]) for r in runs), min(float(r.xs[-1]) for r in runs)
    if lo > hi:
        lo, hi = min(float(r.xs[0]) for r in runs), max(float(r.xs[-1]) for r in runs)
    pts = np.clip(np.round(np.linspace(lo, hi, n)), math.ceil(lo), math.floor(hi))
    return [float(p) for p in dict.fromkeys(pts.tolist())] if hi - lo >= 1 else [lo]


# --------------------------------------------------------------------------- finding runs


def _is_run(d: Path) -> bool:
    return (d / ".hydra" / "overrides.yaml").is_file()


def find(paths: Sequence[Path]) -> tuple[list[Path], list[Path]]:
    """Run folders and multirun folders under the paths, in job order, each once."""
    runs: dict[Path, Path] = {}
    sweeps: dict[Path, Path] = {}
    for root in paths:
        if not root.is_dir():
            raise AlrunError(f"{root} is not a folder; give a sweep, run or outputs folder")
        for dirpath, dirnames, filenames in os.walk(root):
            d = Path(dirpath)
            if _is_run(d):
                runs.setdefault(d.resolve(), d)
                dirnames[:] = []
                continue
            if "multirun.yaml" in filenames:
                sweeps.setdefault(d.resolve(), d)
            dirnames[:] = sorted(
                (n for n in dirnames if not n.startswith(".") and n not in ("model", "wandb")),
                key=_natural,
            )
    return list(runs.values()), list(sweeps.values())


def expected_jobs(multirun: dict[str, Any]) -> tuple[list[list[str]], list[str]]:
    """Every job's overrides in Hydra's job order, and the keys the sweep varies.

    Uses Hydra's own parser and basic sweeper, so `a=1,2`, `range()` and sweeper params expand
    exactly as they did when the sweep was launched.
    """
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    hydra = multirun["hydra"]
    sweeper = hydra.get("sweeper") or {}
    target = str(sweeper.get("_target_", ""))
    if not target.endswith("BasicSweeper"):
        raise ValueError(f"sweeper {target} is not Hydra's basic sweeper")
    args = [f"{k}={v}" for k, v in (sweeper.get("params") or {}).items()]
    args += list(hydra["overrides"]["task"])
    if any("glob(" in a for a in args):
        raise ValueError("glob() sweeps need the config folder to expand")
    parsed = OverridesParser.create().parse_overrides(args)
    swept = [_split(o.get_key_element())[0] for o in parsed if o.is_sweep_override()]
    jobs = [job for batch in BasicSweeper.split_arguments(parsed, None) for job in batch]
    return jobs, swept


def not_started(sweep: Path, found: Sequence[Path]) -> tuple[list[Skipped], list[str]]:
    """The sweep's jobs whose folder never appeared (matched by overrides, else by job number)."""
    try:
        multirun = yaml.safe_load((sweep / "multirun.yaml").read_text(encoding="utf-8"))
        jobs, swept = expected_jobs(multirun)
        by_number = _get(multirun, "hydra.sweep.subdir") == "${hydra.job.num}"
    except Exception as e:  # an odd sweeper or a corrupt file must not cost the report
        return [], [f"`{sweep}`: could not list the sweep's jobs ({e}); not-started jobs unknown"]
    mine = [p for p in found if p.resolve().is_relative_to(sweep.resolve())]
    have: Counter[tuple[str, ...]] = Counter()
    names = {p.resolve().relative_to(sweep.resolve()).as_posix() for p in mine}
    for p in mine:
        try:
            have[tuple(sorted(yaml.safe_load((p / ".hydra" / "overrides.yaml").read_text())))] += 1
        except Exception:
            continue  # reported as unreadable by load_run
    out = []
    for i, job in enumerate(jobs):
        key = tuple(sorted(job))
        if have[key] > 0:
            have[key] -= 1
            continue
        if by_number and str(i) in names:
            continue
        shown = " ".join(o for o in job if _split(o)[0] in swept) or " ".join(job)
        out.append(
            Skipped(sweep / str(i) if by_number else sweep, f"not started: job {i} ({shown})")
        )
    return out, []


# --------------------------------------------------------------------------- reading a run


def load_run(path: Path) -> Run:
    """A run's overrides, config, finished rounds and summary; raises _Skip with the reason."""
    hyd = path / ".hydra"
    try:
        overrides = yaml.safe_load((hyd / "overrides.yaml").read_text(encoding="utf-8")) or []
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise _Skip(f"unreadable .hydra/overrides.yaml: {_yaml_error(e)}") from e
    if not isinstance(overrides, list) or not all(isinstance(o, str) for o in overrides):
        raise _Skip("corrupt .hydra/overrides.yaml: not a list of key=value strings")
    if not (hyd / "config.yaml").is_file():
        raise _Skip("no .hydra/config.yaml")
    try:
        config = yaml.safe_load((hyd / "config.yaml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise _Skip(f"unreadable .hydra/config.yaml: {_yaml_error(e)}") from e
    if not isinstance(config, dict):
        raise _Skip("corrupt .hydra/config.yaml: not a mapping")
    if not (path / "rounds.jsonl").is_file():
        raise _Skip("no finished round (no rounds.jsonl)")
    try:
        with (path / "rounds.jsonl").open("rb") as f:
            rows = [
                (int(where.rsplit(" ", 1)[1]), row)
                for where, row in json_records(f, "rounds.jsonl")
            ]
    except OSError as e:
        raise _Skip(f"unreadable rounds.jsonl: {e}") from e
    except AlrunError as e:  # names the line: a half-written or hand-edited file
        raise _Skip(f"corrupt {e}") from e
    if not rows:
        raise _Skip("no finished round (rounds.jsonl is empty)")
    if not (path / "summary.json").is_file():
        last = rows[-1][1].get("labeled", "?")
        raise _Skip(f"unfinished: {_plural(len(rows), 'round')}, last at {last} labels")
    try:
        summary = json.loads((path / "summary.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise _Skip(f"unreadable summary.json: {e}") from e
    except json.JSONDecodeError as e:
        raise _Skip(f"corrupt summary.json line {e.lineno}: {e.msg}") from e
    seconds = summary.get("seconds") if isinstance(summary, dict) else None
    return Run(path, overrides, config, rows, float(seconds) if seconds is not None else math.nan)


def _metric(row: dict[str, Any], metric: str) -> Any:
    return _get(row.get("test"), metric.replace("/", "."))


def set_curve(run: Run, x: str, metric: str) -> None:
    """Fill run.xs/ys from its rounds; a missing value or a decreasing x is a _Skip."""
    xs: list[float] = []
    ys: list[float] = []
    for n, row in run.rows:
        xv = row.get("labeled") if x == "labeled" else _get(row.get("cost"), x)
        if not isinstance(xv, (int, float)):
            what = "`labeled`" if x == "labeled" else f"cost `{x}`"
            raise _Skip(f"rounds.jsonl line {n} has no {what}")
        yv = _metric(row, metric)
        if not isinstance(yv, (int, float)) or isinstance(yv, bool):
            has = ", ".join(
                k for k, v in (row.get("test") or {}).items() if not isinstance(v, dict)
            )
            raise _Skip(f"rounds.jsonl line {n} has no test metric `{metric}` (has: {has})")
        if xs and xv < xs[-1]:
            raise _Skip(f"rounds.jsonl line {n}: x `{x}` goes down ({xs[-1]} -> {xv})")
        xs.append(float(xv))
        ys.append(float(yv))
    run.xs, run.ys = np.array(xs), np.array(ys)


def _keep_majority(
    runs: list[Run], what: str, of: Any, skipped: list[Skipped]
) -> tuple[list[Run], str]:
    counts = Counter(of(r) for r in runs)
    major = counts.most_common(1)[0][0]
    for r in runs:
        if of(r) != major:
            skipped.append(Skipped(r.path, f"{what} {of(r)} differs from the majority ({major})"))
    return [r for r in runs if of(r) == major], major


# --------------------------------------------------------------------------- the report


def varying_keys(runs: Sequence[Run]) -> tuple[list[str], list[str]]:
    """Override keys whose values differ between runs (seed excluded), and the fixed ones."""
    keys = list(dict.fromkeys(_split(o)[0] for r in runs for o in r.overrides))
    varying = [k for k in keys if k != REPLICATE and len({r.value(k) for r in runs}) > 1]
    fixed = [f"{k}={runs[0].value(k)}" for k in keys if k != REPLICATE and k not in varying]
    return varying, fixed


def group_runs(runs: Sequence[Run], keys: Sequence[str]) -> dict[str, list[Run]]:
    """Runs that differ only in seed, by name (`strategy=margin, loop.round_size=20`)."""
    groups: dict[str, list[Run]] = {}
    for r in runs:
        name = ", ".join(f"{k}={r.value(k)}" for k in keys) or "all"
        groups.setdefault(name, []).append(r)
    return groups


def build(
    paths: Sequence[Path],
    *,
    metric: str | None = None,
    x: str = "labeled",
    at: Sequence[float] | None = None,
    target: float | None = None,
    title: str | None = None,
    floor_from: float | None = None,
) -> Report:
    """Everything the outputs show; AlrunError only when no run at all is usable."""
    runs, found, skipped, notes = _load_runs(paths)

    def fail(what: str) -> AlrunError:
        shown = "; ".join(f"{s.path}: {s.reason}" for s in skipped[:5])
        more = f" (and {len(skipped) - 5} more)" if len(skipped) > 5 else ""
        where = ", ".join(map(str, paths))
        return AlrunError(f"{what} under {where}" + (f": {shown}{more}" if shown else ""))

    if not runs:
        raise fail("no usable run" if found else "no run folder (.hydra/overrides.yaml) found")
    runs, task = _keep_majority(runs, "task", lambda r: r.task, skipped)
    metric = metric or HEADLINE.get(task) or str(_get(runs[0].config, "task.selection_metric"))
    usable = _with_curves(runs, x, metric, skipped)
    if not usable:
        raise fail(f"no usable run with test `{metric}` against `{x}`")
    runs, unit = _keep_majority(usable, "x unit", lambda r: r.unit(x), skipped)
    if target is None and metric == HEADLINE.get(task):  # the runs' own task.target
        targets = {_get(r.config, "task.target") for r in runs}
        target = float(targets.pop()) if len(targets) == 1 and None not in targets else None
    varying, fixed = varying_keys(runs)
    points = [float(p) for p in at] if at else default_points(runs)
    lo, hi = max(float(r.xs[0]) for r in runs), min(float(r.xs[-1]) for r in runs)
    aulc_range = (lo, hi) if lo <= hi else None
    if aulc_range is None:
        notes.append("the runs share no x range, so each AULC is over the run's own range")
    groups = [
        _group(name, members, varying, points, aulc_range, target, floor_from)
        for name, members in group_runs(runs, varying).items()
    ]
    notes += _repeated_seeds(groups)
    skipped.sort(key=lambda s: [_natural(p) for p in s.path.parts])
    return Report(
        paths=list(paths),
        title=title or "alrun report: " + ", ".join(map(_short, paths)),
        metric=metric,
        task=task,
        x=x,
        unit=unit,
        points=points,
        aulc_range=aulc_range,
        target=target,
        varying=varying,
        fixed=fixed,
        groups=groups,
        skipped=skipped,
        notes=notes,
        floor_from=floor_from,
    )


def _with_curves(runs: list[Run], x: str, metric: str, skipped: list[Skipped]) -> list[Run]:
    """The runs whose rounds give `metric` against `x`; the others join `skipped`."""
    usable = []
    for r in runs:
        try:
            set_curve(r, x, metric)
            usable.append(r)
        except _Skip as e:
            skipped.append(Skipped(r.path, str(e)))
    return usable


def _load_runs(paths: Sequence[Path]) -> tuple[list[Run], list[Path], list[Skipped], list[str]]:
    """Every run folder under `paths` that reads; the rest (and unstarted jobs) as skipped."""
    found, sweeps = find(paths)
    skipped: list[Skipped] = []
    notes: list[str] = []
    runs: list[Run] = []
    for p in found:
        try:
            runs.append(load_run(p))
        except _Skip as e:
            skipped.append(Skipped(p, str(e)))
    for s in sweeps:
        missing, why = not_started(s, found)
        skipped += missing
        notes += why
    return runs, found, skipped, notes


def _group(
    name: str,
    members: list[Run],
    varying: list[str],
    points: list[float],
    aulc_range: tuple[float, float] | None,
    target: float | None,
    floor_from: float | None,
) -> Group:
    """One group's numbers: metric at the points, AULC over the shared range, target, floor."""
    areas = [
        aulc(*clip_curve(r.xs, r.ys, *aulc_range)) if aulc_range else aulc(r.xs, r.ys)
        for r in members
    ]
    return Group(
        name=name,
        keys={k: members[0].value(k) for k in varying},
        runs=members,
        at=[mean_std([interp_at(r.xs, r.ys, p) for r in members]) for p in points],
        aulc=mean_std(areas),
        target=None
        if target is None
        else mean_std([labels_to_target(r.xs, r.ys, target) for r in members]),
        final=mean_std([float(r.ys[-1]) for r in members]),
        seconds=mean_std([r.seconds for r in members])[0],
        floor=None if floor_from is None else _floor(members, floor_from),
        stops={rule: _stop_stats(members, rule) for rule in _rules(members)},
    )


def _rules(runs: Sequence[Run]) -> list[str]:
    """The stopping rules any run recorded, in the order recorded."""
    names = (k for r in runs for _, row in r.rows for k, v in (row.get("stopping") or {}).items())
    return [k for k in dict.fromkeys(names) if k != "stop_set"]


def stop_point(run: Run, rule: str) -> int | None:
    """The position of the first round after which `rule` said stop; None: it never did."""
    for i, (_, row) in enumerate(run.rows):
        if (((row.get("stopping") or {}).get(rule)) or {}).get("stop"):
            return i
    return None


def _stop_stats(runs: Sequence[Run], rule: str) -> tuple[tuple[float, float, int], ...]:
    """Where `rule` would have stopped each run: x, the metric there, and that metric minus
    the run's final one (mean, std over the runs it stopped, how many)."""
    at = [(r, i) for r in runs if (i := stop_point(r, rule)) is not None]
    return (
        mean_std([float(r.xs[i]) for r, i in at]),
        mean_std([float(r.ys[i]) for r, i in at]),
        mean_std([float(r.ys[i] - r.ys[-1]) for r, i in at]),
    )


def _repeated_seeds(groups: list[Group]) -> list[str]:
    notes = []
    for g in groups:
        twice = sorted({s for s in g.seeds if g.seeds.count(s) > 1}, key=_natural)
        if twice:
            notes.append(
                f"group {g.name} has seed {', '.join(twice)} in more than one run; "
                "n counts runs, so those seeds weigh more"
            )
    return notes


def _floor(runs: Sequence[Run], start: float) -> float:
    """The worst round of any run from x = start on (NaN when no round is that far): a
    collapse that a mean over seeds and rounds hides."""
    tail = [float(y) for r in runs for x, y in zip(r.xs, r.ys, strict=True) if x >= start]
    return min(tail) if tail else math.nan


# --------------------------------------------------------------------------- outputs


def _ms(m: float, s: float, k: int, n: int) -> str:
    if k == 0:
        return DASH
    return f"{m:.3f} ± {s:.3f}" + (f" ({k}/{n})" if k < n else "")


def _seeds(values: Sequence[str]) -> str:
    return ", ".join(sorted(dict.fromkeys(values), key=_natural))


def _about(rep: Report) -> list[str]:
    """report.md's opening list: what was compared and how each column is computed."""
    m, unit = rep.metric, rep.unit
    n_runs = sum(len(g.runs) for g in rep.groups)
    lines = [
        f"# {rep.title}",
        "",
        "- Sweep folder(s): " + ", ".join(f"`{p}`" for p in rep.paths),
        f"- Runs: {n_runs} used, {len(rep.skipped)} skipped (listed below)",
        f"- Metric: test `{m}` (task `{rep.task}`); mean ± std over seeds "
        "(population std, ddof=0); n = seeds",
        f"- x: labelled {unit} (`--x {rep.x}`); `{m} @ x` is linear between rounds, "
        f"{DASH} outside a run's range, (k/n) where only k runs reach x",
    ]
    if rep.aulc_range:
        lo, hi = rep.aulc_range
        lines.append(
            f"- AULC: area under each run's curve over {_fmt_x(lo)}{DASH}{_fmt_x(hi)} "
            f"labelled {unit} (the range all runs share), divided by its width"
        )
    if rep.target is not None:
        lines.append(
            f"- Target: `{unit} to {rep.target:g}` is the first x where the curve reaches "
            f"{rep.target:g} (linear between rounds), mean ± std over the seeds that reached it"
        )
    seeds = _seeds([s for g in rep.groups for s in g.seeds])
    varies = ", ".join(
        f"`{k}` ({', '.join(dict.fromkeys(g.keys[k] for g in rep.groups))})" for k in rep.varying
    )
    lines.append(f"- Varies: {varies or 'nothing but the seed'}; replicates: `seed` ({seeds})")
    if rep.fixed:
        lines.append("- Fixed overrides: " + ", ".join(f"`{f}`" for f in rep.fixed))
    if rep.floor_from is not None:
        lines.append(
            f"- Worst: the lowest `{m}` of any seed's round from {_fmt_x(rep.floor_from)} "
            f"labelled {unit} on"
        )
    rules = rep.rules
    if rules:
        lines.append(
            f"- Stopping rules ({', '.join(f'`{k}`' for k in rules)}): `<rule> stops @` is the "
            f"x of the first round after which the rule said stop (rounds.jsonl `stopping`), "
            f"mean ± std over the seeds it stopped (k/n); `{m} there` the test `{m}` at that "
            f"round and, in brackets, minus the run's final `{m}`"
        )
    lines.append("- Seconds: wall time of a run (summary.json `seconds`), mean over seeds")
    lines += [f"- Note: {n}" for n in rep.notes]
    return lines


def _table(rep: Report) -> list[str]:
    m, unit = rep.metric, rep.unit
    head = ["group", "n", *(f"{m} @ {_fmt_x(p)}" for p in rep.points), "AULC"]
    if rep.target is not None:
        head.append(f"{unit} to {rep.target:g}")
    if rep.floor_from is not None:
        head.append(f"worst from {_fmt_x(rep.floor_from)}")
    rules = rep.rules
    for rule in rules:
        head += [f"{rule} stops @", f"{m} there (- final)"]
    head += [f"final {m}", "seconds"]
    lines = ["", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for g in rep.groups:
        n = len(g.runs)
        cells = [g.name, str(n), *(_ms(*a, n) for a in g.at), _ms(*g.aulc, n)]
        if g.target is not None:
            tm, ts, k = g.target
            cells.append(
                f"{tm:,.1f} ± {ts:,.1f} ({k}/{n} reached)" if k else f"not reached (0/{n})"
            )
        if g.floor is not None:
            cells.append(DASH if math.isnan(g.floor) else f"{g.floor:.3f}")
        for rule in rules:
            cells += _stop_cells(g.stops.get(rule), n)
        cells += [_ms(*g.final, n), f"{g.seconds:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _stop_cells(stats: tuple[tuple[float, float, int], ...] | None, n: int) -> list[str]:
    """A rule's two cells: where it stops (k/n stopped) and the metric there (minus final)."""
    if stats is None or stats[0][2] == 0:
        return [f"never (0/{n})", DASH]
    (xm, xs, k), (ym, ys, _), (dm, ds, _) = stats
    return [f"{xm:,.1f} ± {xs:,.1f} ({k}/{n})", f"{ym:.3f} ± {ys:.3f} ({dm:+.3f} ± {ds:.3f})"]


def markdown(rep: Report) -> str:
    """report.md: what was compared and how, the table, the plot, and every run left out."""
    lines = [*_about(rep), *_table(rep)]
    lines += ["", "![learning curves](report.png)", "", "## Skipped runs", ""]
    lines += [f"- `{s.path}`: {s.reason}" for s in rep.skipped] or ["None."]
    return "\n".join(lines) + "\n"


def table_csv(rep: Report) -> str:
    """report.csv: one row per group, full-precision numbers (NaN as `nan`)."""
    head = [*rep.varying, "group", "n", "seeds"]
    for p in rep.points:
        head += [f"{rep.metric}@{_fmt_x(p)}_{s}" for s in ("mean", "std", "n")]
    head += ["aulc_mean", "aulc_std"]
    if rep.target is not None:
        head += [f"to_{rep.target:g}_{s}" for s in ("mean", "std", "reached")]
    if rep.floor_from is not None:
        head.append(f"worst_from_{_fmt_x(rep.floor_from)}")
    rules = rep.rules
    for rule in rules:
        head += [f"{rule}_stop_{s}" for s in ("mean", "std", "stopped")]
        head += [f"{rule}_there_{s}" for s in ("mean", "std")]
        head += [f"{rule}_minus_final_{s}" for s in ("mean", "std")]
    head += ["final_mean", "final_std", "seconds_mean"]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(head)
    for g in rep.groups:
        row: list[Any] = [*g.keys.values(), g.name, len(g.runs), " ".join(g.seeds)]
        for m, s, k in g.at:
            row += [m, s, k]
        row += list(g.aulc[:2])
        if g.target is not None:
            row += list(g.target)
        if g.floor is not None:
            row.append(g.floor)
        for rule in rules:
            nan3 = (math.nan, math.nan, 0)
            at, there, delta = g.stops.get(rule) or (nan3, nan3, nan3)
            row += [*at, *there[:2], *delta[:2]]
        row += [*g.final[:2], g.seconds]
        w.writerow([repr(v) if isinstance(v, float) else v for v in row])
    return buf.getvalue()


def plot(rep: Report, path: Path) -> None:
    """Mean curve per group with a ±1 std band, written to a temporary name then renamed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [textwrap.fill(f"{g.name} (n={len(g.runs)})", 110) for g in rep.groups]
    below = len(names) > 6 or max(len(n) for n in names) > 60  # long names: under the axes
    fig, ax = plt.subplots(figsize=(9 if below else 8, 5))
    for g, label in zip(rep.groups, names, strict=True):
        grid = np.unique(np.concatenate([r.xs for r in g.runs]))  # every round of every seed
        ys = np.array([[interp_at(r.xs, r.ys, v) for v in grid] for r in g.runs])
        stats = np.array([mean_std(col)[:2] for col in ys.T])
        mean, std = stats[:, 0], stats[:, 1]
        (line,) = ax.plot(grid, mean, marker=".", label=label)
        ax.fill_between(grid, mean - std, mean + std, color=line.get_color(), alpha=0.2)
    if rep.target is not None:
        ax.axhline(rep.target, color="0.5", ls=":", lw=1)
    ax.set_xlabel(f"labelled {rep.unit}")
    ax.set_ylabel(f"test {rep.metric}")
    ax.set_title(rep.title, fontsize=10)
    ax.grid(alpha=0.3)
    if below:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0.0, -0.12))
        save_figure(fig, path, bbox_inches="tight")
    else:
        ax.legend(fontsize=8, loc="lower right")
        fig.tight_layout()
        save_figure(fig, path)


def write(rep: Report, out: Path) -> str:
    out.mkdir(parents=True, exist_ok=True)
    text = markdown(rep)
    write_atomic(out / "report.md", text)
    write_atomic(out / "report.csv", table_csv(rep))
    plot(rep, out / "report.png")
    return text


# --------------------------------------------------------------------------- command line


def _points(text: str) -> list[float]:
    try:
        pts = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        msg = f"--at wants numbers like 50,100,200, not {text!r}"
        raise argparse.ArgumentTypeError(msg) from None
    if not pts:
        raise argparse.ArgumentTypeError("--at wants at least one number")
    return sorted(pts)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="alrun-report",
        description="Table (report.md, report.csv) and learning curves (report.png) of the "
        "runs in one or more sweep folders, grouped by what varies, averaged over seeds.",
    )
    p.add_argument(
        "paths",
        nargs="+",
        type=Path,
        metavar="SWEEP_DIR",
        help="a multirun folder, a run folder, or a folder holding them",
    )
    p.add_argument("--metric", help="test metric (default: the task's, accuracy or f1)")
    p.add_argument("--x", choices=X_UNITS, default="labeled", help="x unit (default: labeled)")
    p.add_argument("--at", type=_points, help="x points, e.g. 50,100,200 (default: 4 spread)")
    p.add_argument("--target", type=float, help="report the labels needed to reach this score")
    p.add_argument(
        "--floor-from",
        type=float,
        metavar="X",
        help="add the worst round of any seed from X on (a collapse that means hide)",
    )
    p.add_argument("--out", type=Path, help="output folder (default: the first SWEEP_DIR)")
    p.add_argument("--title", help="title of report.md and report.png")
    return p


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    try:
        rep = build(
            args.paths,
            metric=args.metric,
            x=args.x,
            at=args.at,
            target=args.target,
            title=args.title,
            floor_from=args.floor_from,
        )
        out = args.out or args.paths[0]
        text = write(rep, out)
    except AlrunError as e:
        print(f"alrun-report: error: {e}", file=sys.stderr)
        sys.exit(2)
    except OSError as e:
        print(f"alrun-report: error: cannot write the report: {e}", file=sys.stderr)
        sys.exit(2)
    sys.stdout.write(text)
    print(f"alrun-report: wrote report.md, report.csv, report.png to {out}", file=sys.stderr)
