"""Gated recurrent unit. Reference: Cho et al., 2014, https://arxiv.org/abs/1406.1078; the
reset-after variant is the one cuDNN implements."""

from __future__ import annotations

import keras
from keras import ops

from layers import PACKAGE
from layers.recurrent_cell import GateBias, RecurrentCell, split_blocks


@keras.saving.register_keras_serializable(package=PACKAGE)
class GRUCell(RecurrentCell):
    """A GRU with gate order [z, r, h] (Keras's), and Cho et al.'s update convention:

        [a_z, a_r, a_h] = x_t W + b
        z = sigma(a_z + h_{t-1} U_z),  r = sigma(a_r + h_{t-1} U_r)
        h~ = tanh(a_h + (r * h_{t-1}) U_h)                      (reset_after=False)
        h~ = tanh(a_h + r * (h_{t-1} U_h + b_h))                (reset_after=True, cuDNN's)
        h_t = (1 - z) * h_{t-1} + z * h~

    Note that Keras's GRU uses the opposite convention (its z keeps the old state).

    Args:
        units: hidden size.
        reset_after: apply the reset gate after the recurrent matmul (one matmul per step,
            and a separate recurrent bias `recurrent_bias` (3 * units)).
        update_bias: initial bias of the update gate z. A negative value (say -1.0) starts the
            cell close to carrying its state unchanged, as a forget bias of 1 does for an LSTM.
        kernel_initializer, recurrent_initializer: as in `RecurrentCell`.

    Call arguments: inputs (batch, features), states [h], training.
    Returns: (h, [h]). Masking: handled by the wrapping RNN; the cell never sees it.

    Example:
    >>> tuple(keras.layers.RNN(GRUCell(3))(keras.ops.ones((2, 5, 4))).shape)
    (2, 3)
    """

    projection_blocks = 3

    def __init__(self, units: int, reset_after: bool = False, update_bias: float = 0.0, **kwargs):
        self.update_bias = update_bias  # read by default_bias_initializer
        super().__init__(units, **kwargs)
        self.reset_after = reset_after
        self.state_size = [units]
        self.output_size = units

    def default_bias_initializer(self):
        return GateBias(self.units, 3, {0: self.update_bias})

    def build_recurrent(self):
        self.recurrent_kernel = self.add_weight(shape=(self.units, 3 * self.units), name="recurrent_kernel",
                                                initializer=self.recurrent_initializer)
        if self.reset_after:
            self.recurrent_bias = self.add_weight(shape=(3 * self.units,), name="recurrent_bias", initializer="zeros")

    @property
    def fits_template(self) -> bool:
        return self.reset_after  # otherwise the candidate's matmul needs r first

    def after_recurrent(self, projected, recurrent, states, training=False):
        """reset_after only: `recurrent` = h_{t-1} U, (batch, 3 * units)."""
        a_z, a_r, a_h = split_blocks(projected, 3)
        r_z, r_r, r_h = split_blocks(recurrent + self.recurrent_bias, 3)
        z, r = ops.sigmoid(a_z + r_z), ops.sigmoid(a_r + r_r)
        return self.update(states[0], z, ops.tanh(a_h + r * r_h))

    def recurrent_step(self, projected, states, training=False, state_mask=None):
        if self.reset_after:
            return super().recurrent_step(projected, states, training, state_mask)
        h_prev = states[0]
        h_in = self.masked(h_prev, state_mask)  # in the matmuls only; the update keeps h_prev
        a_z, a_r, a_h = split_blocks(projected, 3)
        rec = ops.matmul(h_in, self.recurrent_kernel[:, : 2 * self.units])  # (batch, 2 * units)
        r_z, r_r = split_blocks(rec, 2)
        z, r = ops.sigmoid(a_z + r_z), ops.sigmoid(a_r + r_r)
        return self.update(h_prev, z, ops.tanh(a_h + ops.matmul(r * h_in, self.recurrent_kernel[:, 2 * self.units :])))

    @staticmethod
    def update(h_prev, z, candidate):
        h = (1.0 - z) * h_prev + z * candidate
        return h, [h]

    def get_config(self):
        return {**super().get_config(), "reset_after": self.reset_after, "update_bias": self.update_bias}
