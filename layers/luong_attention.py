"""Multiplicative (Luong) attention. Reference: Luong, Pham & Manning, 2015, "Effective
Approaches to Attention-based Neural Machine Translation", https://arxiv.org/abs/1508.04025."""

from __future__ import annotations

import keras
from keras import ops

from layers import PACKAGE
from layers.bahdanau_attention import attend

SCORES = ("dot", "general")


@keras.saving.register_keras_serializable(package=PACKAGE)
class LuongAttention(keras.layers.Layer):
    """e_ij = s_i . h_j (`dot`) or s_i W h_j (`general`); softmax over unmasked j; c_i = sum_j a_ij h_j.

    Same call convention as `BahdanauAttention`: `call(query, values, keys=None,
    values_mask=None) -> (context, weights)`; `project_keys(values)` gives the keys once per
    sequence (W h_j for `general`, h_j itself for `dot`).

    Args:
        score: "dot" (query and values of equal width) or "general".

    Example:
    >>> context, weights = LuongAttention("general")(keras.ops.ones((2, 3)), keras.ops.ones((2, 5, 6)))
    >>> tuple(weights.shape)
    (2, 5)
    """

    def __init__(self, score: str = "general", **kwargs):
        super().__init__(**kwargs)
        if score not in SCORES:
            raise ValueError(f"score must be one of {SCORES}, received score={score!r}")
        self.score = score

    def build(self, query_shape, values_shape=None, *args, **kwargs):
        if self.score == "general":
            value_dim = (values_shape if values_shape is not None else query_shape)[-1]
            self.kernel = self.add_weight(shape=(value_dim, query_shape[-1]), name="kernel")

    def project_keys(self, values):
        return ops.matmul(values, self.kernel) if self.score == "general" else values

    def call(self, query, values, keys=None, values_mask=None):
        if keys is None:
            keys = self.project_keys(values)
        return attend(ops.sum(ops.expand_dims(query, 1) * keys, axis=-1), values, values_mask)

    def compute_output_shape(self, query_shape, values_shape, *args, **kwargs):
        return (query_shape[0], values_shape[-1]), (query_shape[0], values_shape[1])

    def get_config(self):
        return {**super().get_config(), "score": self.score}
