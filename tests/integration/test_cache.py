"""The embedding cache shared by sweep jobs: concurrent writers, no half-written entry read."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow

# Each process builds the table for the same corpus, as two jobs of one sweep do.
JOB = """
import sys
from pathlib import Path
import numpy as np
from alrun.models import ModelContext
from alrun.models.embeddings import PACKAGED, EmbeddingTable
corpus = [f"text number {i} about {w}" for i, w in enumerate(["markets", "football"] * 40)]
ctx = ModelContext(2, 0, Path(sys.argv[1]), corpus=corpus)
table = EmbeddingTable(ctx, PACKAGED, 64, 1, 16)
np.save(sys.argv[2], table(corpus))
"""
CORPUS = [f"text number {i} about {w}" for i, w in enumerate(["markets", "football"] * 40)]


def job(cache: Path) -> np.ndarray:
    """What JOB does, in this process: a reader after the writer has gone."""
    from alrun.models import ModelContext
    from alrun.models.embeddings import PACKAGED, EmbeddingTable

    table = EmbeddingTable(ModelContext(2, 0, cache, corpus=CORPUS), PACKAGED, 64, 1, 16)
    return table(CORPUS)


# parallel sweep jobs: with the launchers' tests, in the full run
@pytest.mark.full
def test_concurrent_jobs_share_one_cache_entry_safely(tmp_path):
    cache = tmp_path / "cache"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", JOB, str(cache), str(tmp_path / f"out{k}.npy")],
            stderr=subprocess.PIPE,
            text=True,
        )
        for k in range(2)
    ]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    entries = list((cache / "embeddings").iterdir())
    assert [e.suffix for e in entries] == [".npy"]  # one entry, no temporary file left over
    cached = np.load(entries[0])
    assert cached.shape == (80, 384)
    # the entry holds the distinct texts in sorted order (one entry for any order of them)
    row = {t: i for i, t in enumerate(sorted(CORPUS))}
    for k in range(2):
        assert np.array_equal(np.load(tmp_path / f"out{k}.npy"), cached[[row[t] for t in CORPUS]])


@pytest.mark.full  # CI: the default run checks the cache's reuse (test_models), not a torn write
def test_a_half_written_entry_is_never_read(tmp_path):
    """A writer killed mid-write leaves only its temporary file, which readers ignore."""
    cache = tmp_path / "cache"
    first = job(cache)
    [entry] = (cache / "embeddings").iterdir()
    good = np.load(entry)
    entry.unlink()
    half = entry.with_name(entry.stem + ".tmp.npy")
    half.write_bytes(good.tobytes()[:1000])  # what a killed writer leaves behind
    assert np.array_equal(job(cache), first)
    assert np.array_equal(np.load(entry), good)  # recomputed and published whole


def test_a_damaged_entry_is_recomputed_not_trusted(tmp_path):
    """An entry cut short outside alrun (a copy, a full disk) is detected and replaced."""
    cache = tmp_path / "cache"
    first = job(cache)
    [entry] = (cache / "embeddings").iterdir()
    whole = entry.read_bytes()
    entry.write_bytes(whole[: len(whole) // 2])
    assert np.array_equal(job(cache), first)  # no error: read as missing
    assert entry.read_bytes() == whole  # replaced by a whole entry
