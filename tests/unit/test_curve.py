"""`alrun-curve`'s arithmetic: the power-law fit and its bootstrap, the subsets drawn, and the
errors people see for a bad run folder or option (no data, no training)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from alrun.curve import (
    FitError,
    bootstrap,
    draw_subsets,
    fit_power_law,
    main,
    parse_factors,
    parse_fractions,
    pick_round,
    power_law,
)
from alrun.errors import AlrunError

N = np.array([25.0, 50.0, 75.0, 100.0])


def test_power_law_fit_recovers_exact_parameters_and_extrapolates_by_the_formula():
    fit = fit_power_law(N, power_law(N, 0.9, 0.5, 0.5))
    assert (fit.a, fit.b, fit.c) == pytest.approx((0.9, 0.5, 0.5), abs=1e-5)
    assert fit.rmse < 1e-8
    assert fit(200) == pytest.approx(0.9 - 0.5 * 200**-0.5, abs=1e-7)  # 2x the labels


def noisy_points(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three subset scores at each of 25/50/75 labels and one at 100, around the curve."""
    xs = np.array([25.0] * 3 + [50.0] * 3 + [75.0] * 3 + [100.0])
    noise = np.random.default_rng(seed).normal(0, 0.01, len(xs))
    return xs, power_law(xs, 0.9, 0.5, 0.5) + noise


def test_bootstrap_interval_holds_the_estimate_and_is_seeded():
    xs, ys = noisy_points()
    fit = fit_power_law(xs, ys)
    at = np.array([150.0, 200.0])
    boots = [
        bootstrap(xs, ys, list(xs), fit, np.random.default_rng(7), resamples=100) for _ in range(2)
    ]
    np.testing.assert_array_equal(boots[0].params, boots[1].params)  # same seed, same refits
    low, high = boots[0].interval(at)
    assert np.all(low <= fit(at)) and np.all(fit(at) <= high)
    assert np.all(high - low > 0)  # noisy points: a real interval, not a line
    other = bootstrap(xs, ys, list(xs), fit, np.random.default_rng(8), resamples=100)
    assert not np.array_equal(other.params, boots[0].params)


def test_too_few_label_counts_is_a_fit_error_not_a_traceback():
    with pytest.raises(FitError, match="3 or more label counts, got 2"):
        fit_power_law([50, 50, 100], [0.7, 0.72, 0.8])


def test_subsets_are_nested_within_the_labels_and_seeded():
    fractions = [0.25, 0.5, 0.75, 1.0]
    subsets = draw_subsets(40, fractions, 3, np.random.default_rng(0))
    again = draw_subsets(40, fractions, 3, np.random.default_rng(0))
    assert [(f, j, p.tolist()) for f, j, p in subsets] == [(f, j, p.tolist()) for f, j, p in again]
    assert [(f, j, len(p)) for f, j, p in subsets] == [
        *((0.25, j, 10) for j in range(3)),
        *((0.5, j, 20) for j in range(3)),
        *((0.75, j, 30) for j in range(3)),
        (1.0, 0, 40),  # 100% is every label, once
    ]
    by_repeat = {(f, j): set(p.tolist()) for f, j, p in subsets}
    for j in range(3):  # a repeat's subsets grow by adding labels, never swapping them
        assert by_repeat[0.25, j] < by_repeat[0.5, j] < by_repeat[0.75, j] < by_repeat[1.0, 0]
    assert all(np.all(np.diff(p) > 0) and p.min() >= 0 and p.max() < 40 for _, _, p in subsets)
    assert len({frozenset(by_repeat[0.5, j]) for j in range(3)}) == 3  # repeats differ
    other = draw_subsets(40, fractions, 3, np.random.default_rng(1))
    assert [p.tolist() for _, _, p in other] != [p.tolist() for _, _, p in subsets]


@pytest.mark.parametrize("text", ["0.5,0.25", "0,0.5,1", "0.5,1.5", "a,b", "", "0.5,0.5"])
def test_bad_fractions_name_the_option_and_what_is_valid(text):
    with pytest.raises(
        AlrunError, match=r"--fractions .*increasing shares of the labels in \(0, 1\]"
    ):
        parse_fractions(text)


def test_fractions_and_factors_parse():
    assert parse_fractions("0.25, 0.5,1") == [0.25, 0.5, 1.0]
    assert parse_factors("2,1.5") == [1.5, 2.0]
    with pytest.raises(AlrunError, match="--extrapolate -1: give positive multiples"):
        parse_factors("-1")


ROWS = [{"round": r, "labeled": n} for r, n in enumerate([10, 20, 30])]


def test_labels_pick_a_round_or_name_the_rounds_counts():
    assert pick_round(ROWS, 30, None)["round"] == 2  # default: the last round
    assert pick_round(ROWS, 30, 20)["round"] == 1
    with pytest.raises(AlrunError, match=r"--labels 15: no round .*: 10, 20, 30$"):
        pick_round(ROWS, 30, 15)
    # a run killed between rounds.jsonl and its checkpoint: round 2's labels were not saved
    assert pick_round(ROWS, 20, None)["round"] == 1
    with pytest.raises(AlrunError, match=r"--labels 30: .*not in checkpoint.json.*: 10, 20$"):
        pick_round(ROWS, 20, 30)


def curve_cli(capsys, *args) -> tuple[int, str]:
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err


def test_bad_run_folders_exit_2_with_one_error_line(tmp_path, capsys):
    code, err = curve_cli(capsys, tmp_path / "nowhere")
    assert code == 2 and err.startswith("alrun-curve: error: ") and "not found" in err
    run = tmp_path / "run"
    run.mkdir()
    code, err = curve_cli(capsys, run)
    assert code == 2 and "not a run folder (no .hydra/config.yaml)" in err
    (run / ".hydra").mkdir()
    (run / ".hydra" / "config.yaml").write_text("seed: 3\n")
    code, err = curve_cli(capsys, run)
    assert code == 2 and "has no rounds" in err
    (run / "rounds.jsonl").write_text(json.dumps(ROWS[0]) + "\n")
    code, err = curve_cli(capsys, run)
    assert code == 2 and "no checkpoint.json" in err
    (run / "checkpoint.json").write_text(json.dumps({"labeled": list(range(10))}))
    code, err = curve_cli(capsys, run)
    assert code == 2 and "no `labeled` and `labels`" in err
    code, err = curve_cli(capsys, run, "--fractions", "1,0.5")
    assert code == 2 and "--fractions 1,0.5: give increasing shares" in err
    assert err.count("\n") == 1  # one line, no traceback
