"""Bad input, handled: each case ends in one clear message and nothing partially written.

A bad input must stop `alrun` before it trains or writes anything, with one `alrun: error:`
line that names the file and line or the key, and says the fix. Every case is checked
in-process (`check_overrides`: the config composed with Hydra's compose API, the run-settings
checks, then the data read as a run reads it): the message, one line, the data left byte for
byte as it was, nothing else written, no embedding cache. Config-only cases must fail before
any data is read. A few cases also run the real `alrun` as a user would, for the command-line
contract: exit status 2, exactly that one line on stderr, no traceback, a run folder holding
nothing but Hydra's `.hydra/` and its log. W&B failing is not bad input: it warns once and the
run finishes with its local files.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ALRUN = [sys.executable, "-c", "from alrun.cli import main; main()"]
LABELS = ["neg", "pos", "neu"]
WORDS = ["good", "bad", "fine", "great", "awful", "okay", "nice", "poor", "dull"]
FAST = ["candidates=[tfidf_logreg]", "loop.initial_size=4", "loop.round_size=4", "loop.budget=8"]
RUN_FILES = {".hydra", "cli.log"}  # all a failed run may leave: Hydra's config and log


def rows(n: int = 60) -> list[dict]:
    """n distinct short reviews, ids r0.., labels cycling through LABELS."""
    return [
        {
            "id": f"r{i}",
            "text": f"{LABELS[i % 3]} review {i}: "
            + " ".join(WORDS[(i * k) % len(WORDS)] for k in range(1, 6)),
            "label": LABELS[i % 3],
        }
        for i in range(n)
    ]


def jsonl_lines(records: list[dict]) -> list[str]:
    return [json.dumps(r) for r in records]


def write(path: Path, lines: list[str] | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(lines, bytes):
        path.write_bytes(lines)
    else:
        path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def custom(name: str, *extra: str) -> list[str]:
    return ["dataset=custom_file", f"dataset.path={name}", "dataset.labels=[neg,pos,neu]", *extra]


def args_for(*groups: list[str]) -> list[str]:
    """The overrides of all groups, a later group's value winning for the same key."""
    merged: dict[str, str] = {}
    for group in groups:
        merged.update((a.split("=", 1)[0], a) for a in group)
    return list(merged.values())


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def alrun(*args: str, data: Path, cache: Path, env: dict | None = None, timeout: float = 120):
    full_env = {
        **os.environ,
        "ALRUN_DATA_DIR": str(data),
        "ALRUN_CACHE_DIR": str(cache),
        "HF_HUB_OFFLINE": "1",
        "WANDB_SILENT": "true",
        **(env or {}),
    }
    return subprocess.run(
        [*ALRUN, *args], cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=timeout
    )


# --------------------------------------------------------------------------- the cases
# Each writes its data under `data` and returns the command-line arguments.


def empty_data_file(data: Path) -> list[str]:
    write(data / "reviews.jsonl", b"")
    return custom("reviews.jsonl")


def invalid_json_on_line_n(data: Path) -> list[str]:
    lines = jsonl_lines(rows())
    lines[6] = '{"id": "r6", "text": "fine", label: "pos"}'
    write(data / "reviews.jsonl", lines)
    return custom("reviews.jsonl")


def _drop_field(data: Path, field: str) -> list[str]:
    recs = rows()
    del recs[6][field]
    write(data / "reviews.jsonl", jsonl_lines(recs))
    return custom("reviews.jsonl")


def missing_text_field(data: Path) -> list[str]:
    return _drop_field(data, "text")


def missing_label_field(data: Path) -> list[str]:
    return _drop_field(data, "label")


def text_field_not_in_file(data: Path) -> list[str]:
    write(data / "reviews.jsonl", jsonl_lines(rows()))
    return custom("reviews.jsonl", "dataset.text_field=body")


def empty_text(data: Path) -> list[str]:
    recs = rows()
    recs[6]["text"] = "  \t "
    write(data / "reviews.jsonl", jsonl_lines(recs))
    return custom("reviews.jsonl")


def non_utf8_jsonl(data: Path) -> list[str]:
    lines = jsonl_lines(rows())
    lines[6] = lines[6].replace("review", "r\u00e9view")
    write(data / "reviews.jsonl", "".join(x + "\n" for x in lines).encode("latin-1"))
    return custom("reviews.jsonl")


def non_utf8_csv(data: Path) -> list[str]:
    lines = ["id,text,label"] + [f"{r['id']},{r['text']},{r['label']}" for r in rows()]
    lines[7] = lines[7].replace("review", "r\u00e9view")  # record 7, on line 8 after the header
    write(data / "reviews.csv", "".join(x + "\n" for x in lines).encode("cp1252"))
    return custom("reviews.csv", "dataset.id_field=id")


def duplicate_ids(data: Path) -> list[str]:
    recs = rows()
    recs[8]["id"] = "r3"
    write(data / "reviews.jsonl", jsonl_lines(recs))
    return custom("reviews.jsonl", "dataset.id_field=id")


def label_set_with_one_class(data: Path) -> list[str]:
    write(data / "reviews.jsonl", jsonl_lines(rows()))
    return ["dataset=custom_file", "dataset.path=reviews.jsonl", "dataset.labels=[neg]"]


def data_with_one_class(data: Path) -> list[str]:
    recs = [r for r in rows() if r["label"] == "neg"]
    write(data / "train.jsonl", jsonl_lines(recs))
    write(data / "test.jsonl", jsonl_lines([r for r in rows(90)[60:] if r["label"] != "neu"]))
    return custom("train.jsonl", "dataset.test_path=test.jsonl", "dataset.labels=[neg,pos]")


def initial_size_above_pool(data: Path) -> list[str]:
    write(data / "reviews.jsonl", jsonl_lines(rows()))  # 60 = 48 to label + 12 for test
    return custom("reviews.jsonl", "loop.initial_size=50", "loop.budget=100")


def round_size_above_pool(data: Path) -> list[str]:
    write(data / "reviews.jsonl", jsonl_lines(rows()))  # 48 to label: 44 left after 4
    return custom("reviews.jsonl", "loop.round_size=45", "loop.budget=100")


def budget_below_initial_size(data: Path) -> list[str]:
    write(data / "reviews.jsonl", jsonl_lines(rows()))
    return custom("reviews.jsonl", "loop.initial_size=10", "loop.budget=6")


def empty_candidate_list(data: Path) -> list[str]:
    write(data / "reviews.jsonl", jsonl_lines(rows()))
    return custom("reviews.jsonl", "candidates=[]")


def task_strategy_mismatch(data: Path) -> list[str]:
    return ["dataset=conll2003", "strategy=margin"]


def bbc_like(data: Path) -> list[dict]:
    """A small bbc-news/bbc-news.jsonl under `data`, for the default dataset=bbc_news."""
    topics = ["business", "entertainment", "politics", "sport", "tech"]
    recs = [{**r, "label": topics[i % 5]} for i, r in enumerate(rows())]
    write(data / "bbc-news" / "bbc-news.jsonl", jsonl_lines(recs))
    return recs


def data_path_is_directory(data: Path) -> list[str]:
    bbc_like(data)
    return ["dataset=bbc_news", "dataset.path=bbc-news"]


def data_file_not_found(data: Path) -> list[str]:
    return ["data_dir=/nonexistent"]


def label_not_in_label_set(data: Path) -> list[str]:
    recs = bbc_like(data)
    recs[41]["label"] = "sports"
    write(data / "bbc-news" / "bbc-news.jsonl", jsonl_lines(recs))
    return []


def unknown_model_name(data: Path) -> list[str]:
    bbc_like(data)
    return ["models.tfidf_logreg.name=bert_huge"]


def round_size_zero(data: Path) -> list[str]:
    bbc_like(data)
    return ["loop.round_size=0"]


Case = Callable[[Path], list[str]]
CASES: list[tuple[Case, list[str]]] = [
    (
        empty_data_file,
        ["dataset.path=", "reviews.jsonl: no records, the file is empty", "fill it"],
    ),
    (
        invalid_json_on_line_n,
        ["reviews.jsonl line 7: invalid JSON", "fix or delete that line"],
    ),
    (
        missing_text_field,
        ["reviews.jsonl line 7: no field 'text'", "add 'text' to that record or delete the line"],
    ),
    (
        missing_label_field,
        ["reviews.jsonl line 7: no field 'label'", "add 'label' to that record"],
    ),
    (
        text_field_not_in_file,
        ["reviews.jsonl line 1: no field 'body' (fields: id, text, label)", "set dataset.text_"],
    ),
    (
        empty_text,
        ["reviews.jsonl line 7: field 'text' is empty", "fill in the text or delete the line"],
    ),
    (
        non_utf8_jsonl,
        ["reviews.jsonl line 7: not UTF-8 (byte 0xe9", "re-save the file as UTF-8"],
    ),
    (
        non_utf8_csv,
        ["reviews.csv line 8: not UTF-8 (byte 0xe9", "re-save the file as UTF-8"],
    ),
    (
        duplicate_ids,
        [
            "reviews.jsonl line 9: duplicate id 'r3' (dataset.id_field=id)",
            "at line 4",
            "give every record its own id",
        ],
    ),
    (
        label_set_with_one_class,
        ["dataset.labels=['neg'] holds one label", "list every label of the data"],
    ),
    (
        data_with_one_class,
        ["every document left to label has the label 'neg'", "train.jsonl", "add documents"],
    ),
    (
        initial_size_above_pool,
        [
            "loop.initial_size=50 is larger than the pool",
            "the pool holds 48 documents",
            "lower loop.initial_size to at most 48",
        ],
    ),
    (
        round_size_above_pool,
        [
            "loop.round_size=45 is larger than the 44 documents left unlabelled",
            "the pool holds 48 documents",
            "lower loop.round_size to at most 44",
        ],
    ),
    (
        budget_below_initial_size,
        [
            "loop.budget=6 is below loop.initial_size=10",
            "raise loop.budget to at least 10 or lower loop.initial_size to at most 6",
        ],
    ),
    (
        empty_candidate_list,
        ["candidates is empty", "e.g. candidates=[minilm_tfidf_logreg]"],
    ),
    (
        task_strategy_mismatch,
        [
            "strategy 'margin' supports tasks ['multiclass'], not 'ner'",
            "choose a strategy for ner: strategy=",
            "mnlp",
        ],
    ),
    (
        data_file_not_found,
        [
            "data file not found: /nonexistent/bbc-news/bbc-news.jsonl",
            "(dataset.path under data_dir=/nonexistent)",
            "ALRUN_DATA_DIR",
            "alrun dataset=bbc_news_hub",
        ],
    ),
    (
        label_not_in_label_set,
        [
            "bbc-news.jsonl line 42: label 'sports' is not in the label set",
            "fix the data or add the label to dataset.labels",
        ],
    ),
    (
        unknown_model_name,
        ["unknown model 'bert_huge'", "valid names:", "tfidf_logreg"],
    ),
    (
        round_size_zero,
        ["loop.round_size=0 must be at least 1", "e.g. loop.round_size=10"],
    ),
    (
        data_path_is_directory,
        [
            "dataset.path=",
            "bbc-news is a directory (files in it: bbc-news.jsonl)",
            "e.g. dataset.path=",
            "bbc-news/bbc-news.jsonl",
        ],
    ),
]


def raw_pool_with_simulated_oracle(data: Path) -> list[str]:
    write(data / "texts.csv", ["Text"] + [f"article {i} about {WORDS[i % 9]}" for i in range(30)])
    return [
        "dataset=raw_text",
        "dataset.path=texts.csv",
        "dataset.text_field=Text",
        "task=multiclass",
        "dataset.labels=[neg,pos]",
        "oracle=simulated",
    ]


def raw_pool_without_heldout_labels(data: Path) -> list[str]:
    return [*raw_pool_with_simulated_oracle(data)[:-1], "oracle=web", "eval.size=0"]


CASES += [
    (
        raw_pool_with_simulated_oracle,
        [
            "dataset.path=texts.csv",
            "oracle=simulated answers from gold labels, and this pool has none",
            "with oracle=web",
        ],
    ),
    (
        raw_pool_without_heldout_labels,
        ["no learning curve without held-out labels", "eval.size=N", "dataset.test_path=FILE"],
    ),
]

# Fail in the run-settings checks, before any data is read.
CONFIG_ONLY = {
    raw_pool_with_simulated_oracle,
    raw_pool_without_heldout_labels,
    label_set_with_one_class,
    budget_below_initial_size,
    empty_candidate_list,
    task_strategy_mismatch,
    unknown_model_name,
    round_size_zero,
}
# Also run as a user would: a config error, a data file's line, a missing file.
COMMAND_LINE = [
    invalid_json_on_line_n,
    round_size_zero,
    data_file_not_found,
    raw_pool_with_simulated_oracle,
]
EXPECTED = {case: expected for case, expected in CASES}


@pytest.mark.parametrize(
    ("case", "expected"), [pytest.param(c, e, id=c.__name__) for c, e in CASES]
)
def test_bad_input_ends_in_one_message_and_writes_nothing(
    tmp_path, monkeypatch, check_overrides, case, expected
):
    data, cache = tmp_path / "data", tmp_path / "cache"
    data.mkdir()
    cache.mkdir()
    monkeypatch.chdir(tmp_path)  # whatever a run wrote to the working directory would show
    args = args_for(FAST, [f"data_dir={data}", f"cache_dir={cache}"], case(data))
    before = snapshot(tmp_path)
    # a config-only case is refused on the settings alone, before any data is read
    error = check_overrides(*args, read_data=case not in CONFIG_ONLY)
    assert error is not None, f"{case.__name__}: no error"
    message = str(error)
    assert "\n" not in message, message  # one line: `alrun: error: <message>`
    for text in expected:
        assert text in message, message
    assert snapshot(tmp_path) == before  # the input byte for byte as it was, nothing added
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "data"]
    assert not any(cache.iterdir())  # no embeddings computed


@pytest.mark.slow
@pytest.mark.parametrize("case", [pytest.param(c, id=c.__name__) for c in COMMAND_LINE])
def test_bad_input_exits_2_with_one_error_line(tmp_path, case):
    data, cache, run = tmp_path / "data", tmp_path / "cache", tmp_path / "run"
    data.mkdir()
    cache.mkdir()
    # The default logger (W&B, offline): an error after it started would leave <run>/wandb/.
    args = args_for(FAST, case(data), [f"hydra.run.dir={run}"])
    before = snapshot(data)
    proc = alrun(*args, data=data, cache=cache)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("alrun: error:")]
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert len(errors) == 1, proc.stderr[-3000:]
    for text in EXPECTED[case]:
        assert text in errors[0], errors[0]
    assert "Traceback" not in proc.stderr + proc.stdout
    assert {p.name for p in run.iterdir()} <= RUN_FILES  # no rounds, labels, model, summary
    assert snapshot(data) == before  # the input is byte for byte as it was, nothing added
    assert not any(cache.iterdir())  # no embeddings computed


@pytest.mark.slow
def test_unknown_config_option_is_hydras_message(tmp_path):
    """An option file that does not exist fails in Hydra's composition, before alrun runs."""
    data, cache, run = tmp_path / "data", tmp_path / "cache", tmp_path / "run"
    bbc_like(data)
    cache.mkdir()
    before = snapshot(data)
    proc = alrun(*FAST, "strategy=smartest", f"hydra.run.dir={run}", data=data, cache=cache)
    assert proc.returncode != 0
    assert "Could not find 'strategy/smartest'" in proc.stderr
    assert "Available options in 'strategy'" in proc.stderr  # the fix: the valid names
    assert "Traceback" not in proc.stderr
    assert not run.exists() or {p.name for p in run.iterdir()} <= RUN_FILES
    assert snapshot(data) == before and not any(cache.iterdir())


# --------------------------------------------------------------------------- W&B failing


@pytest.mark.parametrize(
    ("setup", "env", "extra"),
    [
        pytest.param(
            # a file where W&B's folder goes: W&B cannot create <run>/wandb/ (chmod would not
            # stop root, which the tests may run as)
            lambda run: write(run / "wandb", b""),
            {},
            [],
            id="wandb_folder_unwritable",
        ),
        pytest.param(
            lambda run: None,
            {
                "WANDB_API_KEY": "x" * 40,
                "WANDB_BASE_URL": "http://127.0.0.1:9",  # the discard port: refused at once
                "WANDB_INIT_TIMEOUT": "5",
            },
            ["logger.mode=online"],
            id="wandb_online_without_network",
        ),
    ],
)
@pytest.mark.slow
@pytest.mark.full  # ~15 s a case, W&B's own start-up and time-outs
def test_wandb_failing_warns_once_and_the_run_finishes(tmp_path, setup, env, extra):
    data, cache, run = tmp_path / "data", tmp_path / "cache", tmp_path / "run"
    write(data / "reviews.jsonl", jsonl_lines(rows()))
    run.mkdir()
    setup(run)
    env = {
        **env,
        "WANDB_CONFIG_DIR": str(tmp_path / "wandb-config"),
        "WANDB_CACHE_DIR": str(tmp_path / "wandb-cache"),
        "WANDB_DATA_DIR": str(tmp_path / "wandb-data"),
    }
    proc = alrun(
        *custom("reviews.jsonl"),
        *FAST,
        "logger=wandb",
        *extra,
        f"hydra.run.dir={run}",
        data=data,
        cache=cache,
        env=env,
        timeout=60,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    warnings = [line for line in out.splitlines() if "W&B" in line or "wandb:" in line]
    assert len(warnings) == 1, warnings
    assert "W&B init failed" in warnings[0] and "continuing with local files only" in warnings[0]
    assert "For W&B: " in warnings[0]  # the fix
    assert "Traceback" not in out
    rounds = [json.loads(x) for x in (run / "rounds.jsonl").read_text().splitlines()]
    assert [r["labeled"] for r in rounds] == [4, 8]
    labeled = [json.loads(x) for x in (run / "labeled.jsonl").read_text().splitlines()]
    assert [x["round"] for x in labeled] == [0] * 4 + [1] * 4
    summary = json.loads((run / "summary.json").read_text())
    assert summary["final/labeled"] == 8 and summary["rounds"] == 2
    assert (run / "model" / "alrun-model.json").exists()
