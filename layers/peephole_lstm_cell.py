"""LSTM with diagonal peephole connections. Reference: Gers & Schmidhuber, 2000, "Recurrent
nets that time and count", https://doi.org/10.1109/IJCNN.2000.861302."""

from __future__ import annotations

import keras
from keras import ops

from layers import PACKAGE
from layers.lstm_cell import LSTMCell
from layers.recurrent_cell import split_blocks


@keras.saving.register_keras_serializable(package=PACKAGE)
class PeepholeLSTMCell(LSTMCell):
    """An LSTM whose gates also see the cell state, through diagonal weights p_i, p_f, p_o:

        [i, f, g, o] = x_t W + h_{t-1} U + b
        c_t = sigma(f + p_f * c_{t-1}) * c_{t-1} + sigma(i + p_i * c_{t-1}) * tanh(g)
        h_t = sigma(o + p_o * c_t) * tanh(c_t)

    Args, call arguments, returns and masking as `LSTMCell`; the peephole weights
    `peephole_kernel` (3, units), rows [p_i, p_f, p_o], start at zero.

    Example:
    >>> tuple(keras.layers.RNN(PeepholeLSTMCell(3))(keras.ops.ones((2, 5, 4))).shape)
    (2, 3)
    """

    def build_recurrent(self):
        super().build_recurrent()
        self.peephole_kernel = self.add_weight(shape=(3, self.units), name="peephole_kernel", initializer="zeros")

    def after_recurrent(self, projected, recurrent, states, training=False):
        c_prev = states[1]
        z = projected + recurrent  # (batch, 4 * units)
        i, f, g, o = split_blocks(z, 4)
        p_i, p_f, p_o = self.peephole_kernel[0], self.peephole_kernel[1], self.peephole_kernel[2]
        c = ops.sigmoid(f + p_f * c_prev) * c_prev + ops.sigmoid(i + p_i * c_prev) * ops.tanh(g)
        h = ops.sigmoid(o + p_o * c) * ops.tanh(c)
        return h, [h, c]
