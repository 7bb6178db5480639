"""The paper table's statistics: intervals over seeds, the time-to-target rule and crossings."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from paper_stats import difference, first_crossing, interval, positive_interval, ratio, target_rule, time_to_target


def test_interval_is_the_student_t_95_percent_interval():
    summary = interval([1.0, 2.0, 3.0])
    assert summary["mean"] == 2.0
    assert summary["high"] - summary["mean"] == pytest.approx(4.303 * 1.0 / 3**0.5, rel=1e-3)


def test_target_is_base_plus_half_the_larger_gain_and_absent_without_progress():
    assert target_rule(0.80, {"a": 0.04, "b": -0.01}) == pytest.approx(0.82)
    assert target_rule(0.80, {"a": -0.02, "b": 0.0}) is None


def test_first_crossing_interpolates_and_never_invents_a_time():
    curve = [(0.0, 0.80), (10.0, 0.81), (20.0, 0.83)]
    assert first_crossing(curve, 0.82) == pytest.approx(15.0)
    assert first_crossing(curve, 0.90) is None
    # A run whose first evaluation already beats the target is credited with that evaluation's
    # time, not with zero.
    assert first_crossing([(0.0, 0.80), (10.0, 0.85)], 0.82) == pytest.approx(10 * 0.02 / 0.05)


def test_a_method_is_reached_only_when_every_seed_reaches_the_target():
    curves = [[(0.0, 0.8), (10.0, 0.9)], [(0.0, 0.8), (10.0, 0.81)]]
    result = time_to_target(curves, 0.85)
    assert (result["reached"], result["seeds_reached"], result["seconds_mean"]) == (False, 1, None)
    assert time_to_target(curves[:1] * 2, 0.85)["seconds_mean"] == pytest.approx(5.0)


def test_difference_says_when_its_interval_excludes_zero():
    assert difference([1.0, 1.1, 0.9], [0.0, 0.1, -0.1])["clear"]
    assert not difference([1.0, 2.0, 0.0], [0.9, 1.9, 0.1])["clear"]


def test_time_intervals_stay_positive_and_follow_the_skew():
    # Three seeds' times like the 2026-11-30 SDE run: a symmetric t interval reached below zero.
    summary = positive_interval([62.3, 13.8, 43.9])
    assert 0 < summary["low"] < summary["geomean"] < summary["high"]
    assert summary["mean"] == pytest.approx((62.3 + 13.8 + 43.9) / 3)
    assert interval([62.3, 13.8, 43.9])["low"] < 0


def test_a_time_ratio_is_clear_only_when_its_interval_excludes_one():
    assert ratio([20.0, 21.0, 19.0], [10.0, 10.5, 9.5])["clear"]
    fuzzy = ratio([62.3, 13.8, 43.9], [15.1, 10.8, 8.2])
    assert fuzzy["low"] < 1 < fuzzy["high"] and not fuzzy["clear"]
