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
    # End the run early when a stopping rule says so: null (the budget ends it), a rule name
    # (stabilizing | uncertainty, with its `stopping.<rule>` settings), or
    # {rule: NAME, threshold: X, window: K}
    stop: Any = None


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
class RuleConfig:
    threshold: float = 0.99
    window: int = 3


@dataclass
class StoppingConfig:
    """The stopping rules every round records (`alrun.stopping`), whether or not `loop.stop`
    lets one end the run: agreement of successive kept models on `stop_set` random pool items
    (stabilizing; Bloodgood and Vijay-Shanker 2009: 0.99 over 3 rounds) and their mean least
    confidence there (uncertainty; Zhu et al. 2008)."""

    stop_set: int = 1000  # random pool items the rules watch; 0: no rules (and no loop.stop)
    stabilizing: RuleConfig = field(default_factory=lambda: RuleConfig(0.99, 3))
    uncertainty: RuleConfig = field(default_factory=lambda: RuleConfig(0.05, 3))


@dataclass
class EvalConfig:
    """A held-out evaluation sample drawn from the pool itself, for data without a gold test
    split: `size` items drawn uniformly at random (seeded, never actively chosen, so the
    estimate is unbiased), labelled by the oracle before the first round and never used for
    training, candidate selection or tuning. Every round reports the kept model's metrics on
    it with a bootstrap interval at `level` (`bootstrap` resamples of its items)."""

    size: int = 0  # 0: no evaluation sample
    level: float = 0.95
    bootstrap: int = 1000


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
    eval: EvalConfig = field(default_factory=EvalConfig)
    stopping: StoppingConfig = field(default_factory=StoppingConfig)
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
    *(
        f"oracle.{k}"
        for k in (
            "host",
            "port",
            "token",
            "user",
            "lease_seconds",
            "linger_seconds",
            "allowed_hosts",
            "reviewers",
        )
    ),
    "logger.",
    "data_dir",
    "cache_dir",
    "threads",
    "resume",
    "tags",
)


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts -> one level of `a/b/c` keys (W&B metrics, resume comparisons)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "/"))
        else:
            out[key] = v
    return out


def result_config(config: dict[str, Any]) -> dict[str, Any]:
    """The flattened settings a run's results depend on (the resume checks compare these)."""
    flat = {k.replace("/", "."): v for k, v in flatten(config).items()}
    return {k: v for k, v in flat.items() if not k.startswith(FREE_KEYS)}


# Settings added after runs were saved, at the value that gives those runs' results: a saved
# config without them had them so (a run folder from before the evaluation sample resumes).
ADDED_KEYS: dict[str, Any] = {
    "eval.size": 0,
    "eval.level": 0.95,
    "eval.bootstrap": 1000,
    "loop.stop": None,
    "oracle.overlap": 1,
    "stopping.stop_set": 1000,
    "stopping.stabilizing.threshold": 0.99,
    "stopping.stabilizing.window": 3,
    "stopping.uncertainty.threshold": 0.05,
    "stopping.uncertainty.window": 3,
}
# The same for a model file's keys: each saved candidate (`models.<key>.name`) had them so.
ADDED_MODEL_KEYS: dict[str, Any] = {"validation": "cv"}


def changed_keys(saved: dict[str, Any], mine: dict[str, Any], limit: int = 8) -> str:
    """`key: old -> new` for every differing key ('' when none)."""
    added = dict(ADDED_KEYS)
    for key in [k for k in saved if k.startswith("models.") and k.endswith(".name")]:
        added |= {f"{key[: -len('name')]}{k}": v for k, v in ADDED_MODEL_KEYS.items()}
    saved = {**{k: v for k, v in added.items() if k in mine}, **saved}
    keys = sorted(k for k in set(saved) | set(mine) if saved.get(k) != mine.get(k))
    shown = ", ".join(f"{k}: {saved.get(k)!r} -> {mine.get(k)!r}" for k in keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


CONF_DIR = Path(__file__).resolve().parent / "conf"  # shipped in the package: a wheel composes too


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
