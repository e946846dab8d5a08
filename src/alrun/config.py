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
    # Score at most this many random unlabelled items per round (huge pools); null: all
    pool_sample: int | None = None
    # The first batch: random, or spread over the pool's document vectors (`features`):
    # kmeans (the item nearest each k-means centre) or typiclust (the most typical item of
    # each of the largest clusters, Hacohen et al. 2022); a seed set (initial_from) wins
    initial_strategy: str = "random"


@dataclass
class FeaturesConfig:
    """Document vectors that cold start and diversity-aware strategies measure distances in:
    frozen embeddings of every text, the same cache entry as the embedding candidates'."""

    encoder: str = "packaged:all-MiniLM-L6-v2"
    max_length: int = 256
    max_windows: int = 4
    batch_size: int = 32
    precision: str = "auto"


@dataclass
class SelectionConfig:
    # Cross-validate candidates while the labelled set is at most this size, then hold out.
    cv_max_size: int = 500
    cv_folds: int = 5
    val_fraction: float = 0.2
    # Optuna trials per candidate with a `search:` space, each round (0 = the file's values)
    trials: int = 0
    # What candidates are ranked by: log_loss or brier (proper scoring rules on the pooled
    # out-of-fold probabilities), or metric (task.selection_metric, no incumbent: the old rule)
    rank_by: str = "log_loss"
    # CV repeated with other folds this many times while the labelled set has at most
    # repeat_max_size items (small sets: one partition is too noisy to rank by)
    cv_repeats: int = 2
    repeat_max_size: int = 50
    # Keep last round's model unless a challenger's lower loss holds in at least this share of
    # paired bootstrap resamples of the validation items (0: always take the lowest loss)
    switch_confidence: float = 0.0


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
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    dataset: Any = None
    task: Any = None
    models: dict[str, Any] = field(default_factory=dict)
    strategy: Any = None
    oracle: Any = None
    logger: Any = None
    tags: list[str] = field(default_factory=list)
    # A run folder to continue after its last finished round (same as hydra.run.dir=RUN_DIR)
    resume: str | None = None


def register_schema() -> None:
    ConfigStore.instance().store(name="alrun_schema", node=AlrunConfig)
    # hydra.run.dir: `resume=RUN_DIR` if given, else the usual timestamped folder
    OmegaConf.register_new_resolver(
        "alrun.run_dir", lambda resume, default: resume or default, replace=True
    )


# Keys that never change what a run asks or learns: a resumed run may differ in these.
FREE_KEYS = (
    *(f"oracle.{k}" for k in ("host", "port", "token", "user", "lease_seconds", "linger_seconds")),
    "logger.",
    "data_dir",
    "cache_dir",
    "threads",
    "resume",
    "tags",
)


def result_config(config: dict[str, Any]) -> dict[str, Any]:
    """The flattened settings a run's results depend on (the resume checks compare these)."""
    from alrun.tracking import flatten

    flat = {k.replace("/", "."): v for k, v in flatten(config).items()}
    return {k: v for k, v in flat.items() if not k.startswith(FREE_KEYS)}


def changed_keys(saved: dict[str, Any], mine: dict[str, Any], limit: int = 8) -> str:
    """`key: old -> new` for every differing key ('' when none)."""
    keys = sorted(k for k in set(saved) | set(mine) if saved.get(k) != mine.get(k))
    shown = ", ".join(f"{k}: {saved.get(k)!r} -> {mine.get(k)!r}" for k in keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


CONF_DIR = Path(__file__).resolve().parent / "conf"  # shipped in the package: a wheel composes too


def _serving(group: str, task: str) -> list[str]:
    """The options of conf/<group>/ whose `tasks:` list `task` (for error messages)."""
    found = []
    for f in sorted((CONF_DIR / group).glob("*.yaml")):
        try:
            node = OmegaConf.load(f)
            tasks = node.get("tasks") or (node.get("dataset") or {}).get("tasks") or []
        except Exception:  # an unreadable option file only shortens the hint
            continue
        if task in tasks:
            found.append(f.stem)
    return found


def _one_of(options: list[str]) -> str:
    return ", ".join(options[:-1]) + f" or {options[-1]}" if len(options) > 1 else "".join(options)


def check(cfg: DictConfig) -> None:
    """Cross-key checks Hydra's types cannot express; all run before any data or training."""
    import contextlib

    loop = cfg.loop
    for key in ("initial_size", "round_size", "budget"):
        if loop[key] < 1:
            raise AlrunError(f"loop.{key}={loop[key]} must be at least 1; e.g. loop.{key}=10")
    if loop.get("pool_sample") is not None and loop.pool_sample < 1:
        raise AlrunError(
            f"loop.pool_sample={loop.pool_sample}: give how many unlabelled items to score per "
            "round (e.g. loop.pool_sample=20000), or null to score them all"
        )
    if loop.budget < loop.initial_size and not loop.get("initial_from"):
        raise AlrunError(
            f"loop.budget={loop.budget} is below loop.initial_size={loop.initial_size}; "
            f"raise loop.budget to at least {loop.initial_size} or lower loop.initial_size "
            f"to at most {loop.budget}"
        )
    for group in ("dataset", "task", "strategy", "oracle", "logger"):
        node = cfg.get(group)
        if not isinstance(node, DictConfig) or "name" not in node:
            raise AlrunError(f"config group `{group}` is missing or has no `name:`")
    task = cfg.task.name
    if not cfg.models:
        models, default, first = _serving("model", task), None, None
        with contextlib.suppress(Exception):  # the task's default list, for the hint only
            for entry in OmegaConf.load(CONF_DIR / "task" / f"{task}.yaml").defaults:
                if isinstance(entry, DictConfig) and "/candidates" in entry:
                    default = str(entry["/candidates"])
            first = str(OmegaConf.load(CONF_DIR / "candidates" / f"{default}.yaml").defaults[0])
        example = first or (models[0] if models else None)
        raise AlrunError(
            "candidates is empty: no model to train; name at least one"
            + (f", e.g. candidates=[{example}]" if example else "")
            + (f" (models for {task}: {', '.join(models)})" if models else "")
            + (
                f", or leave candidates= out for the task's default (candidates={default})"
                if default
                else ""
            )
        )
    for key, model in cfg.models.items():
        if not isinstance(model, DictConfig) or "name" not in model:
            raise AlrunError(f"models.{key} needs a `name:`; see conf/model/ for examples")
    for where, node, group in (
        ("strategy", cfg.strategy, "strategy"),
        ("dataset", cfg.dataset, "dataset"),
        *((f"models.{key}", m, "model") for key, m in cfg.models.items()),
    ):
        tasks = list(node.get("tasks") or [])
        if not tasks or task in tasks:
            continue
        options = _serving(group, task)
        if not options:
            fix = f"pick a {group} whose `tasks:` lists {task!r}"
        elif group == "strategy":
            fix = f"choose a strategy for {task}: strategy={_one_of(options)}"
        elif group == "dataset":
            fix = (
                f"drop task= (the dataset picks its task), or choose a dataset for {task}: "
                f"dataset={_one_of(options)}"
            )
        else:
            fix = (
                f"choose candidates for {task}, e.g. candidates=[{options[0]}] "
                f"(models for {task}: {', '.join(options)})"
            )
        raise AlrunError(f"{where} {node.name!r} supports tasks {tasks}, not {task!r}; {fix}")
    if task == "multiclass" and OmegaConf.is_list(cfg.dataset.get("labels")) and cfg.dataset.labels:
        labels = [str(x) for x in cfg.dataset.labels]
        check_label_set(labels, f"dataset.labels={labels}")
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
    if sel.rank_by not in ("log_loss", "brier", "metric"):
        raise AlrunError(f"selection.rank_by={sel.rank_by!r}; choose log_loss, brier or metric")
    if sel.cv_repeats < 1 or not 0 <= sel.switch_confidence <= 1:
        raise AlrunError(
            f"selection.cv_repeats={sel.cv_repeats} must be >= 1 and selection."
            f"switch_confidence={sel.switch_confidence} in [0, 1] (e.g. 0.9)"
        )
    if loop.initial_strategy not in COLD_STARTS:
        raise AlrunError(
            f"loop.initial_strategy={loop.initial_strategy!r}; choose {_one_of(COLD_STARTS)}"
        )
    for key, model in cfg.models.items():
        if model.name != "ensemble":
            continue
        others = [k for k, m in cfg.models.items() if m.name != "ensemble"]
        members = list(model.get("members") or others)
        unknown = [m for m in members if m not in others]
        if len(others) < 2 or unknown or model.get("weights", "equal") not in ("equal", "oof"):
            raise AlrunError(
                f"models.{key}: a soft vote of at least 2 other candidates (members={members}, "
                f"candidates {others}; unknown: {unknown}) with weights equal or oof; e.g. "
                "candidates=[minilm_embed_logreg,minilm_embed_centroid,ensemble]"
            )


COLD_STARTS = ["random", "kmeans", "typiclust"]


def check_label_set(labels: list[str], source: str) -> None:
    """Classification needs two or more distinct labels; `source`: where the set came from."""
    twice = [x for x in dict.fromkeys(labels) if labels.count(x) > 1]
    if twice:
        raise AlrunError(f"{source} lists {twice} more than once; list each label once")
    if len(labels) < 2:
        example = labels[0] if labels else "negative"
        raise AlrunError(
            f"{source} holds {'one label' if labels else 'no labels'}; classification needs at "
            f"least two: list every label of the data, e.g. 'dataset.labels=[{example},other]'"
        )


def data_path(cfg: DictConfig, path: str) -> Path:
    """Dataset paths are relative to `data_dir` (env ALRUN_DATA_DIR) unless absolute."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else Path(cfg.data_dir).expanduser() / p


def to_dict(cfg: DictConfig) -> dict[str, Any]:
    out = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(out, dict)
    return out
