"""Dropout for recurrent layers: variational (one mask per sequence), naive (a mask per
timestep) and DropConnect on the recurrent weights, shared by `Recurrent` and the fused layers.

References: Gal & Ghahramani, 2016, "A Theoretically Grounded Application of Dropout in Recurrent
Neural Networks", https://arxiv.org/abs/1512.05287 (variational); Zaremba, Sutskever & Vinyals,
2014, https://arxiv.org/abs/1409.2329 (naive, non-recurrent connections only); Merity, Keskar &
Socher, 2017, "Regularizing and Optimizing LSTM Language Models" (AWD-LSTM),
https://arxiv.org/abs/1708.02182 (DropConnect on the recurrent matrix).

Every mask is inverted dropout: kept units are scaled by 1 / (1 - rate), so the expected
activation is unchanged and inference (no mask) needs no rescaling.
"""

from __future__ import annotations

import contextlib

import keras
import tensorflow as tf
from keras import ops

from layers.internals import set_untracked

MODES = ("variational", "naive")


def check_rate(name: str, rate: float) -> float:
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"{name} must be in [0, 1), received {name}={rate!r}")
    return float(rate)


def dropout_mask(shape, rate: float, seed: keras.random.SeedGenerator):
    """A mask of `shape` with entries 0 (probability `rate`) or 1 / (1 - rate).

    Drawn with TensorFlow's Philox generator: under XLA on a CPU, the default algorithm that
    `keras.random.dropout` uses ("auto_select") is about 70x slower (95 ms against 1.4 ms for
    400,000 numbers), which made per-step masks 4x slower than the whole training step.
    """
    state = seed.next()  # advances the generator: every call draws a new mask
    state = tf.cast(tf.math.floormod(state, tf.int32.max - 1), tf.int32)  # as keras.random does for XLA
    keep = tf.random.stateless_uniform(shape, seed=state, alg="philox") >= rate
    return tf.cast(keep, keras.backend.floatx()) / (1.0 - rate)


def dropout(x, rate: float, seed: keras.random.SeedGenerator):
    """Inverted dropout of every entry of `x` (a new draw per entry)."""
    return x * ops.cast(dropout_mask(ops.shape(x), rate, seed), x.dtype)


@contextlib.contextmanager
def substituted(obj, name: str, value):
    """Temporarily replaces attribute `name` of a layer by `value` (a tensor), bypassing Keras's
    attribute tracking, so the layer keeps owning (and saving) its variable."""
    original = getattr(obj, name)
    set_untracked(obj, name, value)
    try:
        yield
    finally:
        set_untracked(obj, name, original)


class SequenceDropout:
    """Mixin for a recurrent layer (a `keras.layers.RNN` subclass): dropout on its inputs, its
    recurrent state and its outputs, and DropConnect on its cell's recurrent matrix.

    Args:
        dropout: rate on the inputs (the same features dropped at every step of a sequence when
            `dropout_mode="variational"`, a new mask per step when `"naive"`).
        recurrent_dropout: rate on the hidden state h_{t-1} where it enters the recurrent
            matmul (variational only; the cell state c of an LSTM is never dropped).
        output_dropout: rate on the outputs (per sequence or per step, as `dropout`).
        dropout_mode: `"variational"` (Gal & Ghahramani) or `"naive"` (Zaremba et al.: a new
            mask per timestep, and no dropout on the recurrent connection).
        weight_dropout: DropConnect rate on the cell's `recurrent_kernel`, one mask per batch.
        seed: int seed of the masks (None: random).

    All of it acts only when called with `training=True`.
    """

    def __init__(self, *args, dropout: float = 0.0, recurrent_dropout: float = 0.0, output_dropout: float = 0.0,
                 dropout_mode: str = "variational", weight_dropout: float = 0.0, seed: int | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        if dropout_mode not in MODES:
            raise ValueError(f"dropout_mode must be one of {MODES}, received {dropout_mode!r}")
        self.input_dropout = check_rate("dropout", dropout)
        self.state_dropout = check_rate("recurrent_dropout", recurrent_dropout)
        self.output_dropout = check_rate("output_dropout", output_dropout)
        self.weight_dropout = check_rate("weight_dropout", weight_dropout)
        self.dropout_mode = dropout_mode
        if dropout_mode == "naive" and self.state_dropout:
            raise ValueError("naive dropout acts on non-recurrent connections only: recurrent_dropout must be 0 "
                             f"with dropout_mode='naive' (received {recurrent_dropout}); use 'variational'")
        if self.weight_dropout and not getattr(self.cell, "has_recurrent_kernel", True):
            raise ValueError(f"weight_dropout needs a cell with a recurrent_kernel; {type(self.cell).__name__} has none")
        self.dropout_seed = seed
        if self.input_dropout or self.state_dropout or self.output_dropout or self.weight_dropout:
            self.dropout_seed_generator = keras.random.SeedGenerator(seed)

    @property
    def variational(self) -> bool:
        return self.dropout_mode == "variational"

    def run_regularized(self, loop, sequences, initial_state, mask, training):
        """`loop(sequences, initial_state, mask, training)` (a layer's inner loop) with input
        dropout before it, DropConnect-ed weights during it and output dropout after it."""
        sequences = self.drop_inputs(sequences, training)
        with self.dropped_weights(training):
            last_output, outputs, states = loop(sequences, initial_state, mask, training=training)
        last_output, outputs = self.drop_outputs(last_output, outputs, training)
        return last_output, outputs, states

    def drop_inputs(self, sequences, training):
        """(batch, time, features) with input dropout applied."""
        if not (training and self.input_dropout):
            return sequences
        if self.variational:
            mask = dropout_mask((ops.shape(sequences)[0], sequences.shape[-1]), self.input_dropout,
                                self.dropout_seed_generator)
            return sequences * ops.cast(mask, sequences.dtype)[:, None, :]
        return dropout(sequences, self.input_dropout, self.dropout_seed_generator)

    def state_mask(self, state, training):
        """The mask of h_{t-1} (batch, state width), or None."""
        if not (training and self.state_dropout):
            return None
        return ops.cast(dropout_mask(ops.shape(state), self.state_dropout, self.dropout_seed_generator), state.dtype)

    def drop_outputs(self, last_output, outputs, training):
        """Output dropout on the last output (batch, units) and the sequence (batch, time, units)."""
        if not (training and self.output_dropout):
            return last_output, outputs
        if self.variational:
            mask = ops.cast(dropout_mask(ops.shape(last_output), self.output_dropout, self.dropout_seed_generator),
                            outputs.dtype)
            return last_output * mask, outputs * mask[:, None, :]
        # A new draw per entry: only for what the layer returns (RNN.call returns one of the two).
        if self.return_sequences:
            return last_output, dropout(outputs, self.output_dropout, self.dropout_seed_generator)
        return dropout(last_output, self.output_dropout, self.dropout_seed_generator), outputs

    def dropped_weights(self, training):
        """A context in which the cell's `recurrent_kernel` is DropConnect-ed (one mask for the
        whole batch; the variable itself is untouched)."""
        if not (training and self.weight_dropout):
            return contextlib.nullcontext()
        if not hasattr(self.cell, "recurrent_kernel"):
            raise ValueError(f"weight_dropout needs a cell with a recurrent_kernel; {type(self.cell).__name__} has none")
        kernel = self.cell.recurrent_kernel
        dropped = dropout(ops.convert_to_tensor(kernel), self.weight_dropout, self.dropout_seed_generator)
        return substituted(self.cell, "recurrent_kernel", dropped)

    def dropout_config(self) -> dict:
        return {"dropout": self.input_dropout, "recurrent_dropout": self.state_dropout,
                "output_dropout": self.output_dropout, "dropout_mode": self.dropout_mode,
                "weight_dropout": self.weight_dropout, "seed": self.dropout_seed}
