"""Bits per character: the cross-entropy of next-character predictions in base 2, averaged over
the characters that count (sample weight > 0), as character language models report it."""

from __future__ import annotations

import math

import keras
from keras import ops

from layers import PACKAGE


@keras.saving.register_keras_serializable(package=PACKAGE)
class BitsPerCharacter(keras.metrics.Metric):
    """Sum of -log2 p(y_t) x weight over every update, divided by the sum of the weights: the
    whole-text BPC when the text is fed in pieces (padding weighted 0). Perplexity per
    character is 2 ** bpc.

    Call arguments: y_true (batch, time) ids; y_pred (batch, time, vocab) logits;
    sample_weight (batch, time), default 1.

    Example:
    >>> m = BitsPerCharacter()
    >>> m.update_state(keras.ops.array([[1, 2]]), keras.ops.zeros((1, 2, 4)))
    >>> round(float(m.result()), 6)  # uniform over 4 symbols: 2 bits
    2.0
    """

    def __init__(self, name="bpc", **kwargs):
        super().__init__(name=name, **kwargs)
        self.bits = self.add_variable((), initializer="zeros", name="bits", dtype="float64")
        self.count = self.add_variable((), initializer="zeros", name="count", dtype="float64")

    def update_state(self, y_true, y_pred, sample_weight=None):
        nats = keras.losses.sparse_categorical_crossentropy(y_true, y_pred, from_logits=True)  # (batch, time)
        weight = ops.ones_like(nats) if sample_weight is None else ops.cast(sample_weight, nats.dtype)
        self.bits.assign_add(ops.cast(ops.sum(nats * weight), "float64") / math.log(2.0))
        self.count.assign_add(ops.cast(ops.sum(weight), "float64"))

    def result(self):
        return ops.cast(self.bits / ops.maximum(self.count, 1.0), "float32")

    def reset_state(self):
        self.bits.assign(0.0)
        self.count.assign(0.0)
