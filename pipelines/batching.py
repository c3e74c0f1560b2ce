"""Padding and bucketing: `Dataset -> Dataset` transformations for `ds.apply(...)`.

Elements are `(token_ids, label)`, or any nest whose first tensor is a 1-D int tensor of any
length (it decides the bucket), such as `((source_ids, target_in), target_out)`. Padding is
always on the right with `PAD_ID` (0), which `Embedding(mask_zero=True)` turns into the mask.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import tensorflow as tf

from pipelines.vocabulary import PAD_ID

Transformation = Callable[[tf.data.Dataset], tf.data.Dataset]


def bucket_boundaries(lengths: Sequence[int], num_buckets: int, max_length: int | None = None) -> list[int]:
    """Bucket upper bounds that minimise padding for the given length distribution.

    Chooses at most `num_buckets` buckets so that padding every sequence to its bucket's
    longest length wastes the fewest slots (an exact dynamic programme over the distinct
    lengths). Long-tailed distributions get narrow buckets in the tail, where equal-count
    quantiles would put everything from the 90th percentile to the maximum together.

    Example:
    >>> bucket_boundaries([1, 1, 1, 2, 2, 2, 9, 9, 9], num_buckets=3)
    [2, 3]
    """
    if num_buckets < 1:
        raise ValueError(f"num_buckets must be positive, received num_buckets={num_buckets}")
    values = np.asarray(lengths, dtype=np.int64)
    if max_length is not None:
        values = np.minimum(values, max_length)
    distinct, counts = np.unique(values, return_counts=True)
    n = distinct.size
    k = min(num_buckets, n)
    count_prefix = np.concatenate([[0], np.cumsum(counts)])
    sum_prefix = np.concatenate([[0], np.cumsum(counts * distinct)])

    def cost(start: np.ndarray, end: int) -> np.ndarray:
        # Slots wasted when distinct[start..end] are all padded to distinct[end].
        return distinct[end] * (count_prefix[end + 1] - count_prefix[start]) - (sum_prefix[end + 1] - sum_prefix[start])

    best = (distinct * count_prefix[1:] - sum_prefix[1:]).astype(float)  # one bucket ending at each length
    choices = []  # choices[j][e]: first index of the last bucket ending at e, with j + 2 buckets
    for _ in range(1, k):
        new_best = np.full(n, np.inf)
        start_of_last = np.zeros(n, dtype=np.int64)
        for end in range(1, n):
            starts = np.arange(1, end + 1)
            totals = best[starts - 1] + cost(starts, end)
            i = int(np.argmin(totals))
            new_best[end], start_of_last[end] = totals[i], starts[i]
        best = new_best
        choices.append(start_of_last)
    # Walk back from the last distinct length; `bucket_by_sequence_length` puts L in the first
    # bucket with L < boundary, so a bucket ending at length u has boundary u + 1.
    boundaries, end = [], n - 1
    for start_of_last in reversed(choices):
        start = int(start_of_last[end])
        if start == 0:
            break
        boundaries.append(int(distinct[start - 1]) + 1)
        end = start - 1
    return sorted(boundaries)


def _length(*element):
    # The first tensor of the element (the source ids) decides the bucket.
    return tf.shape(tf.nest.flatten(element)[0])[0]


def pad_and_bucket(batch_size: int, boundaries: Sequence[int] | None = None) -> Transformation:
    """Batches with right padding; with `boundaries`, sequences of similar length batch together.

    Without boundaries every batch is padded to its own longest sequence (`padded_batch`).

    Example:
    >>> ds = tf.data.Dataset.from_tensor_slices(tf.ragged.constant([[3], [4, 5], [6, 7, 8]]))
    >>> ds = ds.map(lambda x: (x, 0))
    >>> [x.shape[1] for x, _ in ds.apply(pad_and_bucket(2, boundaries=[2]))]  # full bucket first
    [3, 1]
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, received batch_size={batch_size}")

    def apply(ds: tf.data.Dataset) -> tf.data.Dataset:
        if not boundaries:
            return ds.padded_batch(batch_size, padding_values=_padding_values(ds))
        return ds.bucket_by_sequence_length(
            element_length_func=_length,
            bucket_boundaries=list(boundaries),
            bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
            padding_values=_padding_values(ds),
        )

    return apply


def _padding_values(ds: tf.data.Dataset):
    return tf.nest.map_structure(lambda spec: tf.constant(PAD_ID, spec.dtype), ds.element_spec)


def padding_fraction(ds: tf.data.Dataset) -> float:
    """Fraction of the token slots in a batched dataset that are padding."""
    pad = total = 0
    for batch in ds:
        ids = batch[0] if isinstance(batch, tuple) else batch
        ids = ids.numpy()
        pad += int((ids == PAD_ID).sum())
        total += ids.size
    return pad / total if total else 0.0
