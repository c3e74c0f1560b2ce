"""LSTM with coupled input and forget gates (CIFG). Reference: Greff et al., 2017, "LSTM: A
Search Space Odyssey", https://arxiv.org/abs/1503.04069."""

from __future__ import annotations

import keras
from keras import ops

from layers import PACKAGE
from layers.lstm_cell import LSTMCell
from layers.recurrent_cell import split_blocks


@keras.saving.register_keras_serializable(package=PACKAGE)
class CIFGLSTMCell(LSTMCell):
    """An LSTM whose input gate is one minus its forget gate; gate order [f, g, o]:

        [f, g, o] = x_t W + h_{t-1} U + b
        c_t = sigma(f) * c_{t-1} + (1 - sigma(f)) * tanh(g)
        h_t = sigma(o) * tanh(c_t)

    Args, call arguments, returns and masking as `LSTMCell`.

    Example:
    >>> tuple(keras.layers.RNN(CIFGLSTMCell(3))(keras.ops.ones((2, 5, 4))).shape)
    (2, 3)
    """

    projection_blocks = 3
    forget_gate = 0

    def after_recurrent(self, projected, recurrent, states, training=False):
        c_prev = states[1]
        z = projected + recurrent  # (batch, 3 * units)
        f, g, o = split_blocks(z, 3)
        f = ops.sigmoid(f)
        c = f * c_prev + (1.0 - f) * ops.tanh(g)
        h = ops.sigmoid(o) * ops.tanh(c)
        return h, [h, c]

