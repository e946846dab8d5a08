"""Shared fixtures: the real data directory (../shared/data in CI) and small real slices of it;
`check_overrides`, alrun's checks in-process, and `run_alrun`, the real `alrun` on the slice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

if TYPE_CHECKING:
    from alrun.errors import AlrunError

ROOT = Path(__file__).resolve().parents[1]
ALRUN = [sys.executable, "-c", "from alrun.cli import main; main()"]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("ALRUN_PROGRESS", "0")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    d = Path(os.environ.get("ALRUN_DATA_DIR", ROOT / "data")).resolve()
    if not (d / "bbc-news" / "bbc-news.jsonl").exists():
        msg = f"BBC News data not found under {d}; set ALRUN_DATA_DIR (CI: ../shared/data)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return d


@pytest.fixture(scope="session")
def bbc_rows(data_dir: Path) -> list[dict]:
    with (data_dir / "bbc-news" / "bbc-news.jsonl").open(encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="session")
def bbc_slice(tmp_path_factory, bbc_rows) -> Path:
    """A fixed random 300-article slice of BBC News (all 5 classes), as a JSONL data dir."""
    d = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(1234)
    rows = [bbc_rows[i] for i in np.sort(rng.choice(len(bbc_rows), 300, replace=False))]
    (d / "bbc-news").mkdir()
    with (d / "bbc-news" / "bbc-news.jsonl").open("w", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    return d


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    """One embedding cache for the whole session, so the slice is embedded once;
    ALRUN_TEST_CACHE_DIR shares it between sessions (CI's two pytest runs)."""
    shared = os.environ.get("ALRUN_TEST_CACHE_DIR")
    if shared:
        Path(shared).mkdir(parents=True, exist_ok=True)
        return Path(shared)
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def conll(data_dir: Path) -> dict[str, list]:
    """CoNLL-2003 train/test as alrun reads them: lists of (doc_id, [(where, tokens, tags)])."""
    from alrun.data import read_conll

    return {s: read_conll(data_dir / "conll2003" / f"{s}.txt") for s in ("train", "test")}


@pytest.fixture(scope="session")
def conll_slice(conll) -> dict[str, object]:
    """Fixed slices as model inputs: 600 train sentences, 300 test sentences, IOB2 tag ids."""
    names = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
    index = {n: i for i, n in enumerate(names)}

    def flat(docs, n):
        sents = [(toks, tags) for _, ss in docs for _, toks, tags in ss][:n]
        return [t for t, _ in sents], [np.array([index[x] for x in g]) for _, g in sents]

    return {"names": names, "train": flat(conll["train"], 600), "test": flat(conll["test"], 300)}


def alrun_env(data: Path, cache: Path, **extra: str) -> dict[str, str]:
    """The environment a test runs `alrun` in: the data and cache folders, offline."""
    return {
        **os.environ,
        "ALRUN_DATA_DIR": str(data),
        "ALRUN_CACHE_DIR": str(cache),
        "HF_HUB_OFFLINE": "1",
        "WANDB_SILENT": "true",
        **extra,
    }


def _check_overrides(*overrides: str, read_data: bool = False) -> AlrunError | None:
    """The error `alrun OVERRIDES` stops with before it trains or writes anything, found
    in-process: the config composed from the package's tree with Hydra's compose API, as the
    CLI composes it, then the run-settings checks (and, with read_data, the data read and
    checked as a run reads it). None: the run would start.

    The one place tests call alrun's check entry points: when they move, change them here.
    """
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from alrun.cli import load_data
    from alrun.config import CONF_DIR, register_schema
    from alrun.errors import AlrunError
    from alrun.settings import check as check_settings  # before the refactor: cli.build_parts

    register_schema()
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=list(overrides))
    try:
        check_settings(cfg)
        if read_data:
            load_data(cfg)
    except AlrunError as e:
        return e
    return None


@pytest.fixture
def check_overrides():
    """`check_overrides(*overrides, read_data=False) -> AlrunError | None` (_check_overrides)."""
    return _check_overrides


@pytest.fixture
def run_alrun(tmp_path, bbc_slice, cache_dir):
    """`run_alrun(*overrides, name="run", data=None, cache=None) -> Path`: the real `alrun
    OVERRIDES`, as a user runs it (a subprocess), on the 300-article BBC slice (or the data
    folder `data`) with the session's embedding cache (or the folder `cache`). Returns the run
    folder, tmp_path/name (with -m: the sweep folder). A run that fails fails the test, with
    alrun's stderr."""

    def run(
        *overrides: str, name: str = "run", data: Path | None = None, cache: Path | None = None
    ) -> Path:
        folder = tmp_path / name
        sweep = "-m" in overrides or "--multirun" in overrides
        proc = subprocess.run(
            [*ALRUN, *overrides, f"hydra.{'sweep' if sweep else 'run'}.dir={folder}"],
            cwd=ROOT,
            env=alrun_env(data or bbc_slice, cache or cache_dir),
            capture_output=True,
            text=True,
            timeout=600,
        )
        if proc.returncode != 0:
            raise AssertionError(
                f"alrun {' '.join(overrides)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}"
            )
        return folder

    return run
