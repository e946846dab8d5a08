"""Every raw source loads as an unlabelled pool the way a run reads it (compose + load_data),
for both tasks; the simulated oracle on any of them is refused before anything is read."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import datasets
import pytest

ARTICLES = 12
TYPES = "[PERSON,ORG,PRODUCT,LOCATION]"
SMALL = ["loop.initial_size=2", "loop.round_size=2", "eval.size=4"]


def _texts(bbc_rows: list[dict]) -> list[str]:
    """Real BBC articles, with the whitespace a team's files hold (newlines, double spaces)."""
    return [r["text"].replace(". ", ".  ", 1) + "\n\nEnd of article." for r in bbc_rows[:ARTICLES]]


def _csv(d: Path, texts: list[str]) -> list[str]:
    with (d / "pool.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["Text"])
        w.writerows([t] for t in texts)
    return ["dataset.path=pool.csv", "dataset.text_field=Text"]


def _jsonl(d: Path, texts: list[str]) -> list[str]:
    (d / "pool.jsonl").write_text("".join(json.dumps({"body": t}) + "\n" for t in texts))
    return ["dataset.path=pool.jsonl", "dataset.text_field=body"]


def _prodigy(d: Path, texts: list[str]) -> list[str]:
    lines = [json.dumps({"text": t, "meta": {"id": f"a{k}"}}) for k, t in enumerate(texts)]
    (d / "source.jsonl").write_text("".join(x + "\n" for x in lines))
    return ["dataset.path=source.jsonl", "dataset.format=prodigy"]


def _txtdir(d: Path, texts: list[str]) -> list[str]:
    (d / "articles").mkdir()
    for k, t in enumerate(texts):
        (d / "articles" / f"{k:03d}.txt").write_text(t, encoding="utf-8")
    return ["dataset.path=articles"]


def _lines(d: Path, texts: list[str]) -> list[str]:
    (d / "pool.txt").write_text("".join(t.replace("\n", " ") + "\n" for t in texts))
    return ["dataset.path=pool.txt"]


def _hf(d: Path, texts: list[str]) -> list[str]:
    datasets.Dataset.from_dict({"text": texts}).save_to_disk(str(d / "hf"))
    return ["dataset.path=hf"]


SOURCES = [_csv, _jsonl, _prodigy, _txtdir, _lines, _hf]


def _load(data: Path, *overrides: str):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from alrun.cli import load_data
    from alrun.config import CONF_DIR, register_schema

    register_schema()
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose(
            "config", overrides=["dataset=raw_text", f"data_dir={data}", *SMALL, *overrides]
        )
    return load_data(cfg)[0]


@pytest.mark.parametrize("source", SOURCES, ids=lambda s: s.__name__.strip("_"))
def test_each_raw_source_is_an_unlabelled_pool_for_both_tasks(
    tmp_path, bbc_rows, check_overrides, source
):
    texts = _texts(bbc_rows)
    args = source(tmp_path, texts)
    classes = _load(tmp_path, *args, "task=multiclass", "dataset.labels=[a,b]").pool
    assert not classes.gold and (classes.labels == -1).all()
    assert sorted(classes.texts) == sorted(
        t.replace("\n", " ") if source is _lines else t for t in texts
    )  # byte for byte (one-a-line text: a line can hold no newline)
    splits = _load(tmp_path, *args, f"dataset.labels={TYPES}", "loop.unit=sentence")
    pool = splits.pool
    assert splits.test is None and not pool.gold and pool.source is not None
    assert pool.label_names[0] == "O" and len(pool.label_names) == 9
    originals = dict(zip(classes.ids, classes.texts, strict=True))
    for item, words in zip(pool.source, pool.sentences, strict=True):
        doc = originals[item.doc_id]
        assert doc[item.offset : item.offset + len(item.text)] == item.text
        text, offsets = item.sentence(0)
        assert [text[a:b] for a, b in offsets] == words[0]
    error = check_overrides("dataset=raw_text", *args, "oracle=simulated")
    assert error is not None and "oracle=simulated answers from gold labels" in str(error)
