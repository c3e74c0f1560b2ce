"""Sequence-length statistics and the maximum length chosen from them."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from pipelines.errors import DataError


@dataclasses.dataclass(frozen=True)
class LengthStats:
    count: int
    min: int
    mean: float
    median: float
    max: int
    percentile: float
    at_percentile: int

    def describe(self) -> str:
        return (
            f"lengths over {self.count} sequences: min {self.min}, mean {self.mean:.1f}, "
            f"median {self.median:.0f}, {self.percentile:g}th percentile {self.at_percentile}, "
            f"max {self.max}"
        )


def length_stats(lengths: Sequence[int], percentile: float = 95.0) -> LengthStats:
    """Summarises lengths; `at_percentile` is the smallest length covering `percentile`% of them.

    Example:
    >>> length_stats(list(range(1, 101)), percentile=95).at_percentile
    95
    """
    if not 0 < percentile <= 100:
        raise DataError(f"length_percentile must be in (0, 100], received {percentile}")
    values = np.asarray(lengths)
    if values.size == 0:
        raise DataError("cannot compute length statistics of an empty split")
    at = int(math.ceil(np.percentile(values, percentile, method="inverted_cdf")))
    return LengthStats(
        count=int(values.size),
        min=int(values.min()),
        mean=float(values.mean()),
        median=float(np.median(values)),
        max=int(values.max()),
        percentile=float(percentile),
        at_percentile=max(at, 1),
    )
