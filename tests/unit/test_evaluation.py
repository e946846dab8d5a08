"""The evaluation sample: bootstrap statistics that match the task metrics, intervals that are
reproducible and cover, and the learning curve that draws them as a band."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pytest

from alrun.evaluation import (
    bootstrap_intervals,
    eval_report,
    item_counts,
    metrics_of_counts,
    resample_weights,
)
from alrun.tasks import TASKS
from alrun.tracking import learning_curve_figure, plot_learning_curve

matplotlib.use("Agg")

TAGS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]
CLASSES = ["business", "sport", "tech", "politics", "unused"]  # `unused`: never gold nor pred


def multiclass_sample(rng: np.random.Generator, n: int, right: float = 0.8):
    gold = rng.integers(0, 4, n)
    pred = np.where(rng.random(n) < right, gold, rng.integers(0, 4, n))
    return gold, pred


def ner_sample(rng: np.random.Generator, n_items: int, sentences: tuple[int, int] = (1, 4)):
    """Items of random IOB tag-id sentences (I- after O included); predictions corrupt ~10%."""
    gold, pred = [], []
    for _ in range(n_items):
        g_item, p_item = [], []
        for _ in range(int(rng.integers(*sentences))):
            g = rng.choice(len(TAGS), size=int(rng.integers(1, 25)), p=[0.7, *[0.05] * 6])
            noise = rng.integers(0, len(TAGS), len(g))
            g_item.append(g.astype(np.int64))
            p_item.append(np.where(rng.random(len(g)) < 0.9, g, noise).astype(np.int64))
        gold.append(g_item)
        pred.append(p_item)
    return gold, pred


def unweighted(task: str, gold, pred, names) -> dict[str, float]:
    counts = item_counts(task, gold, pred, names)
    return {k: float(v) for k, v in metrics_of_counts(task, np.ones(len(counts)) @ counts).items()}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_weights_of_one_give_the_multiclass_metrics(seed):
    gold, pred = multiclass_sample(np.random.default_rng(seed), 137, right=0.6)
    want = TASKS.get("multiclass")().metrics(gold, pred, CLASSES)
    got = unweighted("multiclass", gold, pred, CLASSES)
    assert got == pytest.approx({k: want[k] for k in ("accuracy", "macro_f1")}, abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_weights_of_one_give_the_ner_metrics(seed):
    gold, pred = ner_sample(np.random.default_rng(seed), 60)
    want = TASKS.get("ner")().metrics(gold, pred, TAGS)
    got = unweighted("ner", gold, pred, TAGS)
    assert got == pytest.approx({k: want[k] for k in ("f1", "precision", "recall")}, abs=1e-12)


def test_resample_weights_are_draws_with_replacement():
    w = resample_weights(7, 500, np.random.default_rng(0))
    assert w.shape == (500, 7)
    assert (w.sum(axis=1) == 7).all() and (w >= 0).all()
    assert w.mean() == pytest.approx(1.0)  # every item as likely as any other


def test_half_right_on_four_items_spans_zero_to_one():
    # P(a resample of 4 holds only wrong items) = 1/16 > 2.5%, the same for only right ones
    gold, pred = np.array([0, 1, 0, 1]), np.array([0, 1, 1, 0])
    got = bootstrap_intervals("multiclass", gold, pred, ["a", "b"], np.random.default_rng(0))
    assert got["accuracy"] == (0.0, 1.0)


def test_an_all_correct_sample_gives_a_degenerate_interval():
    gold = np.array([0, 1, 1, 0, 1])
    got = bootstrap_intervals("multiclass", gold, gold, ["a", "b"], np.random.default_rng(0))
    assert got["accuracy"] == (1.0, 1.0)
    # a class never in the sample scores F1 0, as in Multiclass.metrics (labels=all classes)
    gold = np.zeros(5, dtype=np.int64)
    got = bootstrap_intervals("multiclass", gold, gold, ["a", "b"], np.random.default_rng(0))
    point = TASKS.get("multiclass")().metrics(gold, gold, ["a", "b"])["macro_f1"]
    assert got["macro_f1"] == (0.5, 0.5) == (point, point)


def test_the_same_seed_gives_the_same_interval():
    gold, pred = multiclass_sample(np.random.default_rng(3), 120)
    one = bootstrap_intervals("multiclass", gold, pred, CLASSES, np.random.default_rng(5))
    two = bootstrap_intervals("multiclass", gold, pred, CLASSES, np.random.default_rng(5))
    other = bootstrap_intervals("multiclass", gold, pred, CLASSES, np.random.default_rng(6))
    assert one == two
    assert one != other


@pytest.mark.parametrize("task", ["multiclass", "ner"])
def test_the_report_brackets_the_point_value(task):
    rng = np.random.default_rng(11)
    if task == "multiclass":
        gold, pred = multiclass_sample(rng, 200)
        names = CLASSES
    else:
        gold, pred = ner_sample(rng, 300, sentences=(1, 2))
        names = TAGS
    point = TASKS.get(task)().metrics(gold, pred, names)
    got = eval_report(task, gold, pred, names, point, np.random.default_rng(0))
    metrics = ("accuracy", "macro_f1") if task == "multiclass" else ("f1", "precision", "recall")
    bounds = [f"{m}_{side}" for m in metrics for side in ("low", "high")]
    assert set(got) == {*metrics, *bounds, "n", "level"}
    assert got["n"] == len(gold) and got["level"] == 0.95
    for m in metrics:
        assert got[m] == point[m]
        assert got[f"{m}_low"] < got[m] < got[f"{m}_high"]
        assert got[f"{m}_high"] - got[f"{m}_low"] < 0.25  # informative at these sizes


def test_the_95_interval_covers_a_known_accuracy():
    """A classifier right with probability 0.8, 200 samples of n=200: the percentile
    interval holds 0.8 in >= 88% of them (nominal 95%). Vectorised: one weight matrix for all
    samples, the same steps `bootstrap_intervals` takes (checked on the first sample)."""
    rng = np.random.default_rng(2024)
    n, samples, true = 200, 200, 0.8
    gold = np.zeros((samples, n), dtype=np.int64)
    pred = np.where(rng.random((samples, n)) < true, 0, 1)
    counts = np.stack(
        [item_counts("multiclass", g, p, ["a", "b"]) for g, p in zip(gold, pred, strict=True)]
    )
    weights = resample_weights(n, 1000, np.random.default_rng(7))
    acc = metrics_of_counts("multiclass", np.einsum("bi,sik->bsk", weights, counts))["accuracy"]
    low, high = np.quantile(acc, [0.025, 0.975], axis=0)
    first = bootstrap_intervals(
        "multiclass", gold[0], pred[0], ["a", "b"], np.random.default_rng(7)
    )
    assert first["accuracy"] == pytest.approx((low[0], high[0]), abs=1e-12)
    covered = ((low <= true) & (true <= high)).mean()
    assert covered >= 0.88, covered


# Sentence 1: a correct PER and an ORG cut short (boundary error); sentence 2: a LOC tagged
# PER (type error). Entities: gold 3, predicted 3, matched 1.
NER_GOLD = [["B-PER", "I-PER", "O", "B-ORG", "I-ORG"], ["B-LOC", "O"]]
NER_PRED = [["B-PER", "I-PER", "O", "B-ORG", "O"], ["B-PER", "O"]]


def ids(sentence: list[str]) -> np.ndarray:
    return np.array([TAGS.index(t) for t in sentence], dtype=np.int64)


def test_ner_counts_entities_as_conlleval_does():
    sentence_items = ([[ids(s)] for s in NER_GOLD], [[ids(s)] for s in NER_PRED])
    counts = item_counts("ner", *sentence_items, TAGS)
    assert counts.tolist() == [[1, 2, 2], [0, 1, 1]]  # [matched, gold, predicted] per item
    document = ([[ids(s) for s in NER_GOLD]], [[ids(s) for s in NER_PRED]])
    assert item_counts("ner", *document, TAGS).tolist() == [[1, 3, 3]]
    want = TASKS.get("ner")().metrics(*sentence_items, TAGS)
    assert want["f1"] == want["precision"] == want["recall"] == pytest.approx(1 / 3)
    assert unweighted("ner", *sentence_items, TAGS) == pytest.approx(
        {k: want[k] for k in ("f1", "precision", "recall")}, abs=1e-12
    )
    # two sentence items: 1/4 of resamples hold sentence 2 twice (all 0), 1/4 sentence 1
    # twice (1/2 each), so the 95% interval is exactly (0, 1/2)
    got = bootstrap_intervals("ner", *sentence_items, TAGS, np.random.default_rng(0))
    assert got == {m: (0.0, 0.5) for m in ("f1", "precision", "recall")}


def test_mismatched_inputs_fail_clearly():
    with pytest.raises(ValueError, match="predicted tags"):
        item_counts("ner", [[ids(NER_GOLD[0])]], [[ids(NER_GOLD[1])]], TAGS)
    with pytest.raises(ValueError, match="class ids"):
        item_counts("multiclass", [0, 2], [0, 1], ["a", "b"])
    with pytest.raises(ValueError, match="empty"):
        bootstrap_intervals("multiclass", [], [], ["a"], np.random.default_rng(0))


# --------------------------------------------------------------------------- the learning curve


def curve_rows(with_eval: bool, heldout: str = "test split") -> list[dict]:
    rows = []
    for k, labeled in enumerate((10, 30, 50, 70)):
        acc = 0.6 + 0.1 * k
        row = {
            "labeled": labeled,
            "cost": {"documents": labeled, "tokens": 300 * labeled},
            "chosen": "tfidf_logreg" if k % 2 else "minilm_embed_logreg",
            "test": {"accuracy": acc, "macro_f1": acc - 0.05},
            "heldout": heldout,
        }
        if with_eval:
            row["eval"] = {
                **{m: v for m, v in (("accuracy", acc - 0.02), ("macro_f1", acc - 0.07))},
                **{f"{m}_low": row["test"][m] - 0.08 for m in ("accuracy", "macro_f1")},
                **{f"{m}_high": min(1.0, row["test"][m] + 0.05) for m in ("accuracy", "macro_f1")},
                "n": 200,
                "level": 0.95,
            }
        rows.append(row)
    return rows


def drawn(fig) -> tuple[list[str], list[str], int]:
    """Line labels, legend texts and shaded bands of the first Axes (then the figure closes)."""
    import matplotlib.pyplot as plt
    from matplotlib.collections import PolyCollection

    ax, right = fig.axes
    lines = [line.get_label() for line in ax.get_lines()]
    legend = [t.get_text() for t in right.get_legend().get_texts()]
    bands = sum(isinstance(c, PolyCollection) for c in ax.collections)
    plt.close(fig)
    return lines, legend, bands


@pytest.mark.parametrize(
    ("with_eval", "heldout"),
    [(False, "test split"), (True, "test split"), (True, "evaluation sample (200 items)")],
)
def test_the_learning_curve_png_is_written(tmp_path: Path, with_eval, heldout):
    path = tmp_path / "learning_curve.png"
    plot_learning_curve(curve_rows(with_eval, heldout), path, "bbc · margin · seed 0")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert matplotlib.image.imread(path).ndim == 3


def test_without_eval_the_curve_is_the_test_curve():
    lines, legend, bands = drawn(learning_curve_figure(curve_rows(False), "t"))
    assert lines == ["test accuracy", "test macro_f1"]
    assert bands == 0
    assert "kept: tfidf_logreg" in legend


def test_the_evaluation_sample_is_a_band_and_the_test_split_a_line():
    lines, legend, bands = drawn(learning_curve_figure(curve_rows(True), "t"))
    assert lines == [
        "test accuracy",
        "test macro_f1",
        "evaluation sample accuracy",
        "evaluation sample macro_f1",
    ]
    assert bands == 2
    assert legend.count("evaluation sample (n=200, 95% interval)") == 1


def test_without_a_test_split_only_the_evaluation_sample_is_drawn():
    rows = curve_rows(True, heldout="evaluation sample (200 items)")
    lines, legend, bands = drawn(learning_curve_figure(rows, "t"))
    assert lines == ["evaluation sample accuracy", "evaluation sample macro_f1"]
    assert bands == 2
    assert "evaluation sample (n=200, 95% interval)" in legend
