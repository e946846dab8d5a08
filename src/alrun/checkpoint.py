"""A run's checkpoint: after every round, what continuing it needs, in `checkpoint.json`.

Labelled and skipped pool indices with their labels, the next batch already chosen, the
strategy RNG's state (each round's training seed derives from the run seed and the round
number), the rows logged so far and the settings the results depend on. Written atomically
after `rounds.jsonl` and `labeled.jsonl`, so the folder is consistent whenever it is killed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from alrun.config import changed_keys
from alrun.errors import AlrunError
from alrun.loop import Resume, RoundResult
from alrun.tracking import write_atomic

CHECKPOINT = "checkpoint.json"
VERSION = 1


@dataclass
class Checkpoint:
    resume: Resume
    rng_state: dict[str, Any]
    rows: list[dict[str, Any]]
    labeled_round: list[int]
    complete: bool


def encode_labels(labels: Any) -> list[Any]:
    """Labels as JSON: class ids, or per item one tag-id list per sentence (NER's object
    arrays, or lists of tag arrays as a task decodes them)."""
    if isinstance(labels, np.ndarray) and labels.dtype != object:
        return labels.tolist()
    return [[np.asarray(s).tolist() for s in item] for item in labels]


def decode_labels(labels: list[Any], ner: bool) -> np.ndarray:
    """Saved labels as the task takes them: class ids, or per item its tag-id arrays."""
    if not ner:
        return np.asarray(labels, dtype=np.int64)
    out = np.empty(len(labels), dtype=object)
    for k, item in enumerate(labels):
        out[k] = [np.asarray(s, dtype=np.int64) for s in item]
    return out


def save(
    run_dir: Path,
    res: RoundResult,
    rng: np.random.Generator,
    rows: list[dict[str, Any]],
    labeled_round: list[int],
    config: dict[str, Any],
    command: list[str],
    complete: bool = False,
) -> None:
    state = {
        "version": VERSION,
        "round": res.round,
        "complete": complete,
        "labeled": res.labeled.tolist(),
        "labels": encode_labels(res.labels),
        "skipped": res.skipped.tolist(),
        "queried": res.queried.tolist(),
        "rng": rng.bit_generator.state,
        "rows": rows,
        "labeled_round": labeled_round,
        "config": config,
        # a short fingerprint of `config`, for eyes and scripts; the check compares `config`
        "config_hash": hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest(),
        "command": command,
    }
    write_atomic(run_dir / CHECKPOINT, json.dumps(state) + "\n")


def load(
    run_dir: Path, config: dict[str, Any], command: list[str], ner: bool, asked: bool
) -> Checkpoint | None:
    """The folder's checkpoint if it has one; refused when the settings differ.

    `asked`: the user named the folder with `resume=`, so a missing checkpoint is an error.
    """
    path = run_dir / CHECKPOINT
    if not path.is_file():
        if asked:
            raise AlrunError(
                f"resume={run_dir}: no {CHECKPOINT} there, so nothing to continue (the run "
                "stopped before its first round ended, or this is not a run folder); drop "
                "resume= to start a new run"
            )
        return None
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        assert state["version"] == VERSION
    except (json.JSONDecodeError, KeyError, AssertionError) as e:
        raise AlrunError(
            f"{path} is not a checkpoint this alrun can read ({e}); start a new run folder"
        ) from e
    diff = changed_keys(state["config"], config)
    if diff:
        raise AlrunError(
            f"{run_dir} holds a run with other settings ({diff}), so continuing it would not "
            f"give that run's results. Resume it with its own command (`alrun "
            f"{' '.join([*state['command'], f'resume={run_dir}'])}`), or start a new run folder"
        )
    resume = Resume(
        round=state["round"],
        labeled=np.asarray(state["labeled"], dtype=np.int64),
        labels=decode_labels(state["labels"], ner),
        skipped=np.asarray(state["skipped"], dtype=np.int64),
        queried=np.asarray(state["queried"], dtype=np.int64),
    )
    return Checkpoint(
        resume, state["rng"], state["rows"], state["labeled_round"], state["complete"]
    )
