"""A strided 1-D convolution that keeps the sequence mask: a front end that shortens sequences."""

from __future__ import annotations

import keras
from keras import ops

from layers import PACKAGE


@keras.saving.register_keras_serializable(package=PACKAGE)
class MaskedStridedConv1D(keras.layers.Layer):
    """(batch, time, features) -> (batch, ceil(time / strides), filters), with a mask.

    Output step i sees input steps i * strides - (kernel_size - 1) // 2 onwards (kernel_size of
    them); masked input steps count as zeros, so an output step depends on the valid inputs only
    and extra padding changes nothing. Output step i is valid when i < ceil(valid inputs /
    strides).

    Args:
        filters, kernel_size, strides: as `keras.layers.Conv1D`.
        activation: as `keras.layers.Conv1D` (default relu).

    Example:
    >>> conv = MaskedStridedConv1D(4, 3, 2)
    >>> x = keras.ops.ones((1, 5, 2))
    >>> y = conv(x, mask=keras.ops.convert_to_tensor([[True, True, True, False, False]]))
    >>> tuple(y.shape), keras.ops.convert_to_numpy(y._keras_mask).tolist()
    ((1, 3, 4), [[True, True, False]])
    """

    def __init__(self, filters: int, kernel_size: int = 5, strides: int = 2, activation="relu", **kwargs):
        super().__init__(**kwargs)
        if min(filters, kernel_size, strides) < 1:
            raise ValueError(f"filters, kernel_size and strides must be positive, received {filters}, "
                             f"{kernel_size}, {strides}")
        self.filters, self.kernel_size, self.strides = filters, kernel_size, strides
        self.activation = keras.activations.get(activation)
        self.conv = keras.layers.Conv1D(filters, kernel_size, strides=strides, padding="valid",
                                        activation=self.activation, name="conv")
        self.supports_masking = True

    def build(self, input_shape):
        self.conv.build((input_shape[0], None, input_shape[-1]))

    def _pads(self, steps):
        left = (self.kernel_size - 1) // 2
        out = (steps + self.strides - 1) // self.strides
        right = ops.maximum((out - 1) * self.strides + self.kernel_size - steps - left, 0)
        return left, right

    def call(self, inputs, mask=None):
        if mask is not None:
            inputs = inputs * ops.expand_dims(ops.cast(mask, inputs.dtype), -1)
        left, right = self._pads(ops.shape(inputs)[1])
        x = ops.pad(inputs, [[0, 0], [left, right], [0, 0]])
        outputs = self.conv(x)
        if mask is not None:
            outputs = outputs * ops.expand_dims(ops.cast(self.compute_mask(inputs, mask), outputs.dtype), -1)
        return outputs

    def compute_mask(self, inputs, mask=None):
        # Output step i is valid when i * strides < the valid inputs: the mask at every stride-th step.
        return None if mask is None else mask[:, :: self.strides]

    def compute_output_shape(self, input_shape):
        steps = None if input_shape[1] is None else -(-input_shape[1] // self.strides)
        return (input_shape[0], steps, self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "strides": self.strides, "activation": keras.activations.serialize(self.activation)}
