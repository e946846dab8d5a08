"""The annotator in a real browser: headless Chromium driven by Playwright.

BBC articles are labelled with the keyboard, CoNLL sentences by dragging the mouse over
tokens; the tests then read the SQLite file and the next round's labelled set. Set
ALRUN_SCREENSHOTS=DIR to keep the pages' screenshots (the README's come from here).
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from pathlib import Path

import pytest
from web_args import BBC, NER, RAW_NER

from alrun.data import prodigy

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        msg = "Debian's chromium is not installed (apt-get install chromium chromium-driver)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield b
        b.close()


@pytest.fixture
def page(browser):
    # bypass_csp only lets Playwright's own polling run; the page must be safe without the CSP
    context = browser.new_context(viewport={"width": 1280, "height": 800}, bypass_csp=True)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    context.close()
    assert errors == [], errors  # no script error on any page


def shot(page, name: str, tmp_path: Path) -> None:
    page.mouse.move(1270, 790)  # no hover effect in the picture
    out = Path(os.environ.get("ALRUN_SCREENSHOTS", tmp_path))
    out.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(out / f"annotator-{name}.png"))


def db(run: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(run / "annotations.db") as con:
        return con.execute(sql).fetchall()


def shown(run: Path, rnd: int) -> dict[int, dict]:
    return {
        i: json.loads(t)
        for i, t in db(run, f"select pool_index, task from batches where round={rnd}")
    }


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def next_task(page, previous: str) -> str:
    """Wait for the page to show a task other than `previous`; its id."""
    page.wait_for_function(
        "prev => document.body.dataset.task && document.body.dataset.task !== prev", arg=previous
    )
    return page.evaluate("document.body.dataset.task")


def test_bbc_batches_labelled_with_the_keyboard(serve, page, bbc_slice, tmp_path):
    run = tmp_path / "run"
    s = serve(
        *BBC, "loop.initial_size=3", "loop.round_size=3", "loop.budget=6", data=bbc_slice, run=run
    )
    s.wait_round(0)
    page.goto(f"{s.url}/?session=alice")
    labels = page.eval_on_selector_all("#labels button.label", "bs => bs.map(b => b.dataset.label)")
    assert labels == ["business", "entertainment", "politics", "sport", "tech"]
    assert page.text_content("#session") == "alice"

    def gold(task_id: str) -> str:  # BBC ids are "category/number": answer like a careful person
        rnd, index = map(int, task_id.split(":"))
        return shown(run, rnd)[index]["item_id"].split("/")[0]

    def press_label(label: str) -> None:
        page.keyboard.press(page.get_attribute(f'#labels [data-label="{label}"]', "data-key"))

    answered: dict[int, str] = {}
    task = next_task(page, "")
    assert page.text_content("#round") == "0" and "no model" in page.text_content("#score")
    article = shown(run, 0)[int(task.split(":")[1])]["text"]
    assert "\n\n" in article and page.inner_text("#text") == article  # paragraphs, as written
    for k in range(3):
        press_label(gold(task))
        assert page.get_attribute(f'#labels [data-label="{gold(task)}"]', "class").count("selected")
        page.keyboard.press("a")
        answered[int(task.split(":")[1])] = gold(task)
        if k < 2:
            task = next_task(page, task)
            assert page.text_content("#progress-text").startswith(f"{k + 1} / 3")

    # the batch is done: round 0 trains on exactly these answers, the page shows round 1
    task = next_task(page, task)
    assert task.startswith("1:")
    assert [r["labeled"] for r in jsonl(run / "rounds.jsonl")] == [3]
    assert {r["index"]: r["label"] for r in jsonl(run / "labeled.jsonl")} == answered
    assert db(run, "select round, pool_index, session, answer, label from answers") == [
        (0, i, "alice", "accept", y) for i, y in answered.items()
    ]
    page.wait_for_selector("#labels .suggested")  # the kept model's guess is shown
    assert "test accuracy" in page.text_content("#score")

    # round 1: a wrong key, undo (u) brings the task back with it, then the right label;
    # one article rejected (x); one accepted
    wrong = next(y for y in labels if y != gold(task))
    press_label(wrong)
    page.keyboard.press("a")
    after = next_task(page, task)
    page.keyboard.press("u")
    assert next_task(page, after) == task
    assert "selected" in page.get_attribute(f'#labels [data-label="{wrong}"]', "class")
    press_label(gold(task))
    page.keyboard.press("a")
    answered[int(task.split(":")[1])] = gold(task)
    rejected = next_task(page, task)
    shot(page, "multiclass", tmp_path)  # round 1: the model's guess and score are shown
    page.keyboard.press("x")
    task = next_task(page, rejected)
    press_label(gold(task))
    page.keyboard.press("a")
    answered[int(task.split(":")[1])] = gold(task)
    # 5 labelled, budget 6: one more article comes in round 2
    task = next_task(page, task)
    assert task.startswith("2:")
    press_label(gold(task))
    page.keyboard.press("a")
    answered[int(task.split(":")[1])] = gold(task)
    assert s.wait() == 0, s.output()

    assert {r["index"]: r["label"] for r in jsonl(run / "labeled.jsonl")} == answered
    assert int(rejected.split(":")[1]) not in answered
    assert [r["labeled"] for r in jsonl(run / "rounds.jsonl")] == [3, 5, 6]
    assert db(run, "select count(*) from answers where undone is not null") == [(1,)]
    assert db(run, "select answer from answers where undone is null and round = 1") == [
        ("accept",),
        ("reject",),
        ("accept",),
    ]


def test_script_in_an_article_shows_as_text(serve, page, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    evil = "<script>window.__pwned = 1</script><img src=x onerror='window.__pwned = 2'> & <b>"
    rows = [{"text": f"plain review number {k}", "label": ["neg", "pos"][k % 2]} for k in range(9)]
    rows.append({"text": f"Great {evil} film", "label": "pos"})
    (data / "r.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    test = [{"text": f"test review {k}", "label": ["neg", "pos"][k % 2]} for k in range(4)]
    (data / "t.jsonl").write_text("".join(json.dumps(r) + "\n" for r in test))
    args = ("dataset=custom_file", "dataset.path=r.jsonl", "dataset.test_path=t.jsonl")
    s = serve(
        *BBC,
        *args,
        "dataset.labels=[neg,pos]",
        "loop.initial_size=10",
        "loop.budget=10",
        data=data,
        run=tmp_path / "run",
    )
    s.wait_round(0)
    page.goto(f"{s.url}/?session=eve")
    task = next_task(page, "")
    for _ in range(10):
        if "<script>" in page.text_content("#text"):
            break
        page.keyboard.press("1")
        page.keyboard.press("a")
        task = next_task(page, task)
    assert page.text_content("#text") == f"Great {evil} film"  # every character, as text
    assert page.eval_on_selector("#text", "el => el.children.length") == 0  # no element made
    assert page.evaluate("window.__pwned") is None


def test_raw_text_eval_set_first_and_the_text_as_in_the_file(serve, page, news_csv, tmp_path):
    """A raw pool's documents: the evaluation set comes first, marked apart from the rounds,
    without suggestions; each sentence shows its own text (newlines, double spaces)."""
    run = tmp_path / "run"
    args = [a for a in RAW_NER if a != "loop.unit=sentence"]
    s = serve(*args, "loop.unit=document", data=news_csv.dir, run=run)
    s.wait_round(-1)
    page.goto(f"{s.url}/?session=ann")
    task = next_task(page, "")
    assert task.startswith("-1:")
    assert page.text_content("#phase-title") == "evaluation set: 0 / 4"
    assert "never trained on" in page.text_content("#phase-why")
    assert page.text_content("#round") == "eval" and page.text_content("#labeled") == "0 / 6"
    assert page.text_content("#task-info").startswith("evaluation item ")
    assert page.locator("#text mark.ent").count() == 0  # no suggestion biases the sample
    sentences = shown(run, -1)[int(task.split(":")[1])]["sentences"]
    texts = [sent["text"] for sent in sentences]
    assert any("\n" in t for t in texts)
    rendered = page.eval_on_selector_all("#text .sentence", "ds => ds.map(d => d.textContent)")
    assert rendered == texts  # every character between the tokens, as in the file
    drawn = page.eval_on_selector_all("#text .sentence", "ds => ds.map(d => d.innerText)")
    assert drawn == texts  # pre-wrap: line breaks and runs of spaces are shown
    shot(page, "eval", tmp_path)
    page.keyboard.press("a")  # accept: no entity in it
    task = next_task(page, task)
    assert page.text_content("#phase-title") == "evaluation set: 1 / 4"
    assert page.text_content("#labeled") == "0 / 6"  # held out: not a label
    assert db(run, "select round, answer, spans from answers") == [(-1, "accept", "[]")]

    # the rest of the set and round 0 (documents with one entity each); then round 1 shows
    # the evaluation sample's score with its interval, and the rounds' own phase line
    while not task.startswith("1:"):
        page.keyboard.press(page.get_attribute('#labels [data-label="ORG"]', "data-key"))
        page.dblclick('#text .tok[data-s="0"][data-t="0"]')
        page.keyboard.press("a")
        task = next_task(page, task)
    assert page.text_content("#round") == "1"
    assert page.text_content("#phase-title") == "round 1: 0 / 2"
    assert page.text_content("#phase-why").startswith("evaluation set: 4 held-out items")
    score = page.text_content("#score")
    assert re.match(r"F1 \d\.\d\d \[\d\.\d\d, \d\.\d\d\] on 4 evaluation items", score), score
    assert db(run, "select count(*) from answers where round = -1") == [(4,)]
    later = [json.loads(x) for (x,) in db(run, "select spans from answers where id > 1")]
    assert len(later) == 5 and all(len(x) == 1 and x[0]["label"] == "ORG" for x in later)


# NER answers (spans on token edges, suggestions) in the default run: test_web_store.py and
# test_web.py::test_ner_tasks_are_prefilled_with_the_kept_models_entities
@pytest.mark.full
def test_conll_sentences_labelled_by_mouse_spans(serve, page, conll_files, tmp_path):
    # 40 sentences seeded from a Prodigy file train the CRF, so round 1 comes pre-filled
    seeds = [json.loads(x) for x in (conll_files / "train.jsonl").read_text().splitlines()[:40]]
    (tmp_path / "seeds.jsonl").write_text(
        "".join(json.dumps(prodigy.ner_task(r["tokens"], r["tags"])) + "\n" for r in seeds)
    )
    run = tmp_path / "run"
    s = serve(
        *NER,
        f"loop.initial_from={tmp_path / 'seeds.jsonl'}",
        "strategy=random",  # typical sentences (MNLP's first picks are 2-3 token headings)
        "loop.round_size=3",
        "loop.budget=46",
        data=conll_files,
        run=run,
    )
    s.wait_round(1)
    page.goto(f"{s.url}/?session=ann")
    task = next_task(page, "")
    types = page.eval_on_selector_all("#labels .label", "bs => bs.map(b => b.dataset.label)")
    assert sorted(types) == ["LOC", "MISC", "ORG", "PER"]  # the entity types, in data order
    loc_key = page.get_attribute('#labels [data-label="LOC"]', "data-key")
    batch = shown(run, 1)
    prefilled = {i: t["spans"] for i, t in batch.items()}
    assert sum(map(len, prefilled.values())) > 0  # the model found entities to correct

    def marks() -> list[dict]:
        return page.eval_on_selector_all(
            "#text mark.ent",
            "ms => ms.map(m => ({sentence: +m.dataset.s, start: +m.dataset.start, "
            "end: +m.dataset.end, label: m.dataset.label}))",
        )

    def drag(sentence: int, first: int, last: int) -> None:
        a = page.locator(f'#text .tok[data-s="{sentence}"][data-t="{first}"]').bounding_box()
        b = page.locator(f'#text .tok[data-s="{sentence}"][data-t="{last}"]').bounding_box()
        page.mouse.move(a["x"] + 2, a["y"] + a["height"] / 2)
        page.mouse.down()
        page.mouse.move(b["x"] + b["width"] / 2, b["y"] + b["height"] / 2, steps=5)
        page.mouse.move(b["x"] + b["width"] - 2, b["y"] + b["height"] / 2, steps=2)
        page.mouse.up()

    # each task: the pre-filled suggestions are on the page; the person removes the first one
    # by clicking it, then drags over two free tokens with LOC active (its key) to add a span
    expected: dict[int, list] = {}
    while not task.startswith("2:"):
        index = int(task.split(":")[1])
        want = [
            {k: sp[k] for k in ("sentence", "start", "end", "label")} for sp in prefilled[index]
        ]
        assert marks() == want
        if want:
            if not expected:
                shot(page, "ner", tmp_path)
            page.click("#text mark.ent >> nth=0")
            want = want[1:]
            assert marks() == want
        toks = batch[index]["sentences"][0]["tokens"]
        covered = {t for sp in want for t in range(sp["start"], sp["end"])}
        free = next(
            k
            for k in range(len(toks) - 1)
            if not covered & set(range(toks[k]["start"], toks[k + 1]["end"]))
        )
        page.keyboard.press(loc_key)
        assert "active" in page.get_attribute('#labels [data-label="LOC"]', "class")
        drag(0, free, free + 1)
        new = {"sentence": 0, "start": toks[free]["start"], "end": toks[free + 1]["end"]}
        want = sorted([*want, {**new, "label": "LOC"}], key=lambda sp: sp["start"])
        assert marks() == want
        page.keyboard.press("a")
        expected[index] = want
        task = next_task(page, task)
    assert len(expected) == 3

    # the answers in the database are the spans on the page; the next round learned them
    stored = {
        i: [{k: sp[k] for k in ("sentence", "start", "end", "label")} for sp in json.loads(sp_)]
        for i, sp_ in db(run, "select pool_index, spans from answers where round = 1")
    }
    assert stored == expected
    s.wait_round(2)
    labeled = {r["index"]: r for r in jsonl(run / "labeled.jsonl")}
    assert len(labeled) == 43  # 40 seeds + 3 answers
    for index, spans in expected.items():
        toks = batch[index]["sentences"][0]["tokens"]
        tags = prodigy.spans_to_tags(
            len(toks),
            [
                (
                    next(t["id"] for t in toks if t["start"] == sp["start"]),
                    next(t["id"] for t in toks if t["end"] == sp["end"]),
                    sp["label"],
                )
                for sp in spans
            ],
        )
        assert labeled[index]["tags"] == [tags] and labeled[index]["round"] == 1
