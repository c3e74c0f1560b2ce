"""Padding and bucketing: `Dataset -> Dataset` transformations for `ds.apply(...)`.

Elements are `(token_ids, label)` with `token_ids` a 1-D int tensor of any length. Padding is
always on the right with `PAD_ID` (0), which `Embedding(mask_zero=True)` turns into the mask.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import tensorflow as tf

from pipelines.vocabulary import PAD_ID

Transformation = Callable[[tf.data.Dataset], tf.data.Dataset]


def bucket_boundaries(lengths: Sequence[int], num_buckets: int, max_length: int | None = None) -> list[int]:
    """Bucket upper bounds at equal-count quantiles of the length distribution.

    Example:
    >>> bucket_boundaries([1, 2, 3, 4, 5, 6, 7, 8], num_buckets=4)
    [3, 5, 7]
    """
    if num_buckets < 1:
        raise ValueError(f"num_buckets must be positive, received num_buckets={num_buckets}")
    values = np.asarray(lengths)
    if max_length is not None:
        values = np.minimum(values, max_length)
    quantiles = np.quantile(values, np.linspace(0, 1, num_buckets + 1)[1:-1], method="inverted_cdf")
    # `bucket_by_sequence_length` puts length L in the first bucket with L < boundary.
    return sorted({int(q) + 1 for q in quantiles if int(q) + 1 <= values.max()})


def _length(token_ids, *rest):
    return tf.shape(token_ids)[0]


def pad_and_bucket(batch_size: int, boundaries: Sequence[int] | None = None) -> Transformation:
    """Batches with right padding; with `boundaries`, sequences of similar length batch together.

    Without boundaries every batch is padded to its own longest sequence (`padded_batch`).

    Example:
    >>> ds = tf.data.Dataset.from_tensor_slices(tf.ragged.constant([[3], [4, 5], [6, 7, 8]]))
    >>> ds = ds.map(lambda x: (x, 0))
    >>> [x.shape[1] for x, _ in ds.apply(pad_and_bucket(2, boundaries=[2]))]
    [1, 3]
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
