"""`BatchNormLSTM`: the recurrent batch-norm LSTM as a layer that owns its loop."""

from __future__ import annotations

import keras

from layers import PACKAGE
from layers.batchnorm_lstm_cell import BatchNormLSTMCell
from layers.recurrent import Recurrent


@keras.saving.register_keras_serializable(package=PACKAGE)
class BatchNormLSTM(Recurrent):
    """An LSTM with recurrent batch normalization (`BatchNormLSTMCell`'s equations), with
    statistics per timestep over the sequences not masked there.

    Not a Keras RNN cell: a step needs its position in the sequence and which rows are padding,
    which `keras.layers.RNN` does not give a cell. This layer (a `layers.Recurrent`) hands them
    over and is the way to run bn_lstm (`RecurrentStack("bn_lstm", ...)` builds it);
    `keras.layers.RNN(BatchNormLSTMCell(...))` refuses with a message saying so.

    Args:
        units, max_steps, momentum, gamma_initial_value, epsilon, forget_bias: of the cell.
        Everything else: as `layers.Recurrent` (return_sequences, go_backwards, dropout...);
        `native=True` trains through `layers.native_lstm` (the three batch norms in the op).

    Example:
    >>> tuple(BatchNormLSTM(3, max_steps=5, return_sequences=True)(keras.ops.ones((2, 5, 4))).shape)
    (2, 5, 3)
    """

    CELL_OPTIONS = ("max_steps", "momentum", "gamma_initial_value", "epsilon", "forget_bias")

    def __init__(self, units: int, max_steps: int = 100, momentum: float = 0.99, gamma_initial_value: float = 0.1,
                 epsilon: float = 1e-3, forget_bias: float = 1.0, **kwargs):
        cell = BatchNormLSTMCell(units, max_steps=max_steps, momentum=momentum,
                                 gamma_initial_value=gamma_initial_value, epsilon=epsilon, forget_bias=forget_bias)
        super().__init__(cell, **kwargs)

    def get_config(self):
        config = super().get_config()
        config.pop("cell")
        cell = self.cell.get_config()
        return {**config, "units": self.cell.units, **{k: cell[k] for k in self.CELL_OPTIONS}}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
