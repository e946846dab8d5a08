"""The built wheel works on its own: config tree, web page and console scripts ship inside it.

The wheel is built from the source tree, installed with `pip install` into a fresh
virtualenv, and run from a folder outside the source tree. The fresh environment sees this
environment's dependencies (torch, hydra, ...) through a `.pth` line, not through a site
directory, so the editable install's own `.pth` hooks are not processed there and the source
tree never reaches its `sys.path`; the test asserts it. pip still resolves the wheel's
dependencies (every requirement must be met by a visible package), only without downloading.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _sh(*cmd: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    out = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, f"{cmd} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}"
    return out.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """Built from a copy of what the sdist needs, so no `build/` lands in the source tree."""
    src, dist = tmp_path_factory.mktemp("src"), tmp_path_factory.mktemp("dist")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(
        ROOT / "src", src / "src", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__")
    )
    _sh(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", dist, src, cwd=dist)
    (whl,) = dist.glob("alrun-*.whl")
    return whl


@pytest.fixture(scope="module")
def fresh(tmp_path_factory, wheel: Path) -> Path:
    """A new virtualenv where `pip install alrun-*.whl` resolves every dependency against
    this environment's packages (visible through a `.pth` line, no index, no network): a
    missing or conflicting requirement fails here. The source tree is not on its path."""
    venv = tmp_path_factory.mktemp("venv")
    _sh(sys.executable, "-m", "venv", venv, cwd=venv)
    pip, py = venv / "bin" / "pip", venv / "bin" / "python"
    _sh(pip, "uninstall", "-q", "-y", "setuptools", cwd=venv)  # the venv's old copy shadows ours
    site = _sh(py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=venv)
    Path(site.strip(), "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _sh(pip, "install", "-q", "--no-index", wheel, cwd=venv)
    _sh(pip, "check", cwd=venv)
    return venv


@pytest.mark.full  # builds the wheel (pip fetches setuptools): CI
def test_wheel_ships_the_config_tree_and_the_page(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {n.removeprefix("alrun/") for n in names if n.startswith("alrun/conf/")}
    package = ROOT / "src" / "alrun"
    in_tree = {str(p.relative_to(package)) for p in (package / "conf").rglob("*.yaml")}
    assert in_tree and shipped == in_tree
    assert {"alrun/web/static/index.html", "alrun/web/static/app.js"} <= names


# the default run checks what the wheel ships (above)
@pytest.mark.full
def test_wheel_runs_a_real_experiment_outside_the_source_tree(
    fresh: Path, tmp_path: Path, bbc_slice: Path
) -> None:
    bin_ = fresh / "bin"
    env = {
        **os.environ,
        "ALRUN_DATA_DIR": str(bbc_slice),
        "ALRUN_CACHE_DIR": str(tmp_path / "cache"),
        "PYTHONPATH": "",
    }
    where = _sh(bin_ / "python", "-c", "import alrun; print(alrun.__file__)", cwd=tmp_path, env=env)
    assert Path(where.strip()).is_relative_to(fresh), where  # the wheel's copy, not src/
    assert _sh(bin_ / "alrun", "--version", cwd=tmp_path, env=env).strip() == "alrun 0.1.0"
    assert "== Config groups" in _sh(bin_ / "alrun", "--help", cwd=tmp_path, env=env)
    # a user's own preset from a config dir outside the package composes with the shipped tree
    user = tmp_path / "myconf" / "experiment"
    user.mkdir(parents=True)
    (user / "tiny.yaml").write_text(
        "# @package _global_\nloop: {initial_size: 10, round_size: 10, budget: 20}\n"
    )
    _sh(
        bin_ / "alrun",
        "--config-dir",
        tmp_path / "myconf",
        "-m",
        "experiment=tiny",
        "candidates=[tfidf_logreg]",
        "strategy=margin",
        "loop.initial_strategy=random",
        "logger=wandb",
        "seed=0,1",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
        cwd=tmp_path,
        env=env,
    )
    for job in ("0", "1"):
        rows = (tmp_path / "sweep" / job / "rounds.jsonl").read_text().splitlines()
        assert [json.loads(r)["labeled"] for r in rows] == [10, 20]
        assert list((tmp_path / "sweep" / job / "wandb").glob("offline-run-*"))
    report = _sh(bin_ / "alrun-report", tmp_path / "sweep", cwd=tmp_path, env=env)
    assert "accuracy" in report
    assert (tmp_path / "sweep" / "report.png").is_file()
    for tool in ("alrun-convert", "alrun-curve", "alrun-predict"):
        assert "usage:" in _sh(bin_ / tool, "--help", cwd=tmp_path, env=env)
