"""The annotator in a real browser: headless Chromium driven by Playwright.

BBC articles are labelled with the keyboard, CoNLL sentences by dragging the mouse over
tokens; the tests then read the SQLite file and the next round's labelled set. The README's
"Label your own data" is walked through on the BBC CSV as a team gets it: the evaluation set,
three rounds, the exports. Set ALRUN_SCREENSHOTS=DIR to keep the pages' screenshots (the
README's come from here).
"""

from __future__ import annotations

import csv
import json
import os
import re
import sqlite3
from pathlib import Path

import pytest
from web_args import BBC, NER, TEAM_NER, TEAM_TEXTCAT

from alrun.convert import main as convert
from alrun.data import prodigy
from alrun.data.tags import entities

pytestmark = pytest.mark.slow


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
    page.wait_for_selector("#labels button.label")  # the chips come with the first status
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


# ---------------------------------------------------------------- "Label your own data"

# What the person of the walkthrough knows: a run of capitalised words is a name, apart from a
# leading "The", "But" ... and titles ("Mr", "Finance Minister"), which make it a PERSON; its
# type comes from these few words, else it is an ORG.
LEADING = {"A", "An", "And", "As", "At", "But", "By", "For", "He", "His", "How", "I", "If"}
LEADING |= {"In", "It", "Its", "Meanwhile", "On", "She", "So", "That", "The", "Their", "There"}
LEADING |= {"These", "They", "This", "VOTE", "Was", "We", "What", "When", "While"}
TITLES = {"Mr", "Mrs", "Ms", "Dr", "Sir", "Secretary", "Minister", "President", "Chancellor"}
ROLES = TITLES | {"Defence", "Finance", "Foreign", "Home", "Prime"}
FIRST_NAMES = {"Alan", "Andrey", "Den", "Germaine", "Gordon", "Howard", "Jimmy", "John", "Michael"}
FIRST_NAMES |= {"Peter", "Phil", "Terry", "Tim", "Tony", "Trevor"}
NOT_NAMES = {"January", "February", "March", "April", "June", "July", "August", "September"}
NOT_NAMES |= {"October", "November", "December", "Monday", "Tuesday", "Wednesday"}
NOT_NAMES |= {"Thursday", "Friday", "Saturday", "Sunday", "I", "Libyan", "German", "British"}
NOT_NAMES |= {"American", "European", "French", "Chinese", "Russian", "Muslims"}
PLACES = {"US", "UK", "Britain", "London", "Europe", "China", "Japan", "France", "Germany"}
PLACES |= {"India", "America", "Washington", "Paris", "Scotland", "England", "Wales", "Libya"}
PLACES |= {"Ireland", "Australia", "Russia", "Iraq", "Italy", "Spain", "Asia", "Africa"}
PLACES |= {"South", "Llanelli", "Twickenham", "Zambia"}
PRODUCTS = {"Xbox", "PlayStation", "Windows", "Walkman", "Firefox", "Explorer", "Mac"}


def names(tokens: list[dict]) -> list[tuple[int, int, str]]:
    """The names in a sentence as the person marks them: (first token, last token, type)."""
    words = [t["text"] for t in tokens]

    def cap(k: int) -> bool:
        w = words[k]
        return w[:1].isupper() and w.isalpha() and w not in NOT_NAMES | ROLES

    found, k = [], 0
    while k < len(words):
        if not cap(k):
            k += 1
            continue
        first = last = k
        while last + 1 < len(words) and cap(last + 1):
            last += 1
        while first <= last and words[first] in LEADING:
            first += 1
        if first <= last and (first, last) != (0, 0):  # a capital at the start is not a name
            run = set(words[first : last + 1])
            person = first > 0 and words[first - 1] in TITLES
            person |= last > first and (words[first] in FIRST_NAMES or len(words[first]) == 1)
            kind = (
                "PERSON"
                if person
                else "LOCATION"
                if run <= PLACES
                else "PRODUCT"
                if run & PRODUCTS
                else "ORG"
            )
            found.append((first, last, kind))
        k = last + 1
    return found


def marks(page) -> list[dict]:
    """The entities on the page: sentence, character offsets, label."""
    return page.eval_on_selector_all(
        "#text mark.ent",
        "ms => ms.map(m => ({sentence: +m.dataset.s, start: +m.dataset.start, "
        "end: +m.dataset.end, label: m.dataset.label}))",
    )


def drag(page, sentence: int, first: int, last: int) -> None:
    """Press the mouse on token `first`, move over to token `last`, release."""
    a = page.locator(f'#text .tok[data-s="{sentence}"][data-t="{first}"]').bounding_box()
    b = page.locator(f'#text .tok[data-s="{sentence}"][data-t="{last}"]').bounding_box()
    page.mouse.move(a["x"] + 2, a["y"] + a["height"] / 2)
    page.mouse.down()
    page.mouse.move(b["x"] + b["width"] / 2, b["y"] + b["height"] / 2, steps=5)
    page.mouse.move(b["x"] + b["width"] - 2, b["y"] + b["height"] / 2, steps=2)
    page.mouse.up()


def check_text_as_in_file(page, task: dict, texts: dict[str, str]) -> None:
    """Each sentence on the page is its document's own text at its offset, every character
    between the tokens (newlines, runs of spaces) kept and shown (pre-wrap)."""
    sents = task["sentences"]
    doc = texts[task["doc_id"]]
    assert all(doc[x["offset"] : x["offset"] + len(x["text"])] == x["text"] for x in sents)
    rendered, drawn = page.evaluate(
        """() => {  // the sentences without the entities' type tags
            const ds = [...document.querySelectorAll("#text .sentence")].map((d) => {
                const c = d.cloneNode(true);
                c.querySelectorAll(".ent-label").forEach((x) => x.remove());
                return c;
            });
            const box = document.createElement("div");
            box.className = "text ner";  // innerText is layout-aware: pre-wrap needs the page
            document.querySelector("#text").after(box);
            box.append(...ds);
            const out = [ds.map((d) => d.textContent), ds.map((d) => d.innerText)];
            box.remove();
            return out;
        }"""
    )
    assert rendered == drawn == [x["text"] for x in sents]


F2 = r"\d\.\d\d"  # a score as the page writes it


@pytest.mark.full
def test_label_your_own_data_ner_walkthrough(serve, page, news_csv, tmp_path):
    """The README's walkthrough: the BBC CSV as a team gets it (ArticleId,Text,Category; only
    Text is read), four entity types, sentences. The person labels the evaluation set first
    (4 random sentences, no suggestions), then rounds 0-2, dragging the mouse over every name
    and correcting the kept model's pre-annotations from round 1 on; every round reports F1 on
    the evaluation set with its interval, and to-iob exports exactly the spans answered."""
    run = tmp_path / "run"
    s = serve(*TEAM_NER, data=news_csv.dir, run=run)
    s.wait_round(-1)
    page.goto(f"{s.url}/?session=ann")
    page.wait_for_selector("#labels .label")  # the chips come with the first status
    types = page.eval_on_selector_all("#labels .label", "bs => bs.map(b => b.dataset.label)")
    assert types == ["PERSON", "ORG", "PRODUCT", "LOCATION"]  # keys 1-4

    given: dict[tuple[int, int], list[dict]] = {}  # (round, pool index) -> the spans answered
    tasks: dict[tuple[int, int], dict] = {}
    suggested = dict.fromkeys([-1, 0, 1, 2], 0)  # entities pre-filled, by round
    dragged = 0
    task = next_task(page, "")
    while True:
        rnd, index = map(int, task.split(":"))
        t = tasks[rnd, index] = shown(run, rnd)[index]
        toks = t["sentences"][0]["tokens"]
        assert len(t["sentences"]) == 1  # loop.unit=sentence
        check_text_as_in_file(page, t, news_csv.texts)
        pre = [{x: sp[x] for x in ("sentence", "start", "end", "label")} for sp in t["spans"]]
        assert marks(page) == pre  # the page shows the model's entities, nothing else
        suggested[rnd] += len(pre)
        done = sum(r == rnd for r, _ in given)
        if rnd == -1:
            assert page.text_content("#phase-title") == f"evaluation set: {done} / 4"
            assert "never trained on" in page.text_content("#phase-why")
            assert page.text_content("#round") == "eval"
            assert page.text_content("#labeled") == "0 / 10"  # held out: not a label
            assert page.text_content("#task-info").startswith("evaluation item ")
        else:
            assert page.text_content("#round") == str(rnd)
            assert page.text_content("#phase-title") == f"round {rnd}: {done} / {3 + (rnd == 0)}"
            before = [0, 4, 7][rnd]
            assert page.text_content("#labeled") == f"{before + done} / 10"
            held = page.text_content("#phase-why")
            assert held == "evaluation set: 4 held-out items (never trained on)"
        if rnd >= 1:  # the kept model's F1 on the evaluation set, with its interval
            score = page.text_content("#score")
            assert re.match(rf"F1 {F2} \[{F2}, {F2}\] on 4 evaluation items", score), score
        if rnd >= 1 and pre and suggested[1] + suggested[2] == len(pre):
            shot(page, "raw-ner", tmp_path)  # the first task with pre-annotations

        want = [
            {"sentence": 0, "start": toks[a]["start"], "end": toks[b]["end"], "label": y}
            for a, b, y in names(toks)
        ]
        for m in pre:
            if m not in want:  # a wrong suggestion: click it away
                page.click(f'#text mark.ent[data-start="{m["start"]}"]')
        for n, w in enumerate(x for x in want if x not in pre):
            chip = f'#labels [data-label="{w["label"]}"]'
            if n % 2:  # the type's chip, or its key
                page.click(chip)
            else:
                page.keyboard.press(page.get_attribute(chip, "data-key"))
            assert "active" in page.get_attribute(chip, "class")
            first = next(j for j, x in enumerate(toks) if x["start"] == w["start"])
            last = next(j for j, x in enumerate(toks) if x["end"] == w["end"])
            if first == last:  # one word: a double-click takes it
                page.dblclick(f'#text .tok[data-s="0"][data-t="{first}"]')
            else:
                drag(page, 0, first, last)
                dragged += 1
        assert marks(page) == want
        if rnd == -1 and want and not any(given.values()):  # the first name marked
            shot(page, "eval", tmp_path)
        page.keyboard.press("a")
        given[rnd, index] = want
        if len(given) == 4 + 10:
            break
        task = next_task(page, task)
    assert s.wait() == 0, s.output()
    assert [sum(r == k for r, _ in given) for k in (-1, 0, 1, 2)] == [4, 4, 3, 3]
    # no suggestion on the evaluation set (nor in round 0: no model yet); from round 1 on
    # (seed 0: 25 entities in round 1; a CRF from fewer names may find none before round 2)
    assert suggested[-1] == suggested[0] == 0 and suggested[1] + suggested[2] > 0
    assert dragged >= 10 and sum(map(len, given.values())) >= 20
    # seed 0: the evaluation set holds a title and its first sentence, a blank line between
    assert any("\n" in t["sentences"][0]["text"] for t in tasks.values())

    # the database holds the spans on the page, offsets computed by the server from tokens
    stored = {
        (r, i): [{k: sp[k] for k in ("sentence", "start", "end", "label")} for sp in json.loads(x)]
        for r, i, x in db(run, "select round, pool_index, spans from answers")
    }
    assert stored == given
    rows = jsonl(run / "rounds.jsonl")
    assert [r["labeled"] for r in rows] == [4, 7, 10]
    for r in rows:  # the learning curve: F1 on the evaluation set with its interval
        ev = r["eval"]
        assert ev["n"] == 4 and ev["level"] == 0.95
        assert 0 <= ev["f1_low"] <= ev["f1"] <= ev["f1_high"] <= 1
        assert r["heldout"] == "evaluation sample (4 items)" and r["test"]["f1"] == ev["f1"]
    held = {r["index"] for r in jsonl(run / "eval_sample.jsonl")}
    assert held == {i for r, i in given if r == -1}
    labeled = jsonl(run / "labeled.jsonl")
    assert sorted(r["index"] for r in labeled) == sorted(i for r, i in given if r >= 0)
    assert not held & {r["index"] for r in labeled}

    # alrun-convert to-iob RUN_DIR: every sentence labelled in the rounds, every span answered
    out = tmp_path / "train.jsonl"
    with pytest.raises(SystemExit) as exit_:
        convert(["to-iob", str(run), str(out)])
    assert exit_.value.code == 0
    lines = jsonl(out)
    assert sorted(x["tokens"] for x in lines) == sorted(
        [tok["text"] for tok in tasks[key]["sentences"][0]["tokens"]]
        for key in given
        if key[0] >= 0
    )
    exported = [(x["tokens"][a:b], y) for x in lines for a, b, y in entities(x["tags"])]
    answered = [
        (
            [
                tok["text"]
                for tok in tasks[key]["sentences"][0]["tokens"]
                if sp["start"] <= tok["start"] and tok["end"] <= sp["end"]
            ],
            sp["label"],
        )
        for key, spans in given.items()
        if key[0] >= 0
        for sp in spans
    ]
    assert sorted(exported) == sorted(answered) and len(exported) >= 15


def test_label_your_own_data_textcat_walkthrough(serve, page, news_csv, tmp_path):
    """The same CSV for text classification: the five BBC categories as the classes, labelled
    with the keyboard (a number key, then a), the evaluation set first; every round reports
    accuracy on it with its interval, and to-textcat exports every labelled text."""
    run = tmp_path / "run"
    s = serve(*TEAM_TEXTCAT, data=news_csv.dir, run=run)
    s.wait_round(-1)
    page.goto(f"{s.url}/?session=ann")
    page.wait_for_selector("#labels button.label")  # the chips come with the first status
    labels = page.eval_on_selector_all("#labels button.label", "bs => bs.map(b => b.dataset.label)")
    assert labels == ["business", "entertainment", "politics", "sport", "tech"]

    given: dict[tuple[int, int], str] = {}  # (round, pool index) -> the label answered
    tasks: dict[tuple[int, int], dict] = {}
    task = next_task(page, "")
    while True:
        rnd, index = map(int, task.split(":"))
        t = tasks[rnd, index] = shown(run, rnd)[index]
        assert page.inner_text("#text") == news_csv.texts[t["item_id"]]  # as in the file
        done = sum(r == rnd for r, _ in given)
        if rnd == -1:
            assert page.text_content("#phase-title") == f"evaluation set: {done} / 4"
            assert "never trained on" in page.text_content("#phase-why")
            assert page.text_content("#round") == "eval"
            assert page.text_content("#labeled") == "0 / 9"
            assert page.text_content("#task-info").startswith("evaluation item ")
        else:
            assert page.text_content("#phase-title") == f"round {rnd}: {done} / 3"
            assert page.text_content("#labeled") == f"{3 * rnd + done} / 9"
        if rnd < 1:  # no guess on the evaluation set, nor before the first model
            assert t["suggestion"] is None and page.is_hidden("#suggestion")
        else:  # the kept model's guess, and its accuracy on the evaluation set
            guess = t["suggestion"]["label"]
            assert page.get_attribute(f'#labels [data-label="{guess}"]', "class").count("suggested")
            assert page.text_content("#suggestion").startswith(f"model: {guess} ")
            score = page.text_content("#score")
            assert re.match(rf"accuracy {F2} \[{F2}, {F2}\] on 4 evaluation items", score), score
            if rnd == 2 and done == 0:  # 6 labels: the interval is wide on 4 items
                shot(page, "raw-multiclass", tmp_path)
        gold = news_csv.gold[t["item_id"]]  # what a careful reader answers
        page.keyboard.press(page.get_attribute(f'#labels [data-label="{gold}"]', "data-key"))
        assert "selected" in page.get_attribute(f'#labels [data-label="{gold}"]', "class")
        page.keyboard.press("a")
        given[rnd, index] = gold
        if len(given) == 4 + 9:
            break
        task = next_task(page, task)
    assert s.wait() == 0, s.output()
    assert [sum(r == k for r, _ in given) for k in (-1, 0, 1, 2)] == [4, 3, 3, 3]
    assert any("\n\n" in t["text"] for t in tasks.values())  # paragraphs, as written
    assert db(run, "select count(*) from answers where round = -1") == [(4,)]

    rows = jsonl(run / "rounds.jsonl")
    assert [r["labeled"] for r in rows] == [3, 6, 9]
    for r in rows:
        ev = r["eval"]
        assert ev["n"] == 4 and ev["level"] == 0.95
        assert 0 <= ev["accuracy_low"] <= ev["accuracy"] <= ev["accuracy_high"] <= 1
        assert r["heldout"] == "evaluation sample (4 items)"
    held = {r["index"] for r in jsonl(run / "eval_sample.jsonl")}
    assert held == {i for r, i in given if r == -1}
    labeled = {r["index"]: r["label"] for r in jsonl(run / "labeled.jsonl")}
    assert labeled == {i: y for (r, i), y in given.items() if r >= 0}

    # alrun-convert to-textcat RUN_DIR out.csv: every text labelled in the rounds, its label
    out = tmp_path / "train.csv"
    with pytest.raises(SystemExit) as exit_:
        convert(["to-textcat", str(run), str(out)])
    assert exit_.value.code == 0
    with out.open(encoding="utf-8", newline="") as f:
        got = sorted((r["text"], r["target"]) for r in csv.DictReader(f))
    assert got == sorted((tasks[k]["text"], y) for k, y in given.items() if k[0] >= 0)
    assert not {tasks[k]["text"] for k in given if k[0] == -1} & {x for x, _ in got}


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

    # each task: the pre-filled suggestions are on the page; the person removes the first one
    # by clicking it, then drags over two free tokens with LOC active (its key) to add a span
    expected: dict[int, list] = {}
    while not task.startswith("2:"):
        index = int(task.split(":")[1])
        want = [
            {k: sp[k] for k in ("sentence", "start", "end", "label")} for sp in prefilled[index]
        ]
        assert marks(page) == want
        if want:
            if not expected:
                shot(page, "ner", tmp_path)
            page.click("#text mark.ent >> nth=0")
            want = want[1:]
            assert marks(page) == want
        toks = batch[index]["sentences"][0]["tokens"]
        covered = {t for sp in want for t in range(sp["start"], sp["end"])}
        free = next(
            k
            for k in range(len(toks) - 1)
            if not covered & set(range(toks[k]["start"], toks[k + 1]["end"]))
        )
        page.keyboard.press(loc_key)
        assert "active" in page.get_attribute('#labels [data-label="LOC"]', "class")
        drag(page, 0, free, free + 1)
        new = {"sentence": 0, "start": toks[free]["start"], "end": toks[free + 1]["end"]}
        want = sorted([*want, {**new, "label": "LOC"}], key=lambda sp: sp["start"])
        assert marks(page) == want
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
