"""Every private Keras / TensorFlow hook that `layers/` relies on, each wrapped once, with why.

Each is used only where no public API does the job; pyproject pins Keras's and TensorFlow's
minor versions, and `tests/test_internals.py` names the hook that an upgrade removed.
"""

from __future__ import annotations

import keras
import tensorflow as tf

# The backend loop that keras.layers.RNN itself runs (masking, go_backwards, unroll, XLA-safe
# while loop). `layers.Recurrent` runs it over inputs projected once for all timesteps, which
# the public RNN layer cannot do.
from keras.src.backend import rnn as backend_rnn  # noqa: F401


def time_major_rnn(step, inputs, initial_states, **kwargs):
    """`backend_rnn(..., time_major=True)` over inputs (time, batch, ...) of any time length.

    The backend takes a missing `input_length` from `inputs.shape[1]`, which in time-major
    inputs is the batch: with a static batch and a dynamic time (a `tf.function` traced for
    (1, None) inputs) its loop stopped after `batch` steps and left the other outputs zero.
    A one-element list holds the length (its maximum bounds the loop) without being taken for
    per-row lengths, which only a `tf.Tensor` is."""
    time = inputs.shape[0] if inputs.shape[0] is not None else tf.shape(inputs)[0]
    return backend_rnn(step, inputs, initial_states, time_major=True, input_length=[time], **kwargs)

# `keras.layers.RNN.inner_loop(sequences, initial_state, mask, training)`: the one method between
# RNN.call's masking/state handling and the time loop (LSTM/GRU override it for cuDNN).
# `layers.Recurrent` and `layers.fused` override it to hoist the input projection and to apply
# dropout masks (DropConnect) around the unchanged fused kernel.
RNN_INNER_LOOP = "inner_loop"


def set_untracked(obj, name: str, value) -> None:
    """Sets an attribute of a Keras layer without Keras's tracking: DropConnect puts a dropped
    tensor in place of the cell's `recurrent_kernel` for one call, and the layer must keep
    owning (and saving) the variable. `setattr` would track the tensor as a new weight."""
    object.__setattr__(obj, name, value)


def optimizer_trainable_variables(optimizer: keras.optimizers.Optimizer):
    """The variables an optimizer was told about before it was built (`Optimizer.apply` builds
    from them when called without variables, as `Model.fit` does)."""
    return optimizer._trainable_variables


def strategy_supports_no_merge_call() -> bool:
    """Whether the current tf.distribute strategy updates without a `merge_call` (and so may
    decide inside a `cond` in the replica context): what Keras's LossScaleOptimizer asks too."""
    return tf.__internal__.distribute.strategy_supports_no_merge_call()


# name -> a check that the hook is there, for tests/test_internals.py
HOOKS = {
    "keras.src.backend.rnn": lambda: callable(backend_rnn),
    "keras.layers.RNN.inner_loop": lambda: callable(getattr(keras.layers.RNN, RNN_INNER_LOOP, None))
    and callable(getattr(keras.layers.LSTM, RNN_INNER_LOOP, None)),
    "keras.optimizers.Optimizer._trainable_variables": lambda: hasattr(
        keras.optimizers.Adam(1e-3, name="probe"), "_trainable_variables"),
    "tf.__internal__.distribute.strategy_supports_no_merge_call": lambda: callable(
        tf.__internal__.distribute.strategy_supports_no_merge_call),
}
