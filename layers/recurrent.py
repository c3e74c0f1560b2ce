"""`Recurrent`: `keras.layers.RNN` with the input projection hoisted out of the time loop."""

from __future__ import annotations

import warnings

import keras
import tensorflow as tf
from keras import ops, tree

from layers import PACKAGE
from layers import native_lstm
from layers.batched_gradient import batched_gradient_rnn
from layers.internals import time_major_rnn
from layers.recurrent_cell import RecurrentCell
from layers.sequence_dropout import SequenceDropout

HALF = ("bfloat16", "float16")


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

    In training, a template cell (`RecurrentCell.fits_template`: lstm, peephole_lstm,
    cifg_lstm, gru with `reset_after`, elman, irnn, layernorm_lstm, scrn) runs the loop of
    `layers.batched_gradient`, whose backward pass computes the recurrent kernel's gradient as
    one matmul over all steps, as the fused kernels do (`batched_gradient=False`: autodiff of
    the plain loop; same numbers to rounding).

    `native=True` (`LSTMCell`, `LayerNormLSTMCell` or `BatchNormLSTMCell`, without `recurrent_dropout`
    or `unroll`) trains through `layers.native_lstm`: a CPU op over MKL's packed GEMM, built on
    first use (the `native` extra), outside XLA, so the model is compiled with
    `jit_compile=False`; inference and exports run the loop above. Its gradients equal the plain
    loop's to rounding.

    Under a half-precision policy (`mixed_bfloat16`, `mixed_float16`) on a machine without a
    GPU, a `RecurrentCell` runs in float32 with a warning: XLA emulates half precision on CPUs
    and our cells trained 4x slower in it; the layers around it keep the policy.

    Args: as `keras.layers.RNN`, plus the dropout options above, `batched_gradient` and `native`.

    Example:
    >>> from layers.lstm_cell import LSTMCell
    >>> tuple(Recurrent(LSTMCell(3), return_sequences=True)(keras.ops.ones((2, 5, 4))).shape)
    (2, 5, 3)
    """

    def __init__(self, *args, batched_gradient: bool = True, native: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.batched_gradient, self.native = bool(batched_gradient), bool(native)
        if self.native and (type(self.cell) not in native_lstm.CELLS or self.state_dropout or self.unroll):
            raise ValueError(f"native=True runs layers.LSTMCell, LayerNormLSTMCell or BatchNormLSTMCell without "
                             f"recurrent_dropout or unroll; received {type(self.cell).__name__}, "
                             f"recurrent_dropout={self.state_dropout}, unroll={self.unroll}")
        if self.compute_dtype in HALF and isinstance(self.cell, RecurrentCell) and not tf.config.list_physical_devices(
                "GPU"):
            # XLA on a CPU emulates bfloat16 elementwise: our cells trained 4x slower under
            # mixed_bfloat16 than in float32 (keras.layers.LSTM, oneDNN, gains 1.1-1.3x).
            warnings.warn(f"{type(self.cell).__name__} runs in float32 on this CPU under the {self.dtype_policy.name!r} "
                          "policy: XLA emulates half precision on CPUs (4x slower); the layers around it keep the "
                          "policy, and keras.layers.LSTM / GRU (model.implementation=keras) run it natively",
                          stacklevel=2)
            self.dtype_policy = self.cell.dtype_policy = "float32"

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
        if training and self.native:
            last_output, outputs, states = native_lstm.cell_sequence(
                cell, inputs, list(initial_state), mask, self.go_backwards, self.zero_output_for_mask, self.name)
            return last_output, ops.transpose(outputs, (1, 0, 2)), states
        step_inputs = cell.sequence_inputs(inputs, mask, training)  # e.g. (time, batch, projection_size)
        # Cells with per-timestep statistics (bn_lstm) also output, in training, what updates them.
        collect = bool(training) and getattr(cell, "collects_statistics", False)

        if training and self.batched_gradient and getattr(cell, "fits_template", False) and not self.unroll:
            last_output, outputs, states = batched_gradient_rnn(
                cell, step_inputs, list(initial_state), mask=mask, state_mask=state_mask, go_backwards=self.go_backwards,
                zero_output_for_mask=self.zero_output_for_mask, training=training)
            return last_output, ops.transpose(outputs, (1, 0, 2)), states

        def step(inputs, states):
            return cell.recurrent_step(inputs, states, training=training, state_mask=state_mask)

        last_output, outputs, states = time_major_rnn(
            step,
            step_inputs,
            initial_state,
            go_backwards=self.go_backwards,
            mask=mask,
            unroll=self.unroll,
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
        return {**super().get_config(), **self.dropout_config(), "batched_gradient": self.batched_gradient,
                "native": self.native}
