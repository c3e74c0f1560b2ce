"""`Recurrent`: `keras.layers.RNN` with the input projection hoisted out of the time loop."""

from __future__ import annotations

import keras
from keras import ops, tree

from layers import PACKAGE
from layers.internals import backend_rnn
from layers.sequence_dropout import SequenceDropout


@keras.saving.register_keras_serializable(package=PACKAGE)
class Recurrent(SequenceDropout, keras.layers.RNN):
    """Runs a cell over time like `keras.layers.RNN`, faster for cells of `layers/`.

    For a cell with `project_inputs` / `recurrent_step` (every `RecurrentCell`), the input
    projection of all timesteps is one (batch * time, features) x (features, gates * units)
    matmul before the loop, and each step only adds the recurrent part. Other cells run as in
    `keras.layers.RNN`. Everything else — masking, `go_backwards`, `stateful`,
    `return_sequences`, `return_state`, `Bidirectional` — is `keras.layers.RNN`'s.

    Dropout (see `layers.sequence_dropout.SequenceDropout`): `dropout`, `recurrent_dropout`,
    `output_dropout`, `dropout_mode` ("variational": one mask per sequence; "naive": one per
    step), `weight_dropout` (DropConnect on the recurrent matrix), `seed`. Masks are sampled
    at every call, so each sequence gets its own and nothing stale is reused; with
    `recurrent_dropout` the cell must be a `RecurrentCell` (it applies the mask to h_{t-1}
    inside its recurrent matmul only).

    Args: as `keras.layers.RNN`, plus the dropout options above.

    Example:
    >>> from layers.lstm_cell import LSTMCell
    >>> tuple(Recurrent(LSTMCell(3), return_sequences=True)(keras.ops.ones((2, 5, 4))).shape)
    (2, 5, 3)
    """

    def inner_loop(self, sequences, initial_state, mask, training=False):  # private hook: layers/internals.py
        return self.run_regularized(self._hoisted_loop, sequences, initial_state, mask, training)

    def _hoisted_loop(self, sequences, initial_state, mask, training=False):
        cell = self.cell
        if not tree.is_nested(initial_state):
            initial_state = [initial_state]
        state_mask = self.state_mask(initial_state[0], training)
        if not hasattr(cell, "project_inputs"):
            if state_mask is not None:
                raise ValueError(f"recurrent_dropout needs a RecurrentCell; {type(cell).__name__} is not one")
            return super().inner_loop(sequences, initial_state, mask, training=training)
        # Time-major before projecting: transposing the narrow inputs is cheaper than
        # transposing the wide projection (and, in the backward pass, its gradient).
        inputs = ops.transpose(sequences, (1, 0, 2))  # (time, batch, features)
        if mask is not None:
            mask = ops.transpose(mask, (1, 0))  # (time, batch)
        step_inputs = cell.sequence_inputs(inputs, mask, training)  # e.g. (time, batch, projection_size)
        # Cells with per-timestep statistics (bn_lstm) also output, in training, what updates them.
        collect = bool(training) and getattr(cell, "collects_statistics", False)

        def step(inputs, states):
            return cell.recurrent_step(inputs, states, training=training, state_mask=state_mask)

        last_output, outputs, states = backend_rnn(
            step,
            step_inputs,
            initial_state,
            go_backwards=self.go_backwards,
            mask=mask,
            unroll=self.unroll,
            input_length=sequences.shape[1],
            time_major=True,
            zero_output_for_mask=self.zero_output_for_mask,
            return_all_outputs=self.return_sequences or collect,
        )
        if collect:
            (last_output, _), (outputs, statistics) = last_output, outputs
            if self.go_backwards:  # steps ran last position first
                statistics = tree.map_structure(lambda s: ops.flip(s, axis=0), statistics)
            cell.update_statistics(statistics, mask)
        return last_output, ops.transpose(outputs, (1, 0, 2)), states  # outputs (batch, time, units)

    def get_config(self):
        return {**super().get_config(), **self.dropout_config()}
