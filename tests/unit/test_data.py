"""Loaders, label checks with line numbers, dedup and the seeded stratified split."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from alrun.data import load_splits
from alrun.errors import AlrunError

LABELS = ["neg", "pos"]


def cfg_for(path: Path, **dataset):
    ds = {
        "name": "t",
        "path": str(path),
        "format": "auto",
        "text_field": "text",
        "label_field": "label",
        "id_field": None,
        "labels": LABELS,
        "test_path": None,
        "test_size": 0.25,
        **dataset,
    }
    return OmegaConf.create({"data_dir": str(path.parent), "dataset": ds})


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def rows(n: int) -> list[dict]:
    return [{"text": f"document number {i}", "label": LABELS[i % 2]} for i in range(n)]


def test_jsonl_split_is_stratified_and_seeded(tmp_path):
    cfg = cfg_for(write_jsonl(tmp_path / "d.jsonl", rows(40)))
    a = load_splits(cfg, cfg.dataset, seed=0)
    b = load_splits(cfg, cfg.dataset, seed=0)
    c = load_splits(cfg, cfg.dataset, seed=1)
    assert (len(a.pool), len(a.test)) == (30, 10)
    assert np.bincount(a.test.labels).tolist() == [5, 5]
    assert a.test.texts == b.test.texts and a.test.texts != c.test.texts
    assert not set(a.pool.texts) & set(a.test.texts)


def test_csv_with_multiline_field_and_custom_columns(tmp_path):
    p = tmp_path / "d.csv"
    lines = ["Id,Body,Cat"] + [f'{i},"line one {i}\nline two",{LABELS[i % 2]}' for i in range(8)]
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    cfg = cfg_for(p, text_field="Body", label_field="Cat", id_field="Id", test_size=0.5)
    s = load_splits(cfg, cfg.dataset, seed=0)
    assert len(s.pool) + len(s.test) == 8
    assert all("\n" in t for t in s.pool.texts) and set(s.pool.ids) <= {str(i) for i in range(8)}


def test_unknown_label_names_value_line_and_label_set(tmp_path):
    data = rows(6)
    data[4]["label"] = "neutral"
    cfg = cfg_for(write_jsonl(tmp_path / "d.jsonl", data))
    with pytest.raises(AlrunError) as e:
        load_splits(cfg, cfg.dataset, seed=0)
    msg = str(e.value)
    assert "line 5" in msg and "'neutral'" in msg and "['neg', 'pos']" in msg and "d.jsonl" in msg


def test_csv_unknown_label_line_counts_multiline_records(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text('text,label\n"a\nb",neg\n"c",pos\n"d",oops\n', encoding="utf-8")
    cfg = cfg_for(p)
    with pytest.raises(AlrunError, match=r"line 5: label 'oops'"):
        load_splits(cfg, cfg.dataset, seed=0)


def test_missing_file_and_missing_field_and_bad_json(tmp_path):
    cfg = cfg_for(tmp_path / "nope.jsonl")
    with pytest.raises(AlrunError, match=r"data file not found.*ALRUN_DATA_DIR"):
        load_splits(cfg, cfg.dataset, seed=0)
    cfg = cfg_for(write_jsonl(tmp_path / "d.jsonl", [{"body": "x", "label": "neg"}]))
    with pytest.raises(AlrunError, match=r"line 1: no field 'text' .*dataset.text_field"):
        load_splits(cfg, cfg.dataset, seed=0)
    p = tmp_path / "bad.jsonl"
    p.write_text('{"text": "a", "label": "neg"}\n{"text": oops}\n', encoding="utf-8")
    cfg = cfg_for(p)
    with pytest.raises(AlrunError, match="line 2: invalid JSON"):
        load_splits(cfg, cfg.dataset, seed=0)


def test_exact_duplicates_dropped_before_split(tmp_path, caplog):
    data = rows(20) + rows(20)[:5]  # five exact copies
    cfg = cfg_for(write_jsonl(tmp_path / "d.jsonl", data))
    with caplog.at_level("INFO"):
        s = load_splits(cfg, cfg.dataset, seed=0)
    assert len(s.pool) + len(s.test) == 20
    assert "dropped 5 exact duplicate" in caplog.text


def test_test_file_and_leak_removal(tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", rows(20))
    test = write_jsonl(tmp_path / "test.jsonl", rows(4))  # copies of 4 training texts
    cfg = cfg_for(train, test_path=str(test))
    s = load_splits(cfg, cfg.dataset, seed=0)
    assert len(s.test) == 4 and len(s.pool) == 16
    assert not set(s.pool.texts) & set(s.test.texts)


def test_hugging_face_dataset_folder(tmp_path):
    import datasets

    features = datasets.Features(
        {"sentence": datasets.Value("string"), "y": datasets.ClassLabel(names=LABELS)}
    )
    ds = datasets.Dataset.from_dict(
        {"sentence": [f"text {i}" for i in range(12)], "y": [i % 2 for i in range(12)]},
        features=features,
    )
    ds.save_to_disk(str(tmp_path / "hf"))
    cfg = cfg_for(tmp_path / "hf", format="hf", text_field="sentence", label_field="y")
    s = load_splits(cfg, cfg.dataset, seed=0)
    assert len(s.pool) + len(s.test) == 12
    assert sorted(set(s.pool.labels.tolist())) == [0, 1]  # ClassLabel ids mapped by name
