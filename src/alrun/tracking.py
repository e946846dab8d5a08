"""Where results go: the run folder (JSONL + plot) and Weights & Biases (offline by default)."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import os
import struct
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import numpy as np
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from alrun.config import flatten, to_dict
from alrun.registry import Registry

log = logging.getLogger(__name__)


def write_atomic(path: Path, content: str | bytes) -> None:
    """Write then rename, so a kill never leaves half a file."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes it owner-only; results are for anyone who may read
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def save_figure(fig: Any, path: Path, **savefig: Any) -> None:
    """A matplotlib figure as PNG, written atomically; the figure is closed."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=110, **savefig)
    finally:
        plt.close(fig)
    write_atomic(path, buf.getvalue())


def aulc(xs: Iterable[float], ys: Iterable[float]) -> float:
    """Area under the learning curve, normalised by the x range (so it reads like the metric)."""
    x, y = np.asarray(list(xs), float), np.asarray(list(ys), float)
    if len(x) < 2 or x[-1] == x[0]:
        return float(y[-1]) if len(y) else float("nan")
    return float(np.trapezoid(y, x) / (x[-1] - x[0]))


def labels_to_target(xs: Iterable[float], ys: Iterable[float], target: float) -> float:
    """First x where the curve reaches the target, linear between rounds; NaN if never."""
    x, y = np.asarray(list(xs), float), np.asarray(list(ys), float)
    for i in range(len(y)):
        if y[i] >= target:
            if i == 0:
                return float(x[0])
            return float(x[i - 1] + (target - y[i - 1]) * (x[i] - x[i - 1]) / (y[i] - y[i - 1]))
    return math.nan


def plot_learning_curve(
    rows: list[dict[str, Any]],
    path: Path,
    title: str,
    metrics: tuple[str, ...] = ("accuracy", "macro_f1"),
    unit: str = "document",
) -> None:
    """Scores against labelled items (left) and labelled tokens, the honest cost (right), as
    a PNG; see `learning_curve_figure`."""
    save_figure(learning_curve_figure(rows, title, metrics, unit), path)


def learning_curve_figure(
    rows: list[dict[str, Any]],
    title: str,
    metrics: tuple[str, ...] = ("accuracy", "macro_f1"),
    unit: str = "document",
) -> Any:
    """The learning curve's matplotlib Figure (two Axes sharing y).

    Rows without `eval`: test scores, the kept candidate marked on the first metric. Rows with
    `eval` (the evaluation sample): its point curve with the bootstrap interval as a shaded
    band, candidates marked on it; test scores too where the row's `heldout` is the test split
    (otherwise `test` holds the sample's own point metrics, already drawn).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with_eval = any("eval" in r for r in rows)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
    for ax, xkey, xlabel in (
        (axes[0], None, f"labelled {unit}s"),
        (axes[1], "tokens", "labelled tokens"),
    ):

        def xof(r: dict[str, Any], xkey: str | None = xkey) -> float:
            return r["labeled"] if xkey is None else r["cost"][xkey]

        if with_eval:
            test_rows = [r for r in rows if r.get("heldout") == "test split" and "test" in r]
            if test_rows:
                _draw_test_curves(ax, test_rows, metrics, xof)
            _draw_eval_curves(ax, [r for r in rows if "eval" in r], metrics, xof)
        else:
            _draw_test_curves(ax, rows, metrics, xof)
            _mark_kept(ax, rows, xof, lambda r: r["test"][metrics[0]])
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("score" if with_eval else "test score")
    axes[1].legend(fontsize=8, loc="lower right")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


_EVAL_COLOR = "darkcyan"  # outside matplotlib's default cycle, which colours the candidates


def _draw_test_curves(
    ax: Any, rows: list[dict[str, Any]], metrics: tuple[str, ...], xof: Any
) -> None:
    x = [xof(r) for r in rows]
    for metric, style in zip(metrics, ("-", ":"), strict=False):
        ys = [r["test"][metric] for r in rows]
        ax.plot(x, ys, style, color="0.3", label=f"test {metric}")


def _mark_kept(ax: Any, rows: list[dict[str, Any]], xof: Any, yof: Any) -> None:
    """One marker colour per candidate: which one was kept in each round."""
    for name in dict.fromkeys(r["chosen"] for r in rows):
        kept = [r for r in rows if r["chosen"] == name]
        ax.scatter(
            [xof(r) for r in kept], [yof(r) for r in kept], s=22, zorder=3, label=f"kept: {name}"
        )


def _draw_eval_curves(
    ax: Any, rows: list[dict[str, Any]], metrics: tuple[str, ...], xof: Any
) -> None:
    """The evaluation sample's point curve per metric and its interval as a shaded band."""
    x = [xof(r) for r in rows]
    sizes = sorted({r["eval"].get("n") for r in rows if r["eval"].get("n") is not None})
    n = "?" if not sizes else str(sizes[0]) if len(sizes) == 1 else f"{sizes[0]}-{sizes[-1]}"
    level = rows[-1]["eval"].get("level", 0.95)
    band_label = f"evaluation sample (n={n}, {level:.0%} interval)"
    shown = [m for m in metrics if all(m in r["eval"] for r in rows)]
    for metric, style in zip(shown, ("-", ":"), strict=False):
        ys = [r["eval"][metric] for r in rows]
        ax.plot(x, ys, style, color=_EVAL_COLOR, label=f"evaluation sample {metric}")
        if all(f"{metric}_low" in r["eval"] and f"{metric}_high" in r["eval"] for r in rows):
            ax.fill_between(
                x,
                [r["eval"][f"{metric}_low"] for r in rows],
                [r["eval"][f"{metric}_high"] for r in rows],
                color=_EVAL_COLOR,
                alpha=0.25 if style == "-" else 0.12,
                linewidth=0,
                label=band_label,
            )
            band_label = f"_{band_label}"  # one legend entry; a leading _ hides the others
    if shown:
        _mark_kept(ax, rows, xof, lambda r: r["eval"][shown[0]])


# --------------------------------------------------------------------------- experiment loggers


class NoLogger:
    """`logger=none`: the run folder only."""

    def log_round(self, row: dict[str, Any]) -> None:
        pass

    def finish(self, summary: dict[str, Any], rows: list[dict[str, Any]]) -> None:
        pass


WandbMode = Literal["online", "offline", "disabled", "shared"]  # wandb.init's modes


class WandbLogger:
    """One W&B run per job; per-round metrics stepped by the labelled count; `finish()` always.

    Any W&B failure (unwritable folder, no network online) warns once and the run goes on
    with its local files.
    """

    def __init__(
        self,
        *,
        project: str,
        entity: str | None,
        mode: WandbMode,
        run_dir: Path,
        group: str | None,
        name: str,
        tags: list[str],
        config: dict[str, Any],
    ) -> None:
        self.run = None
        self.mode = mode
        self.run_dir = run_dir
        try:
            import wandb

            self.run = wandb.init(
                project=project,
                entity=entity,
                mode=mode,
                dir=str(run_dir),
                group=group,
                name=name,
                tags=tags,
                config=config,
                job_type="active-learning",
                reinit="create_new",
                settings=wandb.Settings(
                    console="off",
                    silent=True,
                    x_disable_stats=True,
                    disable_git=True,
                    save_code=False,
                ),
            )
            self.run.define_metric("labeled")
            self.run.define_metric("*", step_metric="labeled")
        except Exception as e:  # W&B must never cost the experiment
            self._fail("init", e)

    def _fail(self, what: str, e: Exception) -> None:
        """Warn once (the run is dropped, so later calls do nothing) and carry on without W&B."""
        if self.run is not None:
            with contextlib.suppress(Exception):
                self.run.finish(exit_code=1)
        self.run = None
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if self.mode == "online":
            fix = (
                "check the network and your W&B login (WANDB_API_KEY), or use "
                "logger.mode=offline and upload later with `wandb sync`"
            )
        else:
            fix = f"make {self.run_dir / 'wandb'} a writable folder, or run with logger=none"
        log.warning(
            "W&B %s failed (%s); continuing with local files only in %s. For W&B: %s",
            what,
            reason,
            self.run_dir,
            fix,
        )

    def log_round(self, row: dict[str, Any]) -> None:
        if self.run is None:
            return
        try:
            flat = flatten(row).items()  # a rule has no value in the first round: left out
            self.run.log({k: v for k, v in flat if k != "queried" and v is not None})
        except Exception as e:
            self._fail("log", e)

    def finish(self, summary: dict[str, Any], rows: list[dict[str, Any]]) -> None:
        if self.run is None:
            return
        try:
            import wandb

            table = wandb.Table(columns=["round", "labeled", "candidate", "val_score", "kept"])
            for r in rows:
                for cand, score in r["validation"].items():
                    table.add_data(r["round"], r["labeled"], cand, score, cand == r["chosen"])
            self.run.log({"candidates": table})
            self.run.summary.update(summary)
            self.run.finish()
        except Exception as e:
            self._fail("finish", e)


LOGGERS: Registry = Registry("logger", "logger")


@LOGGERS.register
def wandb(
    *,
    run_dir: Path,
    group: str | None,
    name: str,
    tags: list[str],
    config: dict[str, Any],
    project: str = "alrun",
    entity: str | None = None,
    mode: WandbMode = "offline",
) -> WandbLogger:
    return WandbLogger(
        project=project,
        entity=entity,
        mode=mode,
        run_dir=run_dir,
        group=group,
        name=name,
        tags=tags,
        config=config,
    )


@LOGGERS.register
def none(**_: Any) -> NoLogger:
    return NoLogger()


# --------------------------------------------------------------------------- reading W&B files

_BLOCK, _HEADER = 32768, 7  # LevelDB log format, as W&B writes its .wandb transaction log


def read_wandb_records(path: Path) -> list[Any]:
    """Every protobuf Record in a `.wandb` file, read without a server or network.

    W&B offers no offline reader, so offline runs (before `wandb sync`) are read here from
    their LevelDB-style log: 32 KiB blocks of [crc32c:4][length:2][type:1][payload] chunks.
    """
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{path} is not a W&B transaction log")
    pos, chunks, records = _HEADER, b"", []
    while pos + _HEADER <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < _HEADER:  # block trailer padding
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + _HEADER])
        payload = data[pos + _HEADER : pos + _HEADER + length]
        pos += _HEADER + length
        if kind == 0:  # zero padding / preallocated tail
            continue
        chunks = payload if kind in (1, 2) else chunks + payload
        if kind in (1, 4):  # FULL or LAST: a record is complete
            rec = pb.Record()
            rec.ParseFromString(chunks)
            records.append(rec)
            chunks = b""
    return records


def wandb_offline_runs(root: Path) -> list[Path]:
    return sorted(Path(root).rglob("run-*.wandb"))


def read_wandb_run(path: Path) -> dict[str, Any]:
    """History rows, summary, config and group/tags of one offline run file."""
    out: dict[str, Any] = {"history": [], "summary": {}, "config": {}, "group": None, "tags": []}
    for rec in read_wandb_records(path):
        kind = rec.WhichOneof("record_type")
        if kind == "history":
            out["history"].append(
                {
                    "/".join(i.nested_key) or i.key: json.loads(i.value_json)
                    for i in rec.history.item
                }
            )
        elif kind == "summary":
            for i in rec.summary.update:
                out["summary"]["/".join(i.nested_key) or i.key] = json.loads(i.value_json)
        elif kind == "run":
            out["group"] = rec.run.run_group
            out["tags"] = list(rec.run.tags)
            for i in rec.run.config.update:
                out["config"][i.key] = json.loads(i.value_json)
        elif kind == "config":
            for i in rec.config.update:
                out["config"][i.key] = json.loads(i.value_json)
    return out


def run_logger(cfg: DictConfig, run_dir: Path) -> Any:
    """The experiment logger (W&B or none): one run per job, one group per sweep."""
    hc = HydraConfig.get()
    group = cfg.logger.get("group")
    if group is None and hc.mode == RunMode.MULTIRUN:
        sweep = Path(hc.sweep.dir)
        group = f"{sweep.parent.name}_{sweep.name}"
    given = list(hc.overrides.task)
    tags = [f"dataset:{cfg.dataset.name}", f"task:{cfg.task.name}"]
    tags += [f"strategy:{cfg.strategy.name}", *[f"model:{m}" for m in cfg.models], *cfg.tags]
    return LOGGERS.get(cfg.logger.name)(
        run_dir=run_dir,
        group=group,
        name=hc.job.override_dirname or "default",
        tags=tags,
        config={**to_dict(cfg), "overrides": dict(o.split("=", 1) for o in given if "=" in o)},
        **{k: v for k, v in to_dict(cfg.logger).items() if k not in ("name", "group")},
    )
