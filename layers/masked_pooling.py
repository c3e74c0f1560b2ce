"""Pooling over time that respects the mask: last valid step, max or mean."""

from __future__ import annotations

import keras
from keras import ops

from layers import PACKAGE

MODES = ("last", "max", "mean")


@keras.saving.register_keras_serializable(package=PACKAGE)
class MaskedPooling(keras.layers.Layer):
    """Reduces (batch, time, features) to (batch, features) over the unmasked steps.

    - `last`: the features at the last unmasked step of each row.
    - `max`: the elementwise maximum over unmasked steps.
    - `mean`: the average over unmasked steps.

    A row whose steps are all masked gives zeros.

    Args:
        mode: one of "last", "max", "mean".

    Call arguments:
        inputs: (batch, time, features).  mask: optional boolean (batch, time).

    Returns:
        (batch, features). The output carries no mask.

    Example:
    >>> x = keras.ops.convert_to_tensor([[[1.0], [5.0], [3.0]]])
    >>> MaskedPooling("max")(x, mask=keras.ops.convert_to_tensor([[True, False, True]])).numpy()
    array([[3.]], dtype=float32)
    """

    def __init__(self, mode: str = "mean", **kwargs):
        super().__init__(**kwargs)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, received mode={mode!r}")
        self.mode = mode
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if mask is None:
            mask = ops.ones(ops.shape(inputs)[:2], dtype="bool")
        valid = ops.expand_dims(ops.cast(mask, inputs.dtype), -1)  # (batch, time, 1)
        count = ops.sum(valid, axis=1)  # (batch, 1)
        if self.mode == "mean":
            return ops.sum(inputs * valid, axis=1) / ops.maximum(count, 1.0)
        if self.mode == "max":
            lowest = ops.min(inputs) - 1.0
            pooled = ops.max(ops.where(valid > 0, inputs, lowest), axis=1)
            return ops.where(count > 0, pooled, ops.zeros_like(pooled))
        # last: position of the last unmasked step, found as the first one of the reversed mask.
        steps = ops.shape(inputs)[1]
        index = steps - 1 - ops.argmax(ops.flip(valid[:, :, 0], axis=1), axis=1)  # (batch,)
        index = ops.cast(index, "int32")
        picked = ops.take_along_axis(inputs, ops.reshape(index, (-1, 1, 1)), axis=1)  # (batch, 1, features)
        return ops.where(count > 0, picked[:, 0, :], ops.zeros_like(picked[:, 0, :]))

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}
