"""`Recurrent`: `keras.layers.RNN` with the input projection hoisted out of the time loop."""

from __future__ import annotations

import keras
from keras import ops, tree

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
        # Time-major before projecting: transposing the narrow inputs is cheaper than
        # transposing the wide projection (and, in the backward pass, its gradient).
        inputs = ops.transpose(sequences, (1, 0, 2))  # (time, batch, features)
        projected = cell.project_inputs(inputs)  # (time, batch, projection_size)
        if mask is not None:
            mask = ops.transpose(mask, (1, 0))  # (time, batch)

        def step(inputs, states):
            return cell.recurrent_step(inputs, states, training=training)

        if not tree.is_nested(initial_state):
            initial_state = [initial_state]
        last_output, outputs, states = backend_rnn(
            step,
            projected,
            initial_state,
            go_backwards=self.go_backwards,
            mask=mask,
            unroll=self.unroll,
            input_length=sequences.shape[1],
            time_major=True,
            zero_output_for_mask=self.zero_output_for_mask,
            return_all_outputs=self.return_sequences,
        )
        return last_output, ops.transpose(outputs, (1, 0, 2)), states  # outputs (batch, time, units)
