"""Additive (Bahdanau) attention. Reference: Bahdanau, Cho & Bengio, 2015, "Neural Machine
Translation by Jointly Learning to Align and Translate", https://arxiv.org/abs/1409.0473."""

from __future__ import annotations

import keras
from keras import ops

from layers import PACKAGE


def additive_score(query_projection, keys, v):
    """e_j = v . tanh(W q + U h_j), from W q (batch, units), U h (batch, time, units) and v (units,)."""
    return ops.sum(ops.tanh(ops.expand_dims(query_projection, 1) + keys) * v, axis=-1)  # (batch, time)


def masked_softmax(scores, mask=None):
    """Softmax over the last axis, with masked positions at exactly 0 (a fully masked row: all 0)."""
    if mask is None:
        return ops.softmax(scores, axis=-1)
    mask = ops.cast(mask, "bool")
    scores = ops.where(mask, scores, ops.full_like(scores, -1e9))
    weights = ops.softmax(scores, axis=-1)
    return ops.where(mask, weights, ops.zeros_like(weights))


def attend(scores, values, values_mask=None):
    """Weights a_j = softmax(scores) over unmasked j, and the context sum_j a_j h_j."""
    weights = masked_softmax(scores, values_mask)  # (batch, time)
    context = ops.sum(ops.expand_dims(weights, -1) * values, axis=1)  # (batch, value_dim)
    return context, weights


@keras.saving.register_keras_serializable(package=PACKAGE)
class BahdanauAttention(keras.layers.Layer):
    """e_ij = v^T tanh(W s_{i-1} + U h_j);  a_ij = softmax_j(e_ij) over unmasked j;  c_i = sum_j a_ij h_j.

    Stateless: the decoder passes its previous state as `query`. U h_j depends only on the
    source, so `project_keys(values)` computes it once per sequence and the decoder passes it
    back as `keys` at every step.

    Args:
        units: width of the scoring layer.

    Call arguments:
        query: (batch, query_dim), the decoder state s_{i-1}.
        values: (batch, time, value_dim), the encoder outputs h.
        keys: optional (batch, time, units) = `project_keys(values)`.
        values_mask: optional boolean (batch, time); False positions get weight 0.

    Returns:
        (context (batch, value_dim), weights (batch, time)); each unmasked row of weights sums to 1.

    Example:
    >>> attention = BahdanauAttention(4)
    >>> context, weights = attention(keras.ops.ones((2, 3)), keras.ops.ones((2, 5, 6)))
    >>> tuple(context.shape), tuple(weights.shape)
    ((2, 6), (2, 5))
    """

    def __init__(self, units: int, **kwargs):
        super().__init__(**kwargs)
        if units <= 0:
            raise ValueError(f"units must be positive, received units={units}")
        self.units = units

    def build(self, query_shape, values_shape=None, *args, **kwargs):
        query_dim = query_shape[-1]
        value_dim = (values_shape if values_shape is not None else query_shape)[-1]
        self.query_kernel = self.add_weight(shape=(query_dim, self.units), name="query_kernel")
        self.key_kernel = self.add_weight(shape=(value_dim, self.units), name="key_kernel")
        self.score_vector = self.add_weight(shape=(self.units,), name="score_vector")

    def project_keys(self, values):
        """U h_j for every source position: (batch, time, value_dim) -> (batch, time, units)."""
        return ops.matmul(values, self.key_kernel)

    def call(self, query, values, keys=None, values_mask=None):
        if keys is None:
            keys = self.project_keys(values)
        return attend(additive_score(ops.matmul(query, self.query_kernel), keys, self.score_vector), values,
                      values_mask)

    def compute_output_shape(self, query_shape, values_shape, *args, **kwargs):
        return (query_shape[0], values_shape[-1]), (query_shape[0], values_shape[1])

    def get_config(self):
        return {**super().get_config(), "units": self.units}
