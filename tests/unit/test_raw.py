"""Raw text pools read byte for byte from every source, their errors, and sentences/tokens with
character offsets into the original text (hand-made answers and real BBC articles)."""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import time
from itertools import pairwise
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from alrun.data import load_nlp, prodigy, read_texts, sentences_with_offsets
from alrun.errors import AlrunError

ROOT = Path(__file__).resolve().parents[2]
# Texts that a careless reader changes: double spaces, tabs, newlines, CRLF, non-ASCII.
TRICKY = [
    "Two  spaces\tand a tab",
    "A newline\ninside, and a CRLF\r\nhere",
    "Café naïve — 東京 ✓ “quotes”",
    "  leading and trailing spaces  ",
]


def cfg(**kw: object):
    return OmegaConf.create({"format": "auto", "text_field": "text", "id_field": None, **kw})


def fails(path: Path, *parts: str, **kw: object) -> str:
    """read_texts fails with a message holding every one of `parts`."""
    with pytest.raises(AlrunError) as e:
        read_texts(cfg(**kw), path)
    msg = str(e.value)
    for p in parts:
        assert p in msg, msg
    return msg


def bbc_csv() -> Path:
    """The real BBC CSV (ALRUN_DATA_DIR, else data/, else ../shared/data); skip without it."""
    for d in (os.environ.get("ALRUN_DATA_DIR"), ROOT / "data", ROOT.parent / "shared" / "data"):
        if d and (Path(d) / "bbc-news" / "bbc-news.csv").exists():
            return Path(d) / "bbc-news" / "bbc-news.csv"
    pytest.skip("bbc-news/bbc-news.csv not found; set ALRUN_DATA_DIR")


# --------------------------------------------------------------------------- sources


def test_csv_with_only_a_text_column_keeps_texts_exactly(tmp_path: Path):
    buf = io.StringIO(newline="")
    w = csv.writer(buf)
    w.writerow(["text"])
    w.writerows([t] for t in TRICKY)
    path = tmp_path / "pool.csv"
    path.write_bytes(buf.getvalue().encode("utf-8"))
    docs = read_texts(cfg(), path)
    assert [t for _, t, _ in docs] == TRICKY
    # ids and places are the line each record starts on (record 2 spans lines 3-5)
    assert [i for i, _, _ in docs] == ["line-2", "line-3", "line-6", "line-7"]
    assert docs[2][2] == f"{path} line 6"


def test_tsv_and_csv_ids_from_id_field(tmp_path: Path):
    path = tmp_path / "pool.tsv"
    path.write_text('doc\tbody\nd1\tfirst  text\nd2\t"second\ttext"\n', encoding="utf-8")
    docs = read_texts(cfg(text_field="body", id_field="doc"), path)
    assert [(i, t) for i, t, _ in docs] == [("d1", "first  text"), ("d2", "second\ttext")]


def test_jsonl_exact_texts_line_ids_and_blank_lines(tmp_path: Path):
    path = tmp_path / "pool.jsonl"
    lines = [json.dumps({"text": t, "n": i}, ensure_ascii=False) for i, t in enumerate(TRICKY)]
    path.write_text("\n".join(lines[:2]) + "\n\n" + "\n".join(lines[2:]) + "\n", "utf-8")
    docs = read_texts(cfg(), path)
    assert [t for _, t, _ in docs] == TRICKY
    assert [i for i, _, _ in docs] == ["line-1", "line-2", "line-4", "line-5"]
    assert [i for i, _, _ in read_texts(cfg(id_field="n"), path)] == ["0", "1", "2", "3"]


def test_txt_folder_one_document_per_file_sorted_and_byte_exact(tmp_path: Path):
    folder = tmp_path / "pool"
    folder.mkdir()
    files = {"b-second": "Second\r\nwith CRLF\r\n", "a-first": "First  doc\t\nnaïve\n\n"}
    for stem, text in files.items():
        (folder / f"{stem}.txt").write_bytes(text.encode("utf-8"))
    (folder / "notes.md").write_text("not a document", encoding="utf-8")
    docs = read_texts(cfg(), folder)
    assert [(i, t) for i, t, _ in docs] == sorted(files.items())
    assert docs[0][2] == str(folder / "a-first.txt")
    assert read_texts(cfg(format="txtdir"), folder) == docs


def test_txt_file_one_document_per_line_with_crlf(tmp_path: Path):
    path = tmp_path / "pool.txt"
    path.write_bytes("first  line\t \r\n\r\n  \r\nsecond — ü\r\nlone\rCR stays\r\nlast".encode())
    docs = read_texts(cfg(), path)
    assert [(i, t) for i, t, _ in docs] == [
        ("line-1", "first  line\t "),
        ("line-4", "second — ü"),
        ("line-5", "lone\rCR stays"),
        ("line-6", "last"),
    ]
    assert docs[1][2] == f"{path} line 4"
    lf = tmp_path / "lf.txt"
    lf.write_bytes(b"\xef\xbb\xbfone\ntwo\n")  # a byte-order mark is not text
    assert [t for _, t, _ in read_texts(cfg(format="lines"), lf)] == ["one", "two"]


def test_prodigy_source_file_ids_from_meta(tmp_path: Path):
    path = tmp_path / "source.jsonl"
    rows = [
        {"text": "Barack  Obama visited Paris.", "meta": {"id": "doc-7", "source": "x"}},
        {"text": "No meta here.\tTab."},
        {"text": "Meta without id.", "meta": {"source": "y"}},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    docs = read_texts(cfg(format="prodigy"), path)
    assert [(i, t) for i, t, _ in docs] == [
        ("doc-7", rows[0]["text"]),
        ("line-2", rows[1]["text"]),
        ("line-3", rows[2]["text"]),
    ]
    # format auto reads the same file as plain JSONL (text_field "text"), ids by line
    assert [t for _, t, _ in read_texts(cfg(), path)] == [r["text"] for r in rows]
    # dataset.id_field: at the top level or in meta, on every line
    fails(path, f"{path} line 2", "no field 'source'", format="prodigy", id_field="source")
    path.write_text(
        '{"text": "a", "uid": 5}\n{"text": "b", "meta": {"uid": "x"}}\n', encoding="utf-8"
    )
    docs = read_texts(cfg(format="prodigy", id_field="uid"), path)
    assert [i for i, _, _ in docs] == ["5", "x"]


def test_hf_dataset_folder(tmp_path: Path):
    import datasets

    folder = tmp_path / "hf"
    datasets.Dataset.from_dict({"body": TRICKY, "key": ["a", "b", "c", "d"]}).save_to_disk(
        str(folder)
    )
    docs = read_texts(cfg(text_field="body"), folder)
    assert [t for _, t, _ in docs] == TRICKY
    assert [i for i, _, _ in docs] == ["row-0", "row-1", "row-2", "row-3"]
    keyed = read_texts(cfg(format="hf", text_field="body", id_field="key"), folder)
    assert [i for i, _, _ in keyed] == ["a", "b", "c", "d"]
    fails(folder, "row 0", "no field 'text'", "body, key", "set dataset.text_field=...")


def test_real_bbc_csv_reads_every_article_exactly():
    path = bbc_csv()
    docs = read_texts(cfg(text_field="Text", id_field="ArticleId"), path)
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    first: dict[str, str] = {}
    for r in rows:
        first.setdefault(r["Text"], r["ArticleId"])
    assert [(i, t) for i, t, _ in docs] == [(i, t) for t, i in first.items()]
    assert docs[0][0] == "business/001" and docs[0][1].startswith("Ad sales boost Time Warner")


def test_exact_duplicate_texts_dropped_first_kept(tmp_path: Path, caplog):
    path = tmp_path / "pool.txt"
    path.write_text("same\nother\nsame\nsame \nother\n", encoding="utf-8")
    with caplog.at_level(logging.INFO, logger="alrun.data"):
        docs = read_texts(cfg(), path)
    assert [(i, t) for i, t, _ in docs] == [
        ("line-1", "same"),
        ("line-2", "other"),
        ("line-4", "same "),
    ]
    assert "dropped 2 exact duplicate texts" in caplog.text


# --------------------------------------------------------------------------- errors


def test_missing_path_and_folders_that_hold_no_pool(tmp_path: Path):
    fails(tmp_path / "nope.csv", "nope.csv", "Set dataset.path", "ALRUN_DATA_DIR", "data_dir")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "a.csv.bak").write_text("x", encoding="utf-8")
    fails(empty, str(empty), "no .txt files", "not a Hugging Face dataset", ".txt")
    fails(empty, "is a directory", "a.csv.bak", format="csv")
    (empty / "doc.txt").write_text("a document", encoding="utf-8")
    fails(empty, "not a Hugging Face dataset folder", "save_to_disk", "format=auto", format="hf")
    fails(empty, "is a directory", f"dataset.path={empty / 'doc.txt'}", format="lines")
    path = tmp_path / "pool.docx"
    path.write_text("x", encoding="utf-8")
    fails(path, "pool.docx", "'.docx'", "dataset.format=lines|csv|jsonl|prodigy")
    fails(path, "dataset.format='xml'", "txtdir", format="xml")
    fails(path, "is a file", "folder", format="txtdir")


def test_text_field_missing_first_and_later_record(tmp_path: Path):
    path = tmp_path / "pool.jsonl"
    path.write_text('{"body": "a", "id": 1}\n', encoding="utf-8")
    fails(path, f"{path} line 1", "no field 'text'", "fields: body, id", "set dataset.text_field=")
    path.write_text('{"text": "a"}\n\n{"body": "b"}\n', encoding="utf-8")
    fails(path, f"{path} line 3", "no field 'text'", "add 'text' to that record or delete the line")
    fails(path, f"{path} line 1", "no field 'doc'", "dataset.id_field", id_field="doc")
    src = tmp_path / "src.jsonl"
    src.write_text('{"txt": "a"}\n', encoding="utf-8")
    fails(src, f"{src} line 1", "no field 'text'", "Prodigy source line", format="prodigy")


def test_bad_texts_name_the_record(tmp_path: Path):
    path = tmp_path / "pool.jsonl"
    path.write_text('{"text": "ok"}\n{"text": 42}\n', encoding="utf-8")
    fails(path, f"{path} line 2", "holds int 42, not text", "write the text as a string")
    path.write_text('{"text": "ok"}\n{"text": " \\t\\n"}\n', encoding="utf-8")
    fails(path, f"{path} line 2", "is empty", "fill in the text or delete the line")
    path.write_text('{"text": "ok"}\n{"text": null}\n', encoding="utf-8")
    fails(path, f"{path} line 2", "is empty")
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("fine", encoding="utf-8")
    (folder / "b.txt").write_text(" \n", encoding="utf-8")
    fails(folder, str(folder / "b.txt"), "empty", "delete the file")


def test_not_utf8_names_line_and_column(tmp_path: Path):
    path = tmp_path / "pool.txt"
    path.write_bytes(b"fine\nalso fine\ncaf\xe9 latin-1\n")
    fails(path, f"{path} line 3", "not UTF-8", "byte 0xe9 at column 4", "re-save the file as UTF-8")
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "x.txt").write_bytes(b"\xff\xfe")
    fails(folder, str(folder / "x.txt"), "line 1", "not UTF-8")
    csv_path = tmp_path / "pool.csv"
    csv_path.write_bytes(b"text\nok\nbad \x80\n")
    fails(csv_path, f"{csv_path} line 3", "not UTF-8")


def test_empty_pool_and_duplicate_ids(tmp_path: Path):
    path = tmp_path / "pool.txt"
    path.write_text("\n  \n\r\n", encoding="utf-8")
    fails(path, f"dataset.path={path}", "no documents")
    csv_path = tmp_path / "pool.csv"
    csv_path.write_text("text,id\nfirst,7\nfirst,7\nsecond,7\n", encoding="utf-8")
    msg = fails(csv_path, f"{csv_path} line 4", "duplicate id '7'", id_field="id")
    assert f"{csv_path} line 2" in msg and "dataset.id_field=null" in msg  # both places, the fix


# --------------------------------------------------------------------------- sentences


def check_offsets(text: str, sents: list) -> None:
    """Tokens match the text, sentences are ordered, disjoint, trimmed and hold their tokens."""
    prev_end = 0
    for (start, end), toks in sents:
        assert prev_end <= start < end <= len(text)
        assert toks and (toks[0][0], toks[-1][1]) == (start, end)
        assert text[start:end] == text[start:end].strip()
        for a, b in toks:
            assert start <= a < b <= end and text[a:b].strip() == text[a:b]
        assert all(b1 <= a2 for (_, b1), (a2, _) in pairwise(toks))
        prev_end = end


def test_sentences_with_offsets_known_answer():
    text = "Hello  world. It is me.\n\nNew para."
    (sents,) = sentences_with_offsets([text])
    assert sents == [
        ((0, 13), [(0, 5), (7, 12), (12, 13)]),
        ((14, 23), [(14, 16), (17, 19), (20, 22), (22, 23)]),
        ((25, 34), [(25, 28), (29, 33), (33, 34)]),
    ]
    assert [text[a:b] for (a, b), _ in sents] == ["Hello  world.", "It is me.", "New para."]
    tricky = ["  \n\t ", "Café\tnaïve!  Ünïcode “quoted” text.\r\n", "no punctuation at all"]
    out = sentences_with_offsets(tricky)
    assert out[0] == []  # whitespace only: no sentence
    assert [tricky[1][a:b] for (a, b), _ in out[1]] == ["Café\tnaïve!", "Ünïcode “quoted” text."]
    assert out[2] == [((0, 21), [(0, 2), (3, 14), (15, 17), (18, 21)])]
    for text, sents in zip(tricky, out, strict=True):
        check_offsets(text, sents)


def test_sentences_on_real_bbc_articles():
    docs = read_texts(cfg(text_field="Text", id_field="ArticleId"), bbc_csv())
    texts = [t for _, t, _ in docs[::400]]  # a few articles across the categories
    out = sentences_with_offsets(texts)
    assert len(out) == len(texts)
    for text, sents in zip(texts, out, strict=True):
        check_offsets(text, sents)
        assert len(sents) > 5
        # every non-space character of the article is inside some sentence
        covered = sum(len("".join(text[a:b].split())) for (a, b), _ in sents)
        assert covered == len("".join(text.split()))
    assert texts[0].startswith("Ad sales boost Time Warner profit")
    (a, b), _ = out[0][0]
    assert texts[0][a:b].startswith("Ad sales boost Time Warner profit")


@pytest.mark.full
def test_sentences_on_every_bbc_article_in_under_a_minute():
    texts = [t for _, t, _ in read_texts(cfg(text_field="Text"), bbc_csv())]
    t0 = time.perf_counter()
    out = sentences_with_offsets(texts)
    assert time.perf_counter() - t0 < 60
    for text, sents in zip(texts, out, strict=True):
        check_offsets(text, sents)


def test_sentence_pipeline_is_separate_and_a_pipelines_own_splitter_is_used(tmp_path: Path):
    import spacy

    shared = load_nlp("blank:en")
    sentences_with_offsets(["One. Two."])
    assert shared.pipe_names == []  # the cached tokenizer-only pipeline is left alone
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer", config={"punct_chars": ["|"]})
    nlp.to_disk(tmp_path / "pipe")
    text = "One. Two | Three."
    own = sentences_with_offsets([text], tokenizer=str(tmp_path / "pipe"))
    assert [text[a:b] for (a, b), _ in own[0]] == ["One. Two |", "Three."]
    rule = sentences_with_offsets([text], str(tmp_path / "pipe"), sentencizer="sentencizer")
    assert [text[a:b] for (a, b), _ in rule[0]] == ["One.", "Two | Three."]
    with pytest.raises(AlrunError, match="sentencizer='nope'"):
        sentences_with_offsets([text], sentencizer="nope")
    with pytest.raises(AlrunError, match="could not be loaded"):
        sentences_with_offsets([text], tokenizer=str(tmp_path / "no-such-pipeline"))


# --------------------------------------------------------------------------- Prodigy tokens


def test_prodigy_tokens_without_ws_get_it_from_offsets(tmp_path: Path):
    rows = [
        {
            "text": "I really",
            "tokens": [
                {"text": "I", "start": 0, "end": 1},
                {"text": "really", "start": 2, "end": 8},
            ],
        },
        {
            "text": "Hi, you. ",
            "tokens": [
                {"text": "Hi", "start": 0, "end": 2},
                {"text": ",", "start": 2, "end": 3},
                {"text": "you", "start": 4, "end": 7},
                {"text": ".", "start": 7, "end": 8},
            ],
        },
        {
            "text": "a b",
            "tokens": [
                {"text": "a", "start": 0, "end": 1, "ws": False},
                {"text": "b", "start": 2, "end": 3},
            ],
        },
    ]
    path = tmp_path / "ner.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    examples, report = prodigy.read_ner(path)
    assert report.converted == 3
    ws = [[t["ws"] for t in ex.tokens] for ex in examples]
    assert ws == [[True, False], [False, True, False, True], [False, False]]  # given ws kept
    for ex in examples[:2]:
        rebuilt = "".join(t["text"] + (" " if t["ws"] else "") for t in ex.tokens)
        assert rebuilt == ex.text
