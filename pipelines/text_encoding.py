"""Strings to token ids, in TensorFlow: the one path used by tf.data, `predict` and the
exported SavedModel, so training and serving tokenize identically."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import tensorflow as tf

from pipelines.batching import pad_and_bucket
from pipelines.tokenization import tokenize


def text_encoder(table: tf.lookup.StaticHashTable, lowercase: bool = True, max_length: int | None = None
                 ) -> Callable[[tf.Tensor], tf.RaggedTensor]:
    """Returns `encode(texts) -> ids`: (batch,) strings to ragged int32 ids (batch, None),
    cut to the first `max_length` tokens.

    Example:
    >>> from pipelines.vocabulary import Vocabulary
    >>> encode = text_encoder(Vocabulary.build([["good", "movie"]]).lookup_table())
    >>> encode(tf.constant(["Good film"])).to_list()
    [[2, 1]]
    """

    def encode(texts: tf.Tensor) -> tf.RaggedTensor:
        tokens = tokenize(texts, lowercase)
        ids = tf.ragged.map_flat_values(table.lookup, tokens)
        if max_length is not None:
            ids = ids[:, :max_length]
        return tf.cast(ids, tf.int32)

    return encode


def pad_ids(ids: tf.RaggedTensor) -> tf.Tensor:
    """Right-pads ragged ids with 0 to a dense (batch, time) tensor, time at least 1."""
    dense = ids.to_tensor(default_value=0)
    return tf.pad(dense, [[0, 0], [0, tf.maximum(1 - tf.shape(dense)[1], 0)]])


def labeled_text_dataset(
    texts: Sequence[str],
    label_ids: Sequence[int],
    encode: Callable[[tf.Tensor], tf.RaggedTensor],
    batch_size: int,
    boundaries: Sequence[int] | None = None,
    shuffle_buffer: int = 0,
    seed: int | None = None,
) -> tf.data.Dataset:
    """(token_ids, label) batches: tokenized in chunks, shuffled, padded and bucketed, prefetched."""
    ds = tf.data.Dataset.from_tensor_slices((tf.constant(list(texts), tf.string),
                                             tf.constant(list(label_ids), tf.int32)))
    if shuffle_buffer:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    # Tokenize 256 texts per call (one op launch for many strings), then go back to examples
    # so that bucketing groups them by length.
    ds = ds.batch(256).map(lambda t, y: (encode(t), y), num_parallel_calls=tf.data.AUTOTUNE).unbatch()
    # Unbatched ragged rows are rank-0 ragged specs; a map hands them over as dense tensors.
    ds = ds.map(lambda ids, y: (ids, y))
    ds = ds.apply(pad_and_bucket(batch_size, boundaries))
    return ds.prefetch(tf.data.AUTOTUNE)
