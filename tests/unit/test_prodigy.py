"""Prodigy JSONL: answers, alignment modes, duplicates, overlaps, converters and round trips."""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

from alrun.convert import main as convert
from alrun.data import load_splits, load_token_splits, prodigy, read_conll
from alrun.errors import AlrunError

OBAMA = {
    "text": "Barack Obama visited Paris.",
    "spans": [{"start": 0, "end": 12, "label": "PER"}, {"start": 21, "end": 26, "label": "LOC"}],
    "answer": "accept",
    "_input_hash": 1,
}
# One line per documented outcome; the comment is what the README promises for it.
NER_LINES = [
    # 1: accepted, char offsets -> converted
    OBAMA,
    # 2: rejected -> not gold
    {
        "text": "Apple is a fruit.",
        "spans": [{"start": 0, "end": 5, "label": "ORG"}],
        "answer": "reject",
        "_input_hash": 2,
    },
    # 3: ignored -> not data
    {"text": "Nothing to see.", "answer": "ignore", "_input_hash": 3},
    # 4: a span that cuts "Yorkers" in half -> strict: skipped; contract: New; expand: New Yorkers
    {
        "text": "New Yorkers love pizza.",
        "spans": [{"start": 0, "end": 8, "label": "LOC"}],
        "answer": "accept",
        "_input_hash": 4,
    },
    # 5: overlapping spans -> an error in every mode
    {
        "text": "Angela Merkel met Macron.",
        "spans": [
            {"start": 0, "end": 13, "label": "PER"},
            {"start": 7, "end": 13, "label": "PER"},
        ],
        "answer": "accept",
        "_input_hash": 5,
    },
    # 6: same _input_hash as line 1, same annotation -> merged into line 1, counted once
    OBAMA,
    # 7 and 8: one input, two different annotations -> conflict, both skipped
    {"text": "Jordan won.", "spans": [{"start": 0, "end": 6, "label": "PER"}], "_input_hash": 7},
    {"text": "Jordan won.", "spans": [{"start": 0, "end": 6, "label": "LOC"}], "_input_hash": 7},
    # 9: the task's own tokens and token_start/token_end spans; no answer = accept (db-in)
    {
        "text": "U.N. envoy in Kabul",
        "tokens": [
            {"text": "U.N.", "start": 0, "end": 4, "id": 0, "ws": True},
            {"text": "envoy", "start": 5, "end": 10, "id": 1, "ws": True},
            {"text": "in", "start": 11, "end": 13, "id": 2, "ws": True},
            {"text": "Kabul", "start": 14, "end": 19, "id": 3, "ws": False},
        ],
        "spans": [
            {"token_start": 0, "token_end": 0, "label": "ORG"},
            {"token_start": 3, "token_end": 3, "label": "LOC"},
        ],
    },
]


@pytest.fixture
def ner_file(tmp_path: Path) -> Path:
    p = tmp_path / "ner.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in NER_LINES))
    return p


COMMON = {
    "errors": {"overlapping spans (an entity tag scheme cannot hold them)": [5]},
    "not_data": {
        "answer reject (a rejected NER task is not gold)": [2],
        "answer ignore": [3],
        "same input annotated again, identically (merged into its first line)": [6],
    },
}
CONFLICT = "same input annotated differently (conflict: resolve with prodigy review)"


@pytest.mark.parametrize(
    ("mode", "line4", "skipped", "adjusted"),
    [
        ("strict", None, {"span edge inside a token (alignment=strict)": [4]}, {}),
        ("contract", ["B-LOC", "O", "O", "O", "O"], {}, [4]),
        ("expand", ["B-LOC", "I-LOC", "O", "O", "O"], {}, [4]),
    ],
)
def test_every_line_gets_its_documented_outcome(ner_file, mode, line4, skipped, adjusted):
    examples, report = prodigy.read_ner(ner_file, mode)
    got = {e.line: e.tags for e in examples}
    expected = {
        1: ["B-PER", "I-PER", "O", "B-LOC", "O"],
        9: ["B-ORG", "O", "O", "B-LOC"],
        **({4: line4} if line4 else {}),
    }
    assert got == expected
    assert report.read == 9 and report.converted == len(expected)
    assert report.errors == COMMON["errors"]
    assert report.not_data == COMMON["not_data"]
    assert report.skipped == {**skipped, CONFLICT: [7, 8]}
    assert report.adjusted == (
        {f"span edges moved to token edges (alignment={mode})": adjusted} if adjusted else {}
    )
    assert report.failed(mode)  # line 5's overlap fails every mode
    text = report.text()
    assert "line 5" in text and "lines 7, 8" in text and "line 6" in text


def test_convert_cli_reports_lines_writes_nothing_and_fails(ner_file, tmp_path, capsys):
    out = tmp_path / "out.jsonl"
    with pytest.raises(SystemExit) as e:
        convert(["prodigy-to-iob", str(ner_file), str(out)])
    assert e.value.code == 1 and not out.exists()
    err = capsys.readouterr().err
    assert "9 examples read, 2 converted" in err and "line 4" in err and "nothing written" in err
    # without the overlap and the conflict: strict still fails on line 4; contract converts it
    clean = tmp_path / "clean.jsonl"
    clean.write_text("".join(json.dumps(r) + "\n" for r in NER_LINES[:4] + NER_LINES[5:6]))
    with pytest.raises(SystemExit) as e:
        convert(["prodigy-to-iob", str(clean), str(out)])
    assert e.value.code == 1 and not out.exists()
    with pytest.raises(SystemExit) as e:
        convert(["prodigy-to-iob", "--alignment", "contract", str(clean), str(out)])
    assert e.value.code == 0
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert rows == [
        {"tokens": ["Barack", "Obama", "visited", "Paris", "."], "tags": NER_LINES_TAGS[0]},
        {"tokens": ["New", "Yorkers", "love", "pizza", "."], "tags": ["B-LOC", "O", "O", "O", "O"]},
    ]


NER_LINES_TAGS = [["B-PER", "I-PER", "O", "B-LOC", "O"]]


TEXTCAT_LINES = [
    {"text": "a", "options": [{"id": "x"}, {"id": "y"}, {"id": "z"}], "accept": ["y"]},  # 1 -> y
    {"text": "b", "label": "x", "answer": "accept", "_input_hash": 2},  # 2 -> x
    {"text": "b", "label": "x", "answer": "accept", "_input_hash": 2},  # 3 merged into 2
    {"text": "c", "label": "x", "answer": "reject", "_input_hash": 4},  # 4 only a negative
    {"text": "d", "label": "x", "answer": "reject", "_input_hash": 5},  # 5, 6 -> z implied
    {"text": "d", "label": "y", "answer": "reject", "_input_hash": 5},
    {"text": "e", "label": "x", "answer": "accept", "_input_hash": 7},  # 7, 8 conflict
    {"text": "e", "label": "y", "answer": "accept", "_input_hash": 7},
    {"text": "f", "options": [{"id": "x"}], "accept": ["x", "y"], "answer": "accept"},  # 9
    {"text": "g", "options": [{"id": "x"}], "accept": ["x"], "answer": "reject"},  # 10
    {"text": "h", "label": "z", "answer": "ignore"},  # 11
    {"text": "", "label": "z", "answer": "accept"},  # 12 no text
]


def test_textcat_answers_negatives_and_duplicates(tmp_path):
    p = tmp_path / "cat.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in TEXTCAT_LINES))
    examples, report = prodigy.read_textcat(p, ["x", "y", "z"])
    assert [(e.line, e.text, e.label) for e in examples] == [
        (1, "a", "y"),
        (2, "b", "x"),
        (5, "d", "z"),
    ]
    assert report.adjusted == {"label implied: every other label was rejected": [5, 6]}
    assert report.not_data == {
        "same input annotated again (merged)": [3],
        "only rejected labels (negatives, no positive label)": [4],
        "answer reject on a choice task (not gold)": [10],
        "answer ignore": [11],
    }
    assert report.skipped == {
        "no text": [12],
        "several options accepted (multiclass needs exactly one)": [9],
        "same input given different labels (conflict: resolve with prodigy review)": [7, 8],
    }
    # without a label set, the file's own labels count: line 1's options name z
    examples, _ = prodigy.read_textcat(p)
    assert [e.line for e in examples] == [1, 2, 5]
    p.write_text("".join(json.dumps(r) + "\n" for r in TEXTCAT_LINES[4:6]))  # no z anywhere
    examples, report = prodigy.read_textcat(p)
    assert not examples and report.not_data == {
        "only rejected labels (negatives, no positive label)": [1, 2]
    }


def test_conll_valid_round_trip_is_identical(data_dir, tmp_path):
    """CoNLL-2003 valid -> Prodigy JSONL -> IOB and -> CoNLL: the same tokens and tags."""
    src = data_dir / "conll2003" / "valid.txt"
    tasks, iob, conll = tmp_path / "v.jsonl", tmp_path / "v.iob.jsonl", tmp_path / "v.conll"
    for argv in (
        ["to-prodigy", str(src), str(tasks)],
        ["prodigy-to-iob", str(tasks), str(iob)],
        ["prodigy-to-conll", str(tasks), str(conll)],
    ):
        with pytest.raises(SystemExit) as e:
            convert(argv)
        assert e.value.code == 0, argv
    gold = [(toks, tags) for _, sents in read_conll(src) for _, toks, tags in sents]
    rows = [json.loads(x) for x in iob.read_text().splitlines()]
    assert len(rows) == len(gold) == 3250
    assert [(r["tokens"], r["tags"]) for r in rows] == gold
    back = read_conll(conll)
    assert [(t, g) for _, s in back for _, t, g in s] == gold
    assert len(back) == len(read_conll(src))  # documents kept via meta.doc


# --------------------------------------------------------------------------- property tests

WORD = st.text(alphabet="abcXYZ09.,-'", min_size=1, max_size=6)


@st.composite
def words_and_spans(draw):
    words = draw(st.lists(WORD, min_size=1, max_size=12))
    cuts = sorted(draw(st.sets(st.integers(0, len(words)), max_size=8)))
    spans = []
    for a, b in pairwise(cuts):
        if draw(st.booleans()):
            spans.append((a, b - 1, draw(st.sampled_from(["PER", "ORG", "LOC"]))))
    return words, spans


@settings(max_examples=200, deadline=None)
@given(words_and_spans())
def test_random_token_spans_survive_prodigy_and_back(tmp_path_factory, case):
    words, spans = case
    tags = prodigy.spans_to_tags(len(words), spans)
    task = prodigy.ner_task(words, tags)
    for s in task["spans"]:
        assert task["text"][s["start"] : s["end"]] == " ".join(
            words[s["token_start"] : s["token_end"] + 1]
        )
    p = tmp_path_factory.mktemp("rt") / "t.jsonl"
    p.write_text(json.dumps(task) + "\n")
    (ex,), report = prodigy.read_ner(p, "strict")
    assert (ex.words, ex.tags) == (words, tags) and not report.skipped


SEP = st.sampled_from([" ", "  ", "\n", " \n "])


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.text(alphabet="abcdXY", min_size=1, max_size=5), min_size=1, max_size=10), st.data()
)
def test_char_spans_on_spacy_token_edges_survive_without_tokens(tmp_path_factory, words, data):
    """Tasks with raw text only: spans drawn on token edges come back exactly after spaCy
    tokenisation, whatever whitespace separates the words."""
    seps = [data.draw(SEP) for _ in words[1:]]
    text = words[0] + "".join(s + w for s, w in zip(seps, words[1:], strict=True))
    tokens = prodigy.tokenize(text)
    cuts = sorted(data.draw(st.sets(st.integers(0, len(tokens)), max_size=6)))
    spans = [
        {"start": tokens[a]["start"], "end": tokens[b - 1]["end"], "label": "X"}
        for a, b in pairwise(cuts)
        if data.draw(st.booleans())
    ]
    p = tmp_path_factory.mktemp("sp") / "t.jsonl"
    p.write_text(json.dumps({"text": text, "spans": spans}) + "\n")
    (ex,), _ = prodigy.read_ner(p, "strict")
    got = prodigy.spans_from_tags(ex.tokens, ex.tags)
    assert [(s["start"], s["end"], s["label"]) for s in got] == [
        (s["start"], s["end"], s["label"]) for s in spans
    ]
    assert all(not t["text"].isspace() for t in ex.tokens)


# --------------------------------------------------------------------------- as a dataset


def _cfg(tmp_path: Path, **dataset) -> OmegaConf:
    return OmegaConf.create(
        {
            "data_dir": str(tmp_path),
            "dataset": {"format": "prodigy", "test_size": 0.5, "labels": None, **dataset},
        }
    )


def test_prodigy_ner_dataset_and_strict_failure(tmp_path, ner_file):
    cfg = _cfg(tmp_path, path=str(ner_file), alignment="strict")
    with pytest.raises(AlrunError) as e:
        load_token_splits(cfg, cfg.dataset, 0, "sentence")
    for part in ("line 4", "line 5", "lines 7, 8", "dataset.alignment=contract|expand"):
        assert part in str(e.value)
    good = tmp_path / "good.jsonl"
    good.write_text(
        "".join(json.dumps(r) + "\n" for r in NER_LINES[:4] + NER_LINES[5:6] + NER_LINES[8:])
    )
    cfg = _cfg(tmp_path, path=str(good), alignment="expand")
    splits = load_token_splits(cfg, cfg.dataset, 0, "sentence")
    assert len(splits.pool) + len(splits.test) == 3  # lines 1, 4, 9; 2/3 not data, 6 merged
    assert splits.pool.label_names == ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]


def test_prodigy_textcat_dataset_takes_labels_from_the_file(tmp_path):
    p = tmp_path / "cat.jsonl"
    rows = [{"text": f"t{i}", "label": "ab"[i % 2], "answer": "accept"} for i in range(8)]
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = _cfg(tmp_path, path="cat.jsonl")
    splits = load_splits(cfg, cfg.dataset, 0)
    assert splits.pool.label_names == ["a", "b"] and len(splits.pool) + len(splits.test) == 8


def test_whitespace_tokens_from_prodigy_are_dropped(tmp_path):
    """Prodigy's own tokens include spaCy's whitespace tokens; IOB/CoNLL cannot hold them."""
    text = "Hello\n\nNew  York"
    p = tmp_path / "ws.jsonl"
    task = {
        "text": text,
        "tokens": [
            {"text": "Hello", "start": 0, "end": 5, "id": 0, "ws": False},
            {"text": "\n\n", "start": 5, "end": 7, "id": 1, "ws": False},
            {"text": "New", "start": 7, "end": 10, "id": 2, "ws": True},
            {"text": " ", "start": 11, "end": 12, "id": 3, "ws": False},
            {"text": "York", "start": 12, "end": 16, "id": 4, "ws": False},
        ],
        "spans": [{"start": 7, "end": 16, "label": "LOC", "token_start": 2, "token_end": 4}],
    }
    p.write_text(json.dumps(task) + "\n")
    (ex,), _ = prodigy.read_ner(p)
    assert ex.words == ["Hello", "New", "York"] and ex.tags == ["O", "B-LOC", "I-LOC"]
    (span,) = prodigy.spans_from_tags(ex.tokens, ex.tags)
    assert text[span["start"] : span["end"]] == "New  York"
