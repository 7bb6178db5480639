"""Means with 95 % intervals over seeds, differences between settings, and time to a target."""

from __future__ import annotations

import itertools
import math
import statistics

from scipy import stats


def interval(values: list[float]) -> dict:
    """Mean and two-sided 95 % Student-t interval over independent runs (seeds)."""
    n = len(values)
    mean = statistics.fmean(values)
    half = stats.t.ppf(0.975, n - 1) * statistics.stdev(values) / math.sqrt(n) if n > 1 else math.nan
    return {"mean": mean, "low": mean - half, "high": mean + half, "n": n, "values": list(values)}


def positive_interval(values: list[float]) -> dict:
    """For positive quantities (seconds): the geometric mean and a 95 % Student-t interval on the
    log scale, which stays above zero and follows the skew of times; `mean` is the plain mean.
    With n = 3 a symmetric interval on seconds reached below zero (SDE: [−21, 101] s)."""
    if len(values) < 2 or min(values) <= 0:
        return interval(values)
    logs = interval([math.log(v) for v in values])
    return {
        "mean": statistics.fmean(values),
        "geomean": math.exp(logs["mean"]),
        "low": math.exp(logs["low"]),
        "high": math.exp(logs["high"]),
        "n": len(values),
        "values": list(values),
        "scale": "log",
    }


def difference(a: list[float], b: list[float]) -> dict:
    """Mean of a − mean of b with a Welch 95 % interval; `clear` when the interval excludes 0."""
    mean = statistics.fmean(a) - statistics.fmean(b)
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return {"mean": mean, "low": mean, "high": mean, "clear": mean != 0}
    dof = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = stats.t.ppf(0.975, dof) * se
    return {"mean": mean, "low": mean - half, "high": mean + half, "clear": not (mean - half <= 0 <= mean + half)}


def ratio(a: list[float], b: list[float]) -> dict:
    """Ratio of positive quantities a / b (times): the ratio of geometric means with a Welch 95 %
    interval on the log scale; `clear` when the interval excludes 1."""
    logs = difference([math.log(v) for v in a], [math.log(v) for v in b])
    return {
        "ratio": math.exp(logs["mean"]),
        "low": math.exp(logs["low"]),
        "high": math.exp(logs["high"]),
        "clear": logs["clear"],
    }


def target_rule(base: float, gains: dict[str, float]) -> float | None:
    """The target, fixed as a rule before any run: the base model's held-out reward plus half the
    larger of the methods' mean final gains. None when neither method gained (nothing to reach)."""
    best = max(gains.values())
    return base + 0.5 * best if best > 0 else None


def first_crossing(points: list[tuple[float, float]], target: float) -> float | None:
    """Training seconds at which a curve [(seconds, value)], starting at (0, base), first reaches
    `target`, interpolated linearly between evaluations; None if it never does."""
    for (t0, v0), (t1, v1) in itertools.pairwise(points):
        if v1 >= target:
            if v0 >= target:
                return t0
            return t0 + (target - v0) / (v1 - v0) * (t1 - t0)
    return None


def time_to_target(curves: list[list[tuple[float, float]]], target: float) -> dict:
    """Per-seed first crossings; `reached` only when every seed reached the target (a mean over
    the seeds that happened to get there would flatter a method)."""
    crossings = [first_crossing(points, target) for points in curves]
    reached = [c for c in crossings if c is not None]
    everyone = len(reached) == len(crossings)
    summary = positive_interval(reached) if everyone else None
    return {
        "reached": everyone,
        "seeds_reached": len(reached),
        "seeds": len(crossings),
        "seconds_mean": summary["mean"] if summary else None,
        "seconds": summary,
        "seconds_per_seed": crossings,
    }
