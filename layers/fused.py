"""The built-in `keras.layers.LSTM` / `GRU` (cuDNN on a GPU) with our dropout options, DropConnect
on the recurrent matrix included, without leaving the fused kernel.

Keras's own `recurrent_dropout` switches cuDNN off; DropConnect does not need to: the dropped
recurrent matrix is computed once per batch and handed to the unchanged fused recurrence.
"""

from __future__ import annotations

import keras

from layers import PACKAGE
from layers.sequence_dropout import SequenceDropout


class _Fused(SequenceDropout):
    def __init__(self, units, **kwargs):
        super().__init__(units, **kwargs)
        if self.state_dropout:
            raise ValueError(f"{type(self).__name__} keeps the fused kernel, which has no recurrent dropout: "
                             "use layers.Recurrent for recurrent_dropout, or weight_dropout (DropConnect) here")

    def inner_loop(self, sequences, initial_state, mask, training=False):  # private hook: layers/internals.py
        return self.run_regularized(super().inner_loop, sequences, initial_state, mask, training)

    def get_config(self):
        return {**super().get_config(), **self.dropout_config()}


@keras.saving.register_keras_serializable(package=PACKAGE)
class FusedLSTM(_Fused, keras.layers.LSTM):
    """`keras.layers.LSTM` plus `dropout`, `output_dropout`, `dropout_mode`, `weight_dropout`
    and `seed` of `SequenceDropout` (`recurrent_dropout` is refused: it would leave cuDNN).

    Example:
    >>> tuple(FusedLSTM(3, weight_dropout=0.5)(keras.ops.ones((2, 5, 4)), training=True).shape)
    (2, 3)
    """


@keras.saving.register_keras_serializable(package=PACKAGE)
class FusedGRU(_Fused, keras.layers.GRU):
    """`keras.layers.GRU` with the options of `FusedLSTM`."""
