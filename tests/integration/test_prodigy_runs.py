"""Runs that start from Prodigy annotations or read a Prodigy dataset, and export back."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from test_runs import jsonl

pytestmark = pytest.mark.slow
CONVERT = [sys.executable, "-c", "from alrun.convert import main; main()"]
LABELS = ["business", "entertainment", "politics", "sport", "tech"]


def _convert(*args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([*CONVERT, *args], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc


def _seed_file(path: Path, rows: list[dict]) -> dict[str, str]:
    """30 accepted BBC annotations in both Prodigy text classification forms, plus lines that
    are not data. One annotation disagrees with the dataset: the annotation must win."""
    lines, expected = [], {}
    for k, r in enumerate(rows[:30]):
        label = r["label"] if k != 7 else next(x for x in LABELS if x != r["label"])
        expected[r["text"]] = label
        if k % 3 == 0:  # textcat.teach: a binary answer on one label (+ a rejected one)
            lines.append({"text": r["text"], "label": label, "answer": "accept", "_input_hash": k})
            other = next(x for x in LABELS if x != label)
            lines.append({"text": r["text"], "label": other, "answer": "reject", "_input_hash": k})
        else:  # textcat.manual: exclusive options
            opts = [{"id": x, "text": x} for x in LABELS]
            lines.append({"text": r["text"], "options": opts, "accept": [label], "_input_hash": k})
    lines.append({"text": rows[30]["text"], "answer": "ignore", "options": [], "_input_hash": 99})
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return expected


def test_bbc_run_from_30_prodigy_annotations_and_back(tmp_path, bbc_slice, run_alrun):
    rows = jsonl(bbc_slice / "bbc-news" / "bbc-news.jsonl")
    seed = tmp_path / "seed.jsonl"
    expected = _seed_file(seed, rows[::7])
    run = run_alrun(
        f"loop.initial_from={seed}",
        "candidates=[tfidf_logreg]",
        "strategy=margin",  # no encoder: nothing to embed (the seed set is the first batch,
        "loop.initial_strategy=random",  # but a cold start's vectors would be computed)
        "loop.round_size=10",
        "loop.budget=50",
        "logger=none",
    )
    assert [r["labeled"] for r in jsonl(run / "rounds.jsonl")] == [30, 40, 50]
    labeled = jsonl(run / "labeled.jsonl")
    first = {r["text"]: r["label"] for r in labeled if r["round"] == 0}
    assert first == expected  # the seed set, with the annotators' labels
    assert len({r["index"] for r in labeled}) == 50
    # the final model is saved natively, and labeled.jsonl goes back to Prodigy
    assert (run / "model" / "alrun-model.json").exists()
    out = tmp_path / "back.jsonl"
    _convert("to-prodigy", str(run), str(out))
    tasks = jsonl(out)
    assert [(t["text"], t["accept"]) for t in tasks] == [(r["text"], [r["label"]]) for r in labeled]
    assert all(t["answer"] == "accept" and [o["id"] for o in t["options"]] == LABELS for t in tasks)
    # and Prodigy's own reading of the export gives the same labels back
    _convert("prodigy-to-textcat", str(out), str(tmp_path / "back.csv"))
    with (tmp_path / "back.csv").open(newline="", encoding="utf-8") as f:
        got = [(r["text"], r["target"]) for r in csv.DictReader(f)]
    assert got == [(r["text"], r["label"]) for r in labeled]


# the default run: Prodigy NER files read, aligned and converted (tests/unit/test_prodigy.py),
# a run seeded from Prodigy annotations (above), an NER run (test_ner_runs.py)
@pytest.mark.full
def test_ner_run_on_a_prodigy_dataset_with_a_prodigy_seed(tmp_path, data_dir, run_alrun):
    """CoNLL documents exported to Prodigy are the dataset; other annotations seed the run."""
    src = data_dir / "conll2003"
    train = tmp_path / "train.conll"
    blocks = (src / "train.txt").read_text().split("-DOCSTART-")
    train.write_text("-DOCSTART-".join(blocks[:41]))  # the first 40 documents
    _convert("to-prodigy", str(train), str(tmp_path / "train.jsonl"))
    _convert("to-prodigy", str(src / "test.txt"), str(tmp_path / "test.jsonl"))
    seed = tmp_path / "seed.jsonl"
    seed.write_text("".join((tmp_path / "train.jsonl").read_text().splitlines(True)[:30]))
    run = run_alrun(
        "dataset=prodigy",
        f"dataset.path={tmp_path / 'train.jsonl'}",
        f"dataset.test_path={tmp_path / 'test.jsonl'}",
        f"loop.initial_from={seed}",
        "loop.unit=sentence",
        "loop.round_size=40",
        "loop.budget=110",
        "logger=none",
        data=data_dir,
    )
    rounds = jsonl(run / "rounds.jsonl")
    assert [r["labeled"] for r in rounds] == [30, 70, 110]
    assert rounds[-1]["test"]["f1"] > 0.2
    labeled = jsonl(run / "labeled.jsonl")
    seed_tasks = jsonl(seed)
    assert [r["tokens"][0] for r in labeled[:30]] == [
        [t["text"] for t in s["tokens"]] for s in seed_tasks
    ]
    out = tmp_path / "back.jsonl"
    _convert("to-prodigy", str(run / "labeled.jsonl"), str(out))
    back = jsonl(out)
    for r, t in zip(labeled, back, strict=True):
        assert t["text"] == " ".join(r["tokens"][0])
        for s in t["spans"]:
            assert t["text"][s["start"] : s["end"]] == " ".join(
                r["tokens"][0][s["token_start"] : s["token_end"] + 1]
            )
            assert r["tags"][0][s["token_start"]] == f"B-{s['label']}"
