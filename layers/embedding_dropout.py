"""An embedding that drops whole words: Gal & Ghahramani, 2016, section 4 ("word dropout"),
https://arxiv.org/abs/1512.05287; as embedding dropout in AWD-LSTM (Merity et al., 2017)."""

from __future__ import annotations

import keras
from keras import ops

from layers import PACKAGE
from layers.sequence_dropout import check_rate, dropout_mask


@keras.saving.register_keras_serializable(package=PACKAGE)
class DropoutEmbedding(keras.layers.Embedding):
    """`keras.layers.Embedding` with embedding dropout: in training, each sequence drops word
    *types* with probability `embedding_dropout`: a dropped word's vector is zero at every
    position where that word occurs in the sequence; kept vectors are scaled by
    1 / (1 - rate). Off at inference.

    The mask is sampled per (sequence, vocabulary entry), (batch, input_dim) values per call.

    Args: as `keras.layers.Embedding`, plus `embedding_dropout` (rate) and `seed`.

    Example:
    >>> tuple(DropoutEmbedding(10, 4, embedding_dropout=0.1)(keras.ops.ones((2, 5), "int32")).shape)
    (2, 5, 4)
    """

    def __init__(self, input_dim, output_dim, embedding_dropout: float = 0.0, seed: int | None = None, **kwargs):
        super().__init__(input_dim, output_dim, **kwargs)
        self.embedding_dropout = check_rate("embedding_dropout", embedding_dropout)
        self.seed = seed
        if self.embedding_dropout:
            self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        embedded = super().call(inputs)
        if not (training and self.embedding_dropout):
            return embedded
        ids = ops.cast(inputs, "int32")  # (batch, time)
        keep = dropout_mask((ops.shape(ids)[0], self.input_dim), self.embedding_dropout, self.seed_generator)
        word_mask = ops.take_along_axis(keep, ids, axis=1)  # (batch, time): each word's draw
        return embedded * ops.cast(word_mask, embedded.dtype)[..., None]

    def get_config(self):
        return {**super().get_config(), "embedding_dropout": self.embedding_dropout, "seed": self.seed}
