"""Elman (simple) recurrent cell; with ReLU and an identity recurrent matrix, the IRNN.

References: Elman, 1990, https://doi.org/10.1207/s15516709cog1402_1; Le, Jaitly & Hinton,
2015, "A Simple Way to Initialize Recurrent Networks of Rectified Linear Units",
https://arxiv.org/abs/1504.00941.
"""

from __future__ import annotations

import keras

from layers import PACKAGE
from layers.recurrent_cell import RecurrentCell


@keras.saving.register_keras_serializable(package=PACKAGE)
class ElmanCell(RecurrentCell):
    """h_t = activation(x_t W + h_{t-1} U + b).

    The IRNN is `ElmanCell(units, activation="relu", recurrent_initializer=Identity(gain))` with
    a zero bias (`layers.cells.get("irnn", units)`).

    Args:
        units: hidden size.  activation: "tanh" (default) or "relu" (IRNN), or any Keras name.
        kernel_initializer, recurrent_initializer, bias_initializer: as in `RecurrentCell`.

    Call arguments: inputs (batch, features), states [h], training.
    Returns: (h, [h]). Masking: handled by the wrapping RNN; the cell never sees it.

    Example:
    >>> rnn = keras.layers.RNN(ElmanCell(3))
    >>> tuple(rnn(keras.ops.ones((2, 5, 4))).shape)
    (2, 3)
    """

    additive_recurrent = True  # after_recurrent starts with projected + recurrent

    def __init__(self, units: int, activation="tanh", **kwargs):
        super().__init__(units, **kwargs)
        self.activation = keras.activations.get(activation)
        self.state_size = [units]
        self.output_size = units

    def build_recurrent(self):
        self.recurrent_kernel = self.add_weight(shape=(self.units, self.units), name="recurrent_kernel",
                                                initializer=self.recurrent_initializer)

    def after_recurrent(self, projected, recurrent, states, training=False):
        h = self.activation(projected + recurrent)
        return h, [h]

    def get_config(self):
        return {**super().get_config(), "activation": keras.activations.serialize(self.activation)}
