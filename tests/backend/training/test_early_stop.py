"""Early stop fires when the gold metric falls while the training reward keeps rising."""

from __future__ import annotations

from neighbor_grpo.backend.training.evaluation import EarlyStop


def test_stops_after_patience_evaluations_of_hacking():
    stop = EarlyStop(patience=2, tolerance=0.02)
    assert not stop.update(0, reward=0.50, gold=0.80)
    assert not stop.update(10, reward=0.60, gold=0.82)  # both improve
    assert not stop.update(20, reward=0.70, gold=0.75)  # hacking, strike 1
    assert stop.update(30, reward=0.75, gold=0.70)  # strike 2


def test_a_gold_dip_without_reward_gain_or_within_tolerance_is_not_hacking():
    stop = EarlyStop(patience=1, tolerance=0.02)
    stop.update(0, reward=0.5, gold=0.8)
    assert not stop.update(1, reward=0.4, gold=0.7)  # both fell: a bad step, not hacking
    assert not stop.update(2, reward=0.9, gold=0.79)  # within tolerance
    off = EarlyStop(patience=0, tolerance=0.0)
    off.update(0, 0.1, 0.9)
    assert not off.update(1, 0.9, 0.1)


def test_state_survives_a_resume():
    stop = EarlyStop(patience=3, tolerance=0.01)
    stop.update(0, 0.5, 0.8)
    stop.update(1, 0.6, 0.7)
    restored = EarlyStop(patience=3, tolerance=0.01)
    restored.restore(stop.state())
    assert restored.state() == stop.state()
