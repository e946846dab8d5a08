"""`alrun-curve RUN_DIR`: would more labels help? The run's kept model, refit on less.

    alrun-curve outputs/runs/DATE/TIME                 # the last round's labels and kept model
    alrun-curve outputs/runs/DATE/TIME --labels 100    # the run as it stood at 100 labels

Like Prodigy's `train-curve`: the candidate the run kept at a round (its `chosen`, with the
`tuned` values of that round) is refit on random subsets of that round's labelled items
(`--fractions`, `--repeats` draws below 100%) and scored on the run's held-out data (its test
split, else its evaluation sample). If the last quarter still gains, more labels of the same
kind will likely help. An inverse power law y = a - b n^-c fitted to every subset's score
extrapolates the metric at `--extrapolate` times the labels, with a percentile-bootstrap
interval over the subset results (resampled within each fraction, refit): it shows how much
the extrapolation moves with which labels were drawn, not the error of the curve's form nor
the test set's own noise.

Random subsets of an actively chosen set are not the run's own curve: the early rounds' items
were chosen by weaker models, a random quarter of the final set is not. The run's test curve
is drawn beside them for reference, not as the same thing.

Every fit uses the round's own training seed (as the run derived it), so the 100% fit is the
run's kept model again, and the spread below 100% is over which labels were drawn, not over
training seeds. A kept `ensemble` is refit as selection refits it: its members are
cross-validated on the subset for their out-of-fold vote weights (`weights: oof`), then each
is fitted on the whole subset. Writes curve.png and curve.json (curve-N.* with --labels N)
into RUN_DIR; the table goes to stdout, the log and the progress bar to stderr.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import logging
import math
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from alrun.checkpoint import decode_labels
from alrun.errors import AlrunError
from alrun.report import mean_std

log = logging.getLogger("alrun.curve")

FRACTIONS = (0.25, 0.5, 0.75, 1.0)
EXTRAPOLATE = (1.5, 2.0)
RESAMPLES = 500
LEVEL = 0.95
INTERVAL = (
    "percentile bootstrap over the subset results: the points of each fraction resampled with "
    "replacement and the curve refit; it shows how the extrapolation moves with which labels "
    "were drawn, not the error of the curve's form, the test set's noise, or the difference "
    "between random and actively chosen labels"
)


# --------------------------------------------------------------------------- the run folder


@dataclass
class RunFiles:
    """What a run folder holds, read without the data: the config, the rounds, the labels."""

    path: Path
    cfg: Any  # DictConfig: the composed config, interpolations kept (data_dir from the env)
    rows: list[dict[str, Any]]  # rounds.jsonl
    labeled: np.ndarray  # pool indices in acquisition order (checkpoint.json)
    labels: list[Any]  # their labels as saved: class ids, or per sentence tag-id lists


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise AlrunError(f"{path}: cannot read the run's {what} ({e})") from e


def _jsonl(path: Path) -> list[dict[str, Any]]:
    """A JSON-lines file the run wrote; a damaged one is an error naming the line."""
    from alrun.data import json_records

    with path.open("rb") as f:
        return [rec for _, rec in json_records(f, str(path))]


def read_run(run_dir: Path) -> RunFiles:
    """The run folder's config, rounds and labels; errors say what is missing and why."""
    from omegaconf import OmegaConf

    from alrun.config import AlrunConfig, register_schema

    if not run_dir.is_dir():
        raise AlrunError(f"{run_dir} not found; give a run folder made by alrun")
    config = run_dir / ".hydra" / "config.yaml"
    if not config.is_file():
        raise AlrunError(
            f"{run_dir} is not a run folder (no .hydra/config.yaml); give the folder of one "
            "run (outputs/runs/DATE/TIME, or a sweep's job folder)"
        )
    register_schema()  # the resolver a web run's config may name
    try:  # the schema first, as alrun composes it: keys added since the run take defaults
        cfg = OmegaConf.merge(OmegaConf.structured(AlrunConfig), OmegaConf.load(config))
    except Exception as e:  # omegaconf's and yaml's errors alike: the file is not usable
        raise AlrunError(f"{config}: not a config this alrun reads ({e})") from e
    rounds = run_dir / "rounds.jsonl"
    rows = _jsonl(rounds) if rounds.is_file() else []
    if not rows:
        raise AlrunError(
            f"{run_dir} has no rounds (rounds.jsonl is missing or empty): the run stopped "
            "before its first round ended; nothing to refit"
        )
    ckpt = run_dir / "checkpoint.json"
    if not ckpt.is_file():
        raise AlrunError(
            f"{run_dir} has no checkpoint.json, so no labels to refit on (it is written after "
            "every round); give a run folder made by this alrun"
        )
    state = _read_json(ckpt, "checkpoint")
    if not isinstance(state, dict) or "labeled" not in state or "labels" not in state:
        raise AlrunError(f"{ckpt}: no `labeled` and `labels` in it; not an alrun checkpoint")
    labeled = np.asarray(state["labeled"], dtype=np.int64)
    return RunFiles(run_dir, cfg, rows, labeled, list(state["labels"]))


def pick_round(rows: Sequence[dict[str, Any]], saved: int, labels: int | None) -> dict[str, Any]:
    """The round whose labelled count is `labels` (the last such round; default: the last
    round whose labels the checkpoint holds); `saved`: how many labels it holds."""
    counts = list(dict.fromkeys(int(r["labeled"]) for r in rows if int(r["labeled"]) <= saved))
    if not counts:
        raise AlrunError(
            f"checkpoint.json holds {saved} labels, fewer than any round of rounds.jsonl; "
            "the run folder is inconsistent"
        )
    n = counts[-1] if labels is None else labels
    if n not in counts:
        later = sorted({int(r["labeled"]) for r in rows} - set(counts))
        note = (
            f" (rounds at {', '.join(map(str, later))} are not in checkpoint.json: the run "
            "stopped before saving them)"
            if labels in later
            else ""
        )
        raise AlrunError(
            f"--labels {labels}: no round had exactly {labels} labelled items{note}; choose one "
            f"of the rounds' counts: {', '.join(map(str, counts))}"
        )
    return [r for r in rows if int(r["labeled"]) == n][-1]


# --------------------------------------------------------------------------- options


def parse_fractions(text: str) -> list[float]:
    """--fractions: increasing shares of the labels in (0, 1], e.g. 0.25,0.5,0.75,1.0."""
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    ok = values and all(0 < v <= 1 for v in values)
    if not ok or any(b <= a for a, b in itertools.pairwise(values)):
        raise AlrunError(
            f"--fractions {text}: give increasing shares of the labels in (0, 1], separated "
            "by commas, e.g. --fractions 0.25,0.5,0.75,1.0"
        )
    return values


def parse_factors(text: str) -> list[float]:
    """--extrapolate: multiples of the labels to extrapolate to, e.g. 1.5,2."""
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or not all(v > 0 and math.isfinite(v) for v in values):
        raise AlrunError(
            f"--extrapolate {text}: give positive multiples of the labels, separated by "
            "commas, e.g. --extrapolate 1.5,2"
        )
    return sorted(values)


def draw_subsets(
    n: int, fractions: Sequence[float], repeats: int, rng: np.random.Generator
) -> list[tuple[float, int, np.ndarray]]:
    """(fraction, repeat, positions among the n labels) of every fit. Each repeat shuffles
    the labels once and takes the first share of the shuffle for every fraction, so a repeat's
    subsets are nested; positions stay in acquisition order. 100% is one fit of everything."""
    out = []
    orders = [rng.permutation(n) for _ in range(repeats)]
    for f in fractions:
        size = max(1, int(f * n + 0.5))
        if size >= n:
            out.append((f, 0, np.arange(n)))
            continue
        out += [(f, j, np.sort(order[:size])) for j, order in enumerate(orders)]
    return out


# --------------------------------------------------------------------------- the curve


def power_law(n: Any, a: float, b: float, c: float) -> Any:
    """The inverse power law learning curve: the metric at n labels."""
    return a - b * np.power(np.asarray(n, dtype=np.float64), -c)


def _slopes(n: Any, a: float, b: float, c: float) -> np.ndarray:
    """power_law's derivatives by a, b and c: curve_fit's `jac`, for no finite differences."""
    n = np.asarray(n, dtype=np.float64)
    t = np.power(n, -c)
    return np.stack([np.ones_like(n), -t, b * t * np.log(n)], axis=1)


class FitError(Exception):
    """The curve could not be fitted; the message says why (shown, never a traceback)."""


@dataclass
class PowerLaw:
    a: float  # the plateau (the metric with unlimited labels of this kind), at most 1
    b: float
    c: float
    rmse: float

    def __call__(self, n: Any) -> Any:
        return power_law(n, self.a, self.b, self.c)


BOUNDS = ([0.0, 1e-9, 1e-6], [1.0, np.inf, 5.0])  # a <= 1, b > 0, c > 0


def fit_power_law(
    xs: Sequence[float], ys: Sequence[float], start: tuple[float, float, float] | None = None
) -> PowerLaw:
    """y = a - b n^-c by least squares (scipy's curve_fit within BOUNDS), from `start` or from
    a few starting exponents (the best fit kept)."""
    from scipy.optimize import OptimizeWarning, curve_fit

    x, y = np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)
    if len(np.unique(x)) < 3:
        raise FitError(
            f"the curve has 3 parameters and needs scores at 3 or more label counts, got "
            f"{len(np.unique(x))}; give more --fractions"
        )
    if start is None:
        a0 = min(1.0, float(y.max()) + 0.01)
        starts = [(a0, max((a0 - float(y.min())) * x.min() ** c0, 1e-3), c0) for c0 in (0.3, 0.7)]
    else:
        starts = [start]
    best: PowerLaw | None = None
    why = ""
    for p0 in starts:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", OptimizeWarning)
                warnings.simplefilter("ignore", RuntimeWarning)
                popt, _ = curve_fit(power_law, x, y, p0=p0, bounds=BOUNDS, jac=_slopes, maxfev=5000)
        except (RuntimeError, ValueError) as e:
            why = str(e)
            continue
        rmse = float(np.sqrt(np.mean((power_law(x, *popt) - y) ** 2)))
        if math.isfinite(rmse) and (best is None or rmse < best.rmse):
            best = PowerLaw(float(popt[0]), float(popt[1]), float(popt[2]), rmse)
    if best is None:
        raise FitError(f"curve_fit did not converge ({why or 'no finite fit'})")
    return best


@dataclass
class Bootstrap:
    params: np.ndarray  # (fits, 3): a, b, c of every resample that fitted
    resamples: int
    level: float

    def interval(self, n: Any) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) of the curve at n over the resampled fits (percentiles)."""
        ys = np.stack([power_law(n, *p) for p in self.params])
        tail = (1 - self.level) / 2 * 100
        low, high = np.percentile(ys, [tail, 100 - tail], axis=0)
        return low, high


def bootstrap(
    xs: Sequence[float],
    ys: Sequence[float],
    groups: Sequence[Any],
    fit: PowerLaw,
    rng: np.random.Generator,
    resamples: int = RESAMPLES,
    level: float = LEVEL,
) -> Bootstrap:
    """The curve refit on `resamples` resamples of the points, each drawn with replacement
    within its group (fraction), started from `fit`; FitError when under half of them fit."""
    x, y = np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)
    keys = list(dict.fromkeys(groups))
    members = [np.flatnonzero([g == k for g in groups]) for k in keys]
    params = []
    for _ in range(resamples):
        pick = np.concatenate([rng.choice(m, size=len(m), replace=True) for m in members])
        try:
            f = fit_power_law(x[pick], y[pick], start=(fit.a, fit.b, fit.c))
        except FitError:
            continue
        params.append((f.a, f.b, f.c))
    if len(params) < resamples / 2:
        raise FitError(f"only {len(params)} of {resamples} bootstrap refits converged")
    return Bootstrap(np.asarray(params), resamples, level)


# --------------------------------------------------------------------------- refitting


def _bare(spec: dict[str, Any]) -> dict[str, Any]:
    """A candidate spec as a model is built from it (selection takes `validation` off)."""
    return {k: v for k, v in spec.items() if k != "validation"}


def refit(
    task: Any,
    specs: dict[str, dict[str, Any]],
    key: str,
    ctx: Any,
    inputs: Sequence[Any],
    labels: np.ndarray,
    sel: Any,
) -> Any:
    """Candidate `key` fitted on the items, as selection fits a kept model: a plain model on
    all of them; a soft vote (`ensemble`) as `select_best` makes it, weights included."""
    from alrun.models import build_model
    from alrun.models.ensemble import ENSEMBLE, Ensemble

    def fitted(k: str) -> Any:
        model = build_model(ctx, _bare(specs[k]))
        model.fit(*task.fit_data(list(inputs), labels))
        return model

    if specs[key]["name"] != ENSEMBLE:
        return fitted(key)
    base = [k for k, s in specs.items() if s["name"] != ENSEMBLE]
    members = list(specs[key].get("members") or base)
    if specs[key].get("weights", "equal") == "oof":
        w = vote_weights(task, specs, members, ctx, inputs, labels, sel)
    else:
        w = np.full(len(members), 1 / len(members))
    weights = {m: float(x) for m, x in zip(members, w, strict=True)}
    return Ensemble.of({m: fitted(m) for m in members}, weights, ctx)


def vote_weights(
    task: Any,
    specs: dict[str, dict[str, Any]],
    members: Sequence[str],
    ctx: Any,
    inputs: Sequence[Any],
    labels: np.ndarray,
    sel: Any,
) -> np.ndarray:
    """The soft vote's `oof` weights as selection fits them: each member validated on its
    own splits of these items (the same splits, from the same seed), then the vote fitted."""
    from alrun.selection import candidate_splits, validate
    from alrun.selection import vote_weights as fitted_weights

    y = task.strata(labels)
    parts = []
    for m in members:
        splits, _ = candidate_splits(
            len(labels), y, sel, ctx.seed, specs[m].get("validation", "cv")
        )
        parts.append(validate(task, _bare(specs[m]), ctx, inputs, labels, splits, "metric"))
    if any(v.probs is None for v in parts):
        raise AlrunError("a soft vote needs class probabilities from every member")
    return fitted_weights(parts, labels, "oof")


# --------------------------------------------------------------------------- held-out data


def heldout_data(run: RunFiles, splits: Any, task: Any) -> tuple[Any, str]:
    """The data the run's `test` metrics come from: its test split, else the labelled items
    of its evaluation sample (eval_sample.jsonl, with the oracle's labels)."""
    if splits.test is not None:
        return splits.test, f"the test split ({len(splits.test)} items)"
    path = run.path / "eval_sample.jsonl"
    if not path.is_file():
        raise AlrunError(
            f"{run.path}: the data has no test split and the run no evaluation sample "
            "(eval_sample.jsonl), so there is nothing held out to score refits on"
        )
    pool = splits.pool
    names = list(pool.label_names)
    idx: list[int] = []
    labels: list[Any] = []
    for rec in _jsonl(path):
        if rec.get("skipped"):
            continue
        idx.append(int(rec["index"]))
        try:
            if task.name == "ner":
                labels.append([np.asarray([names.index(t) for t in s]) for s in rec["tags"]])
            else:
                labels.append(names.index(rec["label"]))
        except (KeyError, ValueError) as e:
            raise AlrunError(f"{path}: item {rec.get('index')} has no label of {names}") from e
    if not idx:
        raise AlrunError(f"{path}: every item was skipped; no held-out labels to score on")
    data = pool.subset(idx)
    data.labels = decode_labels(labels, task.name == "ner")
    data.gold = True
    return data, f"the evaluation sample ({len(idx)} items)"


def check_same_data(run: RunFiles, pool: Any, n: int) -> None:
    """The data read now is the data the run labelled: labeled.jsonl names each item's id."""
    if len(run.labeled) and int(run.labeled[:n].max()) >= len(pool):
        raise AlrunError(
            f"the pool read from data_dir={run.cfg.data_dir} has {len(pool)} items, but the run "
            f"labelled item {int(run.labeled[:n].max())}; set ALRUN_DATA_DIR to the data the "
            "run used"
        )
    path = run.path / "labeled.jsonl"
    if not path.is_file():
        return
    for rec, i in zip(_jsonl(path), run.labeled[:n], strict=False):  # a killed run: may lag
        if rec.get("index") == int(i) and rec.get("id") != pool.ids[i]:
            raise AlrunError(
                f"the data under data_dir={run.cfg.data_dir} is not the data this run "
                f"labelled: pool item {i} is {pool.ids[i]!r} here, {rec.get('id')!r} in "
                "labeled.jsonl; set ALRUN_DATA_DIR to the folder the run used"
            )


# --------------------------------------------------------------------------- the command


@dataclass
class Options:
    labels: int | None = None  # the round's labelled count; None: the last round
    fractions: Sequence[float] = FRACTIONS
    repeats: int = 3
    seed: int | None = None  # None: the run's seed
    extrapolate: Sequence[float] = EXTRAPOLATE
    resamples: int = RESAMPLES


@dataclass
class Curve:
    """Everything curve.json holds; the table and the plot are drawn from it."""

    run: str
    round: int
    labeled: int
    unit: str  # what one label is: document | sentence (loop.unit)
    candidate: str
    spec: dict[str, Any]
    heldout: str
    metric: str
    metrics: list[str]
    seed: int
    training_seed: int
    fractions: list[float]
    repeats: int
    points: list[dict[str, Any]]  # every fit: fraction, repeat, labels, its metrics
    rows: list[dict[str, Any]]  # per fraction: labels, fits, mean and std of each metric
    run_metrics: dict[str, float]  # the round's own test metrics (rounds.jsonl)
    run_curve: list[list[float]]  # [labeled, metric] of every round of the run
    last_gain: dict[str, float] | None = None
    fit: dict[str, float] | None = None
    fit_error: str | None = None
    extrapolations: list[dict[str, Any]] = field(default_factory=list)
    interval: dict[str, Any] | None = None


def _checked(cfg: Any) -> Any:
    """The run's parts (task, candidate specs), its settings checked as alrun checks them."""
    from omegaconf import OmegaConf

    from alrun.settings import check

    cfg = OmegaConf.create(OmegaConf.to_container(cfg))  # a copy: the run's file stays as is
    if cfg.oracle.get("name") == "web":  # no one is asked here: the server's access is moot
        cfg.oracle.host = "127.0.0.1"
    return check(cfg)


@dataclass
class Round:
    """A run as it stood at one round, ready to refit its kept candidate on its labels."""

    run: RunFiles
    row: dict[str, Any]  # the round's line of rounds.jsonl
    task: Any
    specs: dict[str, dict[str, Any]]  # every candidate's spec, the round's tuned values in
    splits: Any  # the data, read as the run read it
    ctx: Any  # the model context at the round's training seed
    labels: np.ndarray  # the round's labels (acquisition order)

    @property
    def key(self) -> str:
        return str(self.row["chosen"])

    @property
    def labeled(self) -> np.ndarray:
        return self.run.labeled[: len(self.labels)]

    def fit(self, positions: np.ndarray) -> Any:
        """The kept candidate fitted on the labels at `positions` (of the round's labels)."""
        inputs = self.task.inputs(self.splits.pool, self.labeled[positions])
        sel = self.run.cfg.selection
        return refit(self.task, self.specs, self.key, self.ctx, inputs, self.labels[positions], sel)

    def score(self, model: Any, data: Any) -> dict[str, float]:
        """The task's headline metrics of `model` on held-out `data`, as the run scores it."""
        task = self.task
        inputs = task.inputs(data, range(len(data)))
        pred = task.decode(task.predict(model, inputs), inputs)
        scores = task.metrics(data.labels, pred, data.label_names)
        return {m: float(scores[m]) for m in task.headline}


def prepare(run_dir: Path, labels: int | None = None) -> Round:
    """The run folder read, the round picked, its settings checked, the data read (and
    checked to be the data the run labelled); AlrunError for people."""
    from alrun.cli import limit_threads, load_data, model_context
    from alrun.rounds import round_seed

    run = read_run(run_dir)
    row = pick_round(run.rows, len(run.labeled), labels)
    n = int(row["labeled"])
    cfg = run.cfg
    parts = _checked(cfg)
    key = str(row["chosen"])
    if key not in parts.candidates:
        raise AlrunError(f"round {row['round']} kept {key!r}, which the run's config lacks")
    tuned = row.get("tuned") or {}
    specs = {k: {**s, **tuned.get(k, {})} for k, s in parts.candidates.items()}
    limit_threads(cfg.get("threads"))
    splits, _ = load_data(cfg)
    check_same_data(run, splits.pool, n)
    seed = round_seed(int(cfg.seed), int(row["round"]))
    ctx = dataclasses.replace(model_context(cfg, splits), seed=seed)
    decoded = decode_labels(run.labels[:n], parts.task.name == "ner")
    return Round(run, row, parts.task, specs, splits, ctx, decoded)


def build(run_dir: Path, opts: Options | None = None) -> Curve:
    """Refit, score, fit the curve: every number of the outputs. AlrunError for people."""
    from alrun.progress import progress_bar

    opts = opts or Options()
    if opts.repeats < 1 or opts.resamples < 100:
        raise AlrunError(
            f"--repeats {opts.repeats} (at least 1) and --resamples {opts.resamples} (at least "
            "100, e.g. 500)"
        )
    rd = prepare(run_dir, opts.labels)
    task, row, n, key = rd.task, rd.row, len(rd.labels), rd.key
    held, where = heldout_data(rd.run, rd.splits, task)
    seed = int(rd.run.cfg.seed if opts.seed is None else opts.seed)
    subsets = draw_subsets(n, opts.fractions, opts.repeats, np.random.default_rng(seed))
    log.info(
        "%s (kept in round %s at %d labels) refit %d times on random subsets, scored on %s",
        key,
        row["round"],
        n,
        len(subsets),
        where,
    )
    points = []
    with progress_bar(f"refitting {key} on {len(subsets)} subsets of {n}", len(subsets)) as bar:
        for f, j, pos in subsets:
            got = rd.score(rd.fit(pos), held)
            points.append({"fraction": f, "repeat": j, "labels": len(pos), "metrics": got})
            bar(1)
    head = task.headline[0]
    curve = Curve(
        run=str(run_dir),
        round=int(row["round"]),
        labeled=n,
        unit=str(rd.run.cfg.loop.unit),
        candidate=key,
        spec=rd.specs[key],
        heldout=where,
        metric=head,
        metrics=list(task.headline),
        seed=seed,
        training_seed=rd.ctx.seed,
        fractions=list(opts.fractions),
        repeats=opts.repeats,
        points=points,
        rows=_rows(points, opts.fractions, list(task.headline)),
        run_metrics={m: float(row["test"][m]) for m in task.headline if m in row["test"]},
        run_curve=[[int(r["labeled"]), float(r["test"][head])] for r in rd.run.rows],
    )
    _fit_curve(curve, opts, np.random.default_rng([seed, 1]))
    return curve


def _rows(
    points: Sequence[dict[str, Any]], fractions: Sequence[float], metrics: list[str]
) -> list[dict[str, Any]]:
    """Per fraction: its label count, fits, and mean and std of each metric."""
    out = []
    for f in fractions:
        at = [p for p in points if p["fraction"] == f]
        stats = {m: mean_std([p["metrics"][m] for p in at])[:2] for m in metrics}
        out.append(
            {
                "fraction": f,
                "labels": at[0]["labels"],
                "fits": len(at),
                "mean": {m: s[0] for m, s in stats.items()},
                "std": {m: s[1] for m, s in stats.items()},
            }
        )
    return out


def _fit_curve(curve: Curve, opts: Options, rng: np.random.Generator) -> None:
    """The last step's gain, the power law, its extrapolations and their interval; a curve
    that cannot be fitted leaves its reason in `fit_error`."""
    m = curve.metric
    if len(curve.rows) >= 2:
        prev, last = curve.rows[-2], curve.rows[-1]
        curve.last_gain = {
            "from": prev["fraction"],
            "to": last["fraction"],
            "gain": last["mean"][m] - prev["mean"][m],
        }
    xs = [p["labels"] for p in curve.points]
    ys = [p["metrics"][m] for p in curve.points]
    try:
        fit = fit_power_law(xs, ys)
    except FitError as e:
        curve.fit_error = str(e)
        return
    curve.fit = dataclasses.asdict(fit)
    at = np.asarray([k * curve.labeled for k in opts.extrapolate])
    curve.extrapolations = [
        {"factor": k, "labels": float(x), m: float(fit(x))}
        for k, x in zip(opts.extrapolate, at, strict=True)
    ]
    groups = [p["fraction"] for p in curve.points]
    try:
        boot = bootstrap(xs, ys, groups, fit, rng, opts.resamples)
    except FitError as e:
        curve.fit_error = f"no interval: {e}"
        return
    low, high = boot.interval(at)
    for ext, lo, hi in zip(curve.extrapolations, low, high, strict=True):
        ext["low"], ext["high"] = float(lo), float(hi)
    curve.interval = {
        "level": boot.level,
        "resamples": boot.resamples,
        "fitted": len(boot.params),
        "meaning": INTERVAL,
        "params": boot.params.tolist(),  # every resample's a, b, c: the band in curve.png
    }


# --------------------------------------------------------------------------- outputs


def _pct(f: float) -> str:
    return f"{f * 100:g}%"


def table(curve: Curve) -> str:
    """The printed table and verdict: metric mean ± std per fraction, the last step's gain,
    the extrapolations."""
    ms = curve.metrics
    head = ["fraction", "labels", "fits", *ms, f"Δ {curve.metric}"]
    lines = [
        f"# {curve.candidate} on random subsets of the {curve.labeled} labels of round "
        f"{curve.round}, scored on {curve.heldout}",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    prev = None
    for r in curve.rows:
        mean = r["mean"][curve.metric]
        cells = [_pct(r["fraction"]), str(r["labels"]), str(r["fits"])]
        cells += [
            f"{r['mean'][m]:.3f}" + ("" if r["fits"] == 1 else f" ± {r['std'][m]:.3f}") for m in ms
        ]
        cells.append("" if prev is None else f"{mean - prev:+.3f}")
        lines.append("| " + " | ".join(cells) + " |")
        prev = mean
    lines += ["", *_verdict(curve)]
    lines.append(
        "Random subsets of an actively chosen set are not the run's own curve: a guide to "
        "whether labels still pay, not a forecast of the run."
    )
    return "\n".join(lines) + "\n"


def _verdict(curve: Curve) -> list[str]:
    """Under the table: the run's own score, the last step's gain, the curve's forecast."""
    m = curve.metric
    lines = []
    own = curve.run_metrics.get(m)
    if own is not None:
        lines.append(f"The run's kept model at this round: test {m} {own:.3f}.")
    g = curve.last_gain
    if g is not None:
        step = f"{_pct(g['from'])} -> {_pct(g['to'])}"
        what = "last quarter" if (g["from"], g["to"]) == (0.75, 1.0) else "last step"
        verdict = (
            "more labels will likely help"
            if g["gain"] > 0
            else "more labels of this kind may not help much"
        )
        lines.append(f"Gain of the {what} ({step}): {g['gain']:+.3f} {m}: {verdict}.")
    if curve.fit is not None:
        f = curve.fit
        lines.append(
            f"Power law {m} = {f['a']:.3f} - {f['b']:.3g} n^-{f['c']:.3g} "
            f"(fit to {len(curve.points)} points, rmse {f['rmse']:.3f}; plateau {f['a']:.3f})"
        )
        for e in curve.extrapolations:
            band = f" [{e['low']:.3f}, {e['high']:.3f}]" if "low" in e else ""
            lines.append(f"  at {e['factor']:g}x ({e['labels']:g} labels): {m} {e[m]:.3f}{band}")
        if curve.interval is not None:
            lines.append(
                f"  [{curve.interval['level']:.0%} interval: {curve.interval['fitted']} of "
                f"{curve.interval['resamples']} bootstrap refits; it covers which labels were "
                "drawn, not the curve's form or the test set's noise]"
            )
    if curve.fit_error is not None:
        lines.append(f"Learning curve: {curve.fit_error}.")
    return lines


def plot(curve: Curve, path: Path) -> None:
    """The subset scores and their means, the fitted curve with its extrapolation band, and
    the run's own test curve for reference; written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from alrun.tracking import save_figure

    m = curve.metric
    fig, ax = plt.subplots(figsize=(8, 5))
    xs = [p["labels"] for p in curve.points]
    ys = [p["metrics"][m] for p in curve.points]
    ax.scatter(xs, ys, s=14, alpha=0.5, color="C0", label="refit on a random subset")
    means = [(r["labels"], r["mean"][m], r["std"][m]) for r in curve.rows]
    ax.errorbar(
        [x for x, _, _ in means],
        [y for _, y, _ in means],
        yerr=[s for _, _, s in means],
        fmt="o",
        color="C0",
        capsize=3,
        label="mean ± std per fraction",
    )
    rx, ry = zip(*curve.run_curve, strict=True)
    ax.plot(rx, ry, marker=".", color="0.5", lw=1, label="the run's test curve (active)")
    if curve.fit is not None:
        _draw_fit(ax, curve, min(xs))
    ax.axvline(curve.labeled, color="0.6", ls=":", lw=1)
    ax.set_xlabel(f"labelled {curve.unit}s")
    ax.set_ylabel(f"test {m}")
    ax.set_title(
        f"{curve.candidate}: random subsets of round {curve.round}'s {curve.labeled} labels",
        fontsize=10,
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    save_figure(fig, path)


def _draw_fit(ax: Any, curve: Curve, start: float) -> None:
    """The fitted curve from `start` labels on, its extrapolations and their interval band."""
    assert curve.fit is not None
    f, m = curve.fit, curve.metric
    top = max([curve.labeled, *(e["labels"] for e in curve.extrapolations)])
    grid = np.linspace(start, top, 200)
    ax.plot(grid, power_law(grid, f["a"], f["b"], f["c"]), color="C1", label="power law fit")
    if curve.interval is not None:
        iv = curve.interval
        boot = Bootstrap(np.asarray(iv["params"]), iv["resamples"], iv["level"])
        ext = grid[grid >= curve.labeled]
        low, high = boot.interval(ext)
        label = f"extrapolation, {iv['level']:.0%} bootstrap interval"
        ax.fill_between(ext, low, high, color="C1", alpha=0.2, label=label)
    for e in curve.extrapolations:
        ax.plot([e["labels"]], [e[m]], marker="D", color="C1")


def _json_safe(x: Any) -> Any:
    """NaN and infinities as null: curve.json is strict JSON."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_json_safe(v) for v in x]
    return x


def write(curve: Curve, run_dir: Path, labels: int | None) -> tuple[Path, Path]:
    """curve.json and curve.png into the run folder (curve-N.* with --labels N)."""
    from alrun.tracking import write_atomic

    stem = "curve" if labels is None else f"curve-{labels}"
    data = json.dumps(_json_safe(dataclasses.asdict(curve)), indent=2, allow_nan=False)
    write_atomic(run_dir / f"{stem}.json", data + "\n")
    plot(curve, run_dir / f"{stem}.png")
    return run_dir / f"{stem}.json", run_dir / f"{stem}.png"


def parser() -> argparse.ArgumentParser:
    """The command line (`alrun-curve --help`)."""
    p = argparse.ArgumentParser(
        prog="alrun-curve",
        description="Would more labels help? Refit a run's kept model on random 25/50/75/100% "
        "subsets of its labels, score each on the run's held-out data, and extrapolate a "
        "power-law learning curve; writes curve.png and curve.json into the run folder.",
        epilog="examples: alrun-curve outputs/runs/DATE/TIME; alrun-curve RUN --labels 100 "
        "--repeats 5",
    )
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a run folder made by alrun")
    p.add_argument(
        "--labels",
        type=int,
        metavar="N",
        help="the run as it stood at N labels: a round's labelled count (default: the last)",
    )
    p.add_argument(
        "--fractions",
        metavar="F,F,...",
        default=",".join(f"{f:g}" for f in FRACTIONS),
        help="increasing shares of the labels in (0, 1] (default: 0.25,0.5,0.75,1)",
    )
    p.add_argument("--repeats", type=int, default=3, help="random subsets per fraction below 1 (3)")
    p.add_argument("--seed", type=int, help="seed of the subsets (default: the run's seed)")
    p.add_argument(
        "--extrapolate",
        metavar="K,K,...",
        default=",".join(f"{f:g}" for f in EXTRAPOLATE),
        help="multiples of the labels to extrapolate the curve to (default: 1.5,2)",
    )
    p.add_argument(
        "--resamples",
        type=int,
        default=RESAMPLES,
        help=f"bootstrap resamples of the interval ({RESAMPLES})",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Exit 0 with the table printed and the files written; 2 on a bad run folder or option."""
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="[%(asctime)s][%(name)s] %(message)s"
    )
    try:
        opts = Options(
            labels=args.labels,
            fractions=parse_fractions(args.fractions),
            repeats=args.repeats,
            seed=args.seed,
            extrapolate=parse_factors(args.extrapolate),
            resamples=args.resamples,
        )
        curve = build(args.run_dir, opts)
        made = write(curve, args.run_dir, args.labels)
    except AlrunError as e:
        print(f"alrun-curve: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a folder that cannot be read or written
        print(f"alrun-curve: error: {e}", file=sys.stderr)
        return 2
    sys.stdout.write(table(curve))
    log.info("wrote %s", ", ".join(str(p) for p in made))
    return 0
