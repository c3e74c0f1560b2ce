"""`Recurrent`: `keras.layers.RNN` with the input projection hoisted out of the time loop."""

from __future__ import annotations

import keras
from keras import tree

# The backend loop that keras.layers.RNN itself runs (masking, go_backwards, unroll). It is
# private: this is the one place it is imported, and pyproject pins Keras's minor version.
from keras.src.backend import rnn as backend_rnn

from layers import PACKAGE


@keras.saving.register_keras_serializable(package=PACKAGE)
class Recurrent(keras.layers.RNN):
    """Runs a cell over time like `keras.layers.RNN`, faster for cells of `layers/`.

    For a cell with `project_inputs` / `recurrent_step` (every `RecurrentCell`), the input
    projection of all timesteps is one (batch * time, features) x (features, gates * units)
    matmul before the loop, and each step only adds the recurrent part. Other cells run as in
    `keras.layers.RNN`. Everything else — masking, `go_backwards`, `stateful`,
    `return_sequences`, `return_state`, `Bidirectional` — is `keras.layers.RNN`'s.

    Args: as `keras.layers.RNN`.

    Example:
    >>> from layers.lstm_cell import LSTMCell
    >>> Recurrent(LSTMCell(3), return_sequences=True)(keras.ops.ones((2, 5, 4))).shape
    (2, 5, 3)
    """

    def inner_loop(self, sequences, initial_state, mask, training=False):
        cell = self.cell
        if not hasattr(cell, "project_inputs"):
            return super().inner_loop(sequences, initial_state, mask, training=training)
        projected = cell.project_inputs(sequences)  # (batch, time, projection_size)

        def step(inputs, states):
            return cell.recurrent_step(inputs, states, training=training)

        if not tree.is_nested(initial_state):
            initial_state = [initial_state]
        return backend_rnn(
            step,
            projected,
            initial_state,
            go_backwards=self.go_backwards,
            mask=mask,
            unroll=self.unroll,
            input_length=sequences.shape[1],
            zero_output_for_mask=self.zero_output_for_mask,
            return_all_outputs=self.return_sequences,
        )
