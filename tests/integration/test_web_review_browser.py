"""Two annotators and a reviewer in real browsers (headless Chromium, Playwright) against a
real `alrun oracle=web oracle.overlap=2 oracle.reviewers=[lead]` run.

Each item goes to both annotators; where they disagree (a BBC article's topic, a CoNLL
sentence's entity boundary) the reviewer's page shows both versions, the reviewer picks one,
and the loop trains on it; the agreement lands in rounds.jsonl, the summary and the export.
"""

from __future__ import annotations

import json

import pytest
from test_web_browser import db, drag, jsonl, marks, next_task, shot, shown
from web_args import BBC, NER

from alrun.agreement import krippendorff_alpha
from alrun.convert import main as convert

pytestmark = pytest.mark.slow
TEAM = ("oracle.overlap=2", "oracle.reviewers=[lead]")


@pytest.fixture
def open_page(browser):
    """Pages of their own (one browser context each, like three people's browsers)."""
    contexts, errors = [], []

    def make(url: str):
        context = browser.new_context(viewport={"width": 1280, "height": 800}, bypass_csp=True)
        contexts.append(context)
        pg = context.new_page()
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.goto(url)
        return pg

    yield make
    for c in contexts:
        c.close()
    assert errors == [], errors  # no script error on any page


def export(*args: str) -> None:
    with pytest.raises(SystemExit) as exit_:
        convert(["to-prodigy", *args, "--from", "db"])
    assert exit_.value.code == 0


def versions_on(page) -> list[tuple[str, str]]:
    """The review panel's versions: (sessions, what they said)."""
    page.wait_for_selector("#versions:not([hidden]) button.version")
    got = page.eval_on_selector_all(
        "#version-list button.version",
        "bs => bs.map(b => [b.dataset.sessions, b.textContent])",
    )
    return [tuple(v) for v in got]


def test_bbc_disagreement_reviewed_in_the_browser(serve, open_page, bbc_slice, tmp_path):
    run = tmp_path / "run"
    s = serve(
        *BBC,
        *TEAM,
        "loop.initial_size=3",
        "loop.round_size=3",
        "loop.budget=6",
        data=bbc_slice,
        run=run,
    )
    s.wait_round(0)
    alice, bob = (open_page(f"{s.url}/?session={who}") for who in ("alice", "bob"))
    lead = open_page(f"{s.url}/?session=lead")
    lead.wait_for_selector("#role:not([hidden])")  # the page says it is a reviewer's
    lead.wait_for_function("document.querySelector('#message').textContent.includes('review')")
    assert lead.evaluate("document.body.dataset.task") == ""  # nothing to review yet
    batch = shown(run, 0)
    gold = {i: t["item_id"].split("/")[0] for i, t in batch.items()}

    def label_with_keys(page, pick) -> list[int]:
        """Answer each task the page shows with `pick(index)`: a label key, then `a`."""
        done, task = [], ""
        for _ in range(3):
            task = next_task(page, task)
            index = int(task.split(":")[1])
            key = page.get_attribute(f'#labels [data-label="{pick(index)}"]', "data-key")
            page.keyboard.press(key)
            page.keyboard.press("a")
            done.append(index)
        return done

    first = next(iter(batch))  # the strategy's first pick: both annotators get it first
    wrong = next(y for y in ("business", "tech") if y != gold[first])
    assert label_with_keys(alice, gold.get) == list(batch)
    alice.wait_for_function("document.body.dataset.task === ''")  # no third annotator's work
    assert "3 answered by you" in alice.text_content("#progress-text")
    assert label_with_keys(bob, lambda i: wrong if i == first else gold[i]) == list(batch)

    # the reviewer's page loads the article the two disagreed on, with both versions
    lead.wait_for_function("d => document.body.dataset.task === d", arg=f"0:{first}")
    assert versions_on(lead) == [
        ("alice", f"aliceaccept: {gold[first]}"),
        ("bob", f"bobaccept: {wrong}"),
    ]
    assert "review" in lead.text_content("#task-info")
    lead.click('#version-list button[data-sessions="alice"]')
    assert "selected" in lead.get_attribute(f'#labels [data-label="{gold[first]}"]', "class")
    shot(lead, "review", tmp_path)
    lead.keyboard.press("a")

    # round 0 trained on the reviewed label; the agreement is in its row and on the pages
    s.wait_round(1)
    (row,) = jsonl(run / "rounds.jsonl")
    units = [[gold[i], wrong if i == first else gold[i]] for i in batch]
    agreement = row["agreement"]
    assert agreement["items"] == 3 and agreement["disagreed"] == 1 and agreement["reviewed"] == 1
    assert agreement["alpha"] == pytest.approx(krippendorff_alpha(units))
    assert agreement["alpha"] < 1 and set(agreement["per_label"]) == set(gold.values()) | {
        "entertainment",
        "politics",
        "sport",
        "business",
        "tech",
    }
    assert {r["index"]: r["label"] for r in jsonl(run / "labeled.jsonl")} == gold
    assert db(run, "select pool_index, session, label from decisions") == [
        (first, "lead", gold[first])
    ]
    assert len(db(run, "select * from answers where round = 0")) == 6  # every answer kept
    alice.wait_for_function("document.querySelector('#score').textContent.includes('annotators')")
    assert f"annotators \u03b1 {agreement['alpha']:.3f}" in alice.text_content("#score")

    # the export: every answer with its annotator, then each item's adjudicated answer
    out = tmp_path / "all.jsonl"
    export(str(run), str(out))
    tasks = [json.loads(x) for x in out.read_text().splitlines()]
    assert [t["_annotator_id"] for t in tasks[:6]].count("alice") == 3
    ends = {t["meta"]["index"]: t for t in tasks[6:]}
    assert len(tasks) == 9 and set(ends) == set(batch)
    assert ends[first]["_annotator_id"] == "lead" and ends[first]["accept"] == [gold[first]]
    assert ends[first]["meta"]["adjudicated"] == "review"
    assert [v["sessions"] for v in ends[first]["versions"]] == [["alice"], ["bob"]]
    others = [ends[i] for i in batch if i != first]
    assert {t["_annotator_id"] for t in others} == {"agreed:alice+bob"}
    final = tmp_path / "final.jsonl"
    export(str(run), str(final), "--final")
    assert [json.loads(x) for x in final.read_text().splitlines()] == tasks[6:]


def test_ner_boundary_disagreement_reviewed_in_the_browser(serve, open_page, conll_files, tmp_path):
    run = tmp_path / "run"
    s = serve(*NER, *TEAM, "loop.initial_size=2", "loop.budget=2", data=conll_files, run=run)
    s.wait_round(0)
    batch = shown(run, 0)
    first, second = batch
    ann, bob = (open_page(f"{s.url}/?session={who}") for who in ("ann", "bob"))

    def mark(page, key_label: str, a: int, b: int) -> None:
        page.keyboard.press(page.get_attribute(f'#labels [data-label="{key_label}"]', "data-key"))
        drag(page, 0, a, b)

    # the first sentence: ann marks tokens 0-1 as a PER, bob only token 0 (a boundary
    # disagreement); the second: both mark token 0 as a LOC
    for page, last in ((ann, 1), (bob, 0)):
        assert next_task(page, "") == f"0:{first}"
        mark(page, "PER", 0, last)
        page.keyboard.press("a")
        assert next_task(page, f"0:{first}") == f"0:{second}"
        mark(page, "LOC", 0, 0)
        page.keyboard.press("a")
    lead = open_page(f"{s.url}/?session=lead")
    lead.wait_for_function("d => document.body.dataset.task === d", arg=f"0:{first}")
    toks = batch[first]["sentences"][0]["tokens"]
    two = f"{toks[0]['text']} {toks[1]['text']}"
    assert versions_on(lead) == [
        ("ann", f"annaccept: {two} PER"),
        ("bob", f"bobaccept: {toks[0]['text']} PER"),
    ]
    assert marks(lead) == []  # a review starts from nothing: the reviewer picks
    lead.click('#version-list button[data-sessions="ann"]')
    assert marks(lead) == [
        {"sentence": 0, "start": toks[0]["start"], "end": toks[1]["end"], "label": "PER"}
    ]
    shot(lead, "review-ner", tmp_path)
    lead.keyboard.press("a")

    assert s.wait(120) == 0  # the budget is spent: the run ends after round 0
    labeled = {r["index"]: r["tags"][0] for r in jsonl(run / "labeled.jsonl")}
    n1, n2 = (len(batch[i]["sentences"][0]["tokens"]) for i in (first, second))
    assert labeled[first] == ["B-PER", "I-PER"] + ["O"] * (n1 - 2)  # the reviewed version
    assert labeled[second] == ["B-LOC"] + ["O"] * (n2 - 1)
    # entity F1 between the annotators: sentence 1 shares no entity (1 + 1), sentence 2 its
    # one (1 + 1): 2 * 1 / 4
    (row,) = jsonl(run / "rounds.jsonl")
    assert row["agreement"] == {
        "items": 2,
        "disagreed": 1,
        "reviewed": 1,
        "f1": 0.5,
        "per_label": {"LOC": 1.0, "MISC": None, "ORG": None, "PER": 0.0},
    }
    summary = json.loads((run / "summary.json").read_text())
    assert summary["agreement/f1"] == 0.5 and summary["agreement/reviewed"] == 1
    assert summary["agreement/per_label/PER"] == 0.0
    assert "annotators: entity F1 0.500 on 2 shared items (1 disagreed, 1 reviewed)" in s.output()
