"""LSTM cell with a forget-gate bias. Reference: Hochreiter & Schmidhuber, 1997; forget gate
Gers, Schmidhuber & Cummins, 2000; bias of 1: Jozefowicz et al., 2015,
http://proceedings.mlr.press/v37/jozefowicz15.pdf."""

from __future__ import annotations

import keras
from keras import ops

from layers import PACKAGE
from layers.recurrent_cell import GateBias, RecurrentCell, split_blocks


@keras.saving.register_keras_serializable(package=PACKAGE)
class LSTMCell(RecurrentCell):
    """Long short-term memory, gate order [i, f, g, o] (the order of Keras's LSTM weights):

        [i, f, g, o] = x_t W + h_{t-1} U + b
        c_t = sigma(f) * c_{t-1} + sigma(i) * tanh(g)
        h_t = sigma(o) * tanh(c_t)

    Args:
        units: hidden size.
        forget_bias: initial value of the forget gate's bias (1.0 keeps memory early in training).
        kernel_initializer, recurrent_initializer: as in `RecurrentCell`.

    Call arguments: inputs (batch, features), states [h, c], training.
    Returns: (h, [h, c]). Masking: handled by the wrapping RNN; the cell never sees it.

    Example:
    >>> tuple(keras.layers.RNN(LSTMCell(3))(keras.ops.ones((2, 5, 4))).shape)
    (2, 3)
    """

    projection_blocks = 4
    additive_recurrent = True  # after_recurrent starts with projected + recurrent

    def __init__(self, units: int, forget_bias: float = 1.0, **kwargs):
        self.forget_bias = forget_bias  # read by default_bias_initializer
        super().__init__(units, **kwargs)
        self.state_size = [units, units]
        self.output_size = units

    forget_gate = 1  # position of f in the gate order

    def default_bias_initializer(self):
        return GateBias(self.units, self.projection_blocks, {self.forget_gate: self.forget_bias})

    def build_recurrent(self):
        self.recurrent_kernel = self.add_weight(shape=(self.units, self.projection_size), name="recurrent_kernel",
                                                initializer=self.recurrent_initializer)

    def after_recurrent(self, projected, recurrent, states, training=False):
        c_prev = states[1]
        z = projected + recurrent  # (batch, 4 * units)
        i, f, g, o = split_blocks(z, 4)
        c = ops.sigmoid(f) * c_prev + ops.sigmoid(i) * ops.tanh(g)
        h = ops.sigmoid(o) * ops.tanh(c)
        return h, [h, c]

    def get_config(self):
        return {**super().get_config(), "forget_bias": self.forget_bias}
