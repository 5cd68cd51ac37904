"""Turnaround percentiles (median, P90) over any scope and period without the orders: a
mergeable log-bucket sketch (DDSketch, Masson et al. 2019) kept per rollup row.

A duration of x seconds (x ≥ 1; shorter ones count as 1) falls in bucket ceil(log_γ x) with
γ = (1 + α) / (1 − α). A bucket's representative value 2γ^i / (γ + 1) is within the relative
error α = 1% of every duration in it, so a quantile read from the merged counts is within 1%
of the exact one at the same rank. Merging is adding counts per bucket: day and month rows,
stores into branches, all add up. A turnaround of a year is about 830 buckets.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

RELATIVE_ACCURACY = 0.01
GAMMA = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
_LOG_GAMMA = math.log(GAMMA)


def bucket(seconds: float) -> int:
    """The bucket a duration counts in."""
    return math.ceil(math.log(max(seconds, 1.0)) / _LOG_GAMMA - 1e-12)


def bucket_value(index: int) -> float:
    """The value that stands for every duration in the bucket (within α of each)."""
    return 2 * GAMMA**index / (GAMMA + 1)


def rank(quantile: float, count: int) -> int:
    """The 0-based position of a quantile among `count` sorted values (the lower one)."""
    return math.floor(quantile * (count - 1))


def quantile(counts: Mapping[int, int], q: float) -> float | None:
    """The q-quantile of the durations counted, None when there are none."""
    total = sum(counts.values())
    if total <= 0:
        return None
    wanted = rank(q, total)
    seen = 0
    for index in sorted(counts):
        seen += counts[index]
        if seen > wanted:
            return bucket_value(index)
    raise AssertionError("unreachable: the counts add up to the total")


def exact_quantile(values: Iterable[float], q: float) -> float | None:
    """The same quantile from the values themselves (a store's facts)."""
    ordered = sorted(values)
    if not ordered:
        return None
    return float(ordered[rank(q, len(ordered))])
