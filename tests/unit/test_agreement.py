"""Agreement between annotators, against numbers computed by hand and a published example."""

from __future__ import annotations

import pytest

from alrun.agreement import agree, entity_f1, krippendorff_alpha, mean_kappa, summarize


def ans(session: str, answer: str = "accept", label: str | None = None, spans=None) -> dict:
    return {"session": session, "answer": answer, "label": label, "spans": spans}


def span(s: int, a: int, b: int, label: str) -> dict:
    return {"sentence": s, "token_start": a, "token_end": b, "label": label}


def test_alpha_matches_krippendorffs_worked_example():
    # Krippendorff (2011), "Computing Krippendorff's alpha-reliability", nominal data:
    # 4 observers, 12 units, missing values; alpha = 0.743
    rows = [
        "1 2 3 3 2 1 4 1 2 . . .",
        "1 2 3 3 2 2 4 1 2 5 . 3",
        ". 3 3 3 2 3 4 2 2 5 1 .",
        "1 2 3 3 2 4 4 1 2 5 1 .",
    ]
    units = [
        [None if x == "." else x for x in u] for u in zip(*(r.split() for r in rows), strict=True)
    ]
    assert krippendorff_alpha(units) == pytest.approx(0.7434, abs=1e-4)


def test_alpha_and_kappa_by_hand():
    # (a,a) (a,b) (b,b) (b,b): o_aa=2, o_ab=o_ba=1, o_bb=4; n_a=3, n_b=5, n=8
    # alpha = 1 - 7 * 2 / (64 - 9 - 25) = 1 - 14/30
    units = [["a", "a"], ["a", "b"], ["b", "b"], ["b", "b"]]
    assert krippendorff_alpha(units) == pytest.approx(1 - 14 / 30)
    assert krippendorff_alpha([["a", "a"], ["a", "a"]]) is None  # one category: 0/0
    assert krippendorff_alpha([["a", None], ["b"]]) is None  # no unit with two values
    assert krippendorff_alpha([["a", "b"], ["b", "a"]]) == pytest.approx(1 - 3 * 4 / 8)
    # kappa: po = 3/4, pe = (2*1 + 2*3) / 16 = 1/2 -> 0.5
    items = [[ans("ann", label=x), ans("bob", label=y)] for x, y in units]
    assert mean_kappa(items, "multiclass") == pytest.approx(0.5)


def test_reject_is_a_value_ignore_is_missing():
    items = [
        [ans("ann", label="tech"), ans("bob", "reject")],
        [ans("ann", label="tech"), ans("bob", label="tech")],
        [ans("ann", "ignore"), ans("bob", label="sport")],  # not pairable: left out
        [ans("ann", label="sport"), ans("bob", label="sport")],
    ]
    out = summarize(items, "multiclass", ["tech", "sport"], reviewed=2)
    assert out["items"] == 4 and out["disagreed"] == 2 and out["reviewed"] == 2
    # units (tech, reject) (tech, tech) (sport, sport): o_tt=2, o_tr=o_rt=1, o_ss=2;
    # n_t=3, n_r=1, n_s=2, n=6: alpha = 1 - 5 * 2 / (36 - 9 - 1 - 4)
    assert out["alpha"] == pytest.approx(1 - 10 / 22)
    # per label, tech against the rest: (T,F) (T,T) (F,F): n_T=3, n_F=3, o_TF=o_FT=1
    assert out["per_label"]["tech"] == pytest.approx(1 - 5 * 2 / (36 - 9 - 9))
    assert out["per_label"]["sport"] == pytest.approx(1.0)  # (F,F) (F,F) (T,T)
    assert agree([ans("a", "reject"), ans("b", "reject", label="tech")], "multiclass")
    assert not agree([ans("a", label="tech"), ans("b", label="sport")], "multiclass")


def test_entity_f1_between_annotators():
    a = ans("ann", spans=[span(0, 0, 1, "PER"), span(0, 3, 3, "LOC")])
    b = ans("bob", spans=[span(0, 0, 0, "PER"), span(0, 3, 3, "LOC")])  # a boundary differs
    assert entity_f1([[a, b]]) == pytest.approx(2 * 1 / 4)
    assert entity_f1([[a, b]], "PER") == 0.0 and entity_f1([[a, b]], "LOC") == 1.0
    assert entity_f1([[a, b]], "ORG") is None  # no one marked an ORG
    c = ans("cat", spans=[span(0, 0, 1, "PER"), span(0, 3, 3, "LOC")])
    # three annotators: pairs (a,b) 1 of 2+2, (a,c) 2 of 2+2, (b,c) 1 of 2+2 -> 8 / 12
    assert entity_f1([[a, b, c]]) == pytest.approx(8 / 12)
    assert not agree([a, b], "ner") and agree([a, c], "ner")
    out = summarize([[a, b], [a, c]], "ner", ["PER", "LOC", "ORG"], reviewed=1)
    assert out["items"] == 2 and out["disagreed"] == 1
    assert out["f1"] == pytest.approx((2 + 4) / 8)
    assert out["per_label"] == {"PER": pytest.approx(0.5), "LOC": 1.0, "ORG": None}
    # an item only one session answered is not shared
    assert summarize([[a]], "ner", ["PER"], 0)["items"] == 0
