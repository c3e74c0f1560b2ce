"""LSTM with coupled input and forget gates (CIFG). Reference: Greff et al., 2017, "LSTM: A
Search Space Odyssey", https://arxiv.org/abs/1503.04069."""

from __future__ import annotations

import keras
from keras import ops

from layers import PACKAGE
from layers.recurrent_cell import GateBias, RecurrentCell, split_blocks


@keras.saving.register_keras_serializable(package=PACKAGE)
class CIFGLSTMCell(RecurrentCell):
    """An LSTM whose input gate is one minus its forget gate; gate order [f, g, o]:

        [f, g, o] = x_t W + h_{t-1} U + b
        c_t = sigma(f) * c_{t-1} + (1 - sigma(f)) * tanh(g)
        h_t = sigma(o) * tanh(c_t)

    Args:
        units: hidden size.  forget_bias: initial bias of the forget gate (1.0).
        kernel_initializer, recurrent_initializer: as in `RecurrentCell`.

    Call arguments: inputs (batch, features), states [h, c], training.
    Returns: (h, [h, c]). Masking: handled by the wrapping RNN; the cell never sees it.

    Example:
    >>> keras.layers.RNN(CIFGLSTMCell(3))(keras.ops.ones((2, 5, 4))).shape
    (2, 3)
    """

    projection_blocks = 3

    def __init__(self, units: int, forget_bias: float = 1.0, **kwargs):
        kwargs.setdefault("bias_initializer", GateBias(units, 3, {0: forget_bias}))
        super().__init__(units, **kwargs)
        self.forget_bias = forget_bias
        self.state_size = [units, units]
        self.output_size = units

    def build_recurrent(self):
        self.recurrent_kernel = self.add_weight(shape=(self.units, 3 * self.units), name="recurrent_kernel",
                                                initializer=self.recurrent_initializer)

    def recurrent_step(self, projected, states, training=False):
        h_prev, c_prev = states
        z = projected + ops.matmul(h_prev, self.recurrent_kernel)  # (batch, 3 * units)
        f, g, o = split_blocks(z, 3)
        f = ops.sigmoid(f)
        c = f * c_prev + (1.0 - f) * ops.tanh(g)
        h = ops.sigmoid(o) * ops.tanh(c)
        return h, [h, c]

    def get_config(self):
        return {**super().get_config(), "forget_bias": self.forget_bias}
