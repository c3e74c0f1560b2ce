"""Structurally constrained recurrent network. Reference: Mikolov et al., 2015, "Learning
Longer Memory in Recurrent Neural Networks", https://arxiv.org/abs/1412.7753."""

from __future__ import annotations

import keras
from keras import ops

from layers import PACKAGE
from layers.recurrent_cell import RecurrentCell


@keras.saving.register_keras_serializable(package=PACKAGE)
class SCRNCell(RecurrentCell):
    """Slow context units beside a fast sigmoid hidden layer:

        [b_t, a_t] = x_t W + bias          (W = [B | A]: context then hidden projection)
        s_t = (1 - alpha) * b_t + alpha * s_{t-1}
        h_t = sigmoid(s_t P + a_t + h_{t-1} R)
        output: [h_t, s_t]

    Args:
        units: hidden size.  context_units: size of the slow context s (default units // 2,
            at least 1).  alpha: fixed decay of the context (0.95 in the paper).
        kernel_initializer, recurrent_initializer: as in `RecurrentCell` (R and P use the
            recurrent initializer).

    Call arguments: inputs (batch, features), states [h, s], training.
    Returns: ([h, s] concatenated (batch, units + context_units), [h, s]).
    Masking: handled by the wrapping RNN; the cell never sees it.

    Example:
    >>> tuple(keras.layers.RNN(SCRNCell(4, context_units=2))(keras.ops.ones((2, 5, 3))).shape)
    (2, 6)
    """

    def __init__(self, units: int, context_units: int | None = None, alpha: float = 0.95, **kwargs):
        super().__init__(units, **kwargs)
        if not 0.0 <= alpha < 1.0:
            raise ValueError(f"alpha must be in [0, 1), received alpha={alpha}")
        self.context_units = context_units if context_units is not None else max(units // 2, 1)
        if self.context_units <= 0:
            raise ValueError(f"context_units must be positive, received context_units={context_units}")
        self.alpha = alpha
        self.state_size = [units, self.context_units]
        self.output_size = units + self.context_units

    @property
    def projection_size(self) -> int:
        return self.context_units + self.units

    def build_recurrent(self):
        self.recurrent_kernel = self.add_weight(shape=(self.units, self.units), name="recurrent_kernel",
                                                initializer=self.recurrent_initializer)
        self.context_kernel = self.add_weight(shape=(self.context_units, self.units), name="context_kernel",
                                              initializer="glorot_uniform")

    def after_recurrent(self, projected, recurrent, states, training=False):
        s_prev = states[1]
        b, a = projected[:, : self.context_units], projected[:, self.context_units :]
        s = (1.0 - self.alpha) * b + self.alpha * s_prev
        h = ops.sigmoid(ops.matmul(s, self.context_kernel) + a + recurrent)
        return ops.concatenate([h, s], axis=-1), [h, s]

    def get_config(self):
        return {**super().get_config(), "context_units": self.context_units, "alpha": self.alpha}
