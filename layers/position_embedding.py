"""A learned embedding of each position of a fixed-length sequence, added to it: what tells an
attentive decoder where on an image's grid a feature vector lies (convolutions and attention
alone are blind to it, and a caption says "left of")."""

from __future__ import annotations

import keras

from layers import PACKAGE


@keras.saving.register_keras_serializable(package=PACKAGE)
class PositionEmbedding(keras.layers.Layer):
    """(batch, positions, dim) -> the same plus a learned (positions, dim) table (starting small).

    Example:
    >>> layer = PositionEmbedding()
    >>> tuple(layer(keras.ops.zeros((2, 6, 4))).shape), tuple(layer.embeddings.shape)
    ((2, 6, 4), (6, 4))
    """

    def build(self, input_shape):
        if input_shape[1] is None:
            raise ValueError("PositionEmbedding needs a fixed number of positions (axis 1), received None")
        self.embeddings = self.add_weight(shape=tuple(input_shape[1:]), name="embeddings",
                                          initializer=keras.initializers.RandomNormal(stddev=0.02))

    def call(self, inputs):
        return inputs + keras.ops.cast(self.embeddings, inputs.dtype)
