"""Typed schema for the top level, so a typo fails at start-up, not in round 7."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from alrun.errors import AlrunError


@dataclass
class LoopConfig:
    initial_size: int = 10  # random cold start
    round_size: int = 10  # items queried per round
    budget: int = 200  # total items labelled, initial set included
    unit: str = "document"
    # Prodigy JSONL whose accepted annotations are the labelled seed set (else a random start)
    initial_from: str | None = None


@dataclass
class SelectionConfig:
    # Cross-validate candidates while the labelled set is at most this size, then hold out.
    cv_max_size: int = 500
    cv_folds: int = 5
    val_fraction: float = 0.2
    # Optuna trials per candidate with a `search:` space, each round (0 = the file's values)
    trials: int = 0


@dataclass
class AlrunConfig:
    seed: int = 0
    data_dir: str = "data"
    cache_dir: str = ".cache/alrun"
    # CPU threads per run for BLAS and torch (null: the libraries' default, every core). Set
    # threads=1 when a launcher runs jobs in parallel, or their threads fight over the cores.
    threads: int | None = None
    loop: LoopConfig = field(default_factory=LoopConfig)
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    dataset: Any = None
    task: Any = None
    models: dict[str, Any] = field(default_factory=dict)
    strategy: Any = None
    oracle: Any = None
    logger: Any = None
    tags: list[str] = field(default_factory=list)


def register_schema() -> None:
    ConfigStore.instance().store(name="alrun_schema", node=AlrunConfig)


def check(cfg: DictConfig) -> None:
    """Cross-key checks Hydra's types cannot express; all run before any data or training."""
    loop = cfg.loop
    for key in ("initial_size", "round_size", "budget"):
        if loop[key] < 1:
            raise AlrunError(f"loop.{key}={loop[key]} must be at least 1; e.g. loop.{key}=10")
    if loop.budget < loop.initial_size and not loop.get("initial_from"):
        raise AlrunError(
            f"loop.budget={loop.budget} is below loop.initial_size={loop.initial_size}; "
            "raise the budget or lower the initial size"
        )
    if not cfg.models:
        raise AlrunError("no candidate models: choose some, e.g. candidates=[tfidf_logreg]")
    for key, model in cfg.models.items():
        if not isinstance(model, DictConfig) or "name" not in model:
            raise AlrunError(f"models.{key} needs a `name:`; see conf/model/ for examples")
    for group in ("dataset", "task", "strategy", "oracle", "logger"):
        node = cfg.get(group)
        if not isinstance(node, DictConfig) or "name" not in node:
            raise AlrunError(f"config group `{group}` is missing or has no `name:`")
    task = cfg.task.name
    for where, node, fix in (
        ("strategy", cfg.strategy, "pick a strategy from conf/strategy/ that lists this task"),
        ("dataset", cfg.dataset, f"pick a dataset whose `tasks:` lists {task!r}"),
        *(
            (f"models.{key}", m, "pick candidates whose model files list this task")
            for key, m in cfg.models.items()
        ),
    ):
        tasks = list(node.get("tasks") or [])
        if tasks and task not in tasks:
            raise AlrunError(f"{where} {node.name!r} supports tasks {tasks}, not {task!r}; {fix}")
    if loop.unit not in ("document", "sentence"):
        raise AlrunError(f"loop.unit={loop.unit!r}; choose document or sentence")
    if loop.unit == "sentence" and task != "ner":
        raise AlrunError(
            f"loop.unit=sentence: a {task} item is a whole document; use loop.unit=document "
            "(sentence units are for task=ner)"
        )
    sel = cfg.selection
    if not 0 < sel.val_fraction < 1 or sel.cv_folds < 2:
        raise AlrunError("selection.val_fraction must be in (0, 1) and selection.cv_folds >= 2")
    if cfg.get("threads") is not None and cfg.threads < 1:
        raise AlrunError(f"threads={cfg.threads}; give a positive count, or null for all cores")
    if sel.trials < 0:
        raise AlrunError(f"selection.trials={sel.trials}; give 0 (no tuning) or more trials")


def data_path(cfg: DictConfig, path: str) -> Path:
    """Dataset paths are relative to `data_dir` (env ALRUN_DATA_DIR) unless absolute."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else Path(cfg.data_dir).expanduser() / p


def to_dict(cfg: DictConfig) -> dict[str, Any]:
    out = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(out, dict)
    return out
