"""The base of our cells: a step split into an input projection and a recurrent update."""

from __future__ import annotations

import keras
from keras import ops

from layers import PACKAGE


@keras.saving.register_keras_serializable(package=PACKAGE)
class RecurrentCell(keras.layers.Layer):
    """A Keras RNN cell whose step is `recurrent_step(project_inputs(x_t), states)`.

    `project_inputs` is the part of the step that depends on x_t alone: `x_t W + b` for all
    gates at once (one matmul). Inside `keras.layers.RNN` it runs every step; the `Recurrent`
    layer runs it once over the whole sequence (one large matmul) and loops only over
    `recurrent_step`. Both give the same numbers.

    Subclasses set `state_size`, `output_size` and `projection_size` (the width of the input
    projection) and define `build_recurrent(units)` and either `after_recurrent(projected,
    recurrent, states, training)` — the step given `recurrent` = h_{t-1} U (a "template" cell,
    whose U gradient `Recurrent` computes once per sequence in training) — or a whole
    `recurrent_step(projected, states, training, state_mask)`; `state_mask` (recurrent dropout,
    from `Recurrent`) multiplies h_{t-1} where it enters the recurrent matmul, and nowhere else
    (`self.masked(h, state_mask)`).

    Args:
        units: width of the hidden state (positive).
        kernel_initializer, recurrent_initializer, bias_initializer: for the input kernel
            (features, projection_size), the recurrent weights and the bias (None: the cell's
            default, e.g. an LSTM's forget-gate bias).
    """

    projection_blocks = 1  # projection_size = projection_blocks * units unless overridden
    projection_bias = True  # whether project_inputs adds a bias
    has_recurrent_kernel = True  # a `recurrent_kernel` weight (h_{t-1} -> gates) that DropConnect can drop
    # after_recurrent begins with projected + recurrent (one gradient for both in `layers.batched_gradient`)
    additive_recurrent = False

    def __init__(self, units: int, kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer=None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(units, int) or units <= 0:
            raise ValueError(f"units must be a positive integer, received units={units!r}")
        self.units = units
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(recurrent_initializer)
        # None: the cell's own default (zeros, or a gate bias from its options), rebuilt on load.
        self._bias_initializer_arg = bias_initializer
        self.bias_initializer = keras.initializers.get(bias_initializer or self.default_bias_initializer())

    def default_bias_initializer(self):
        return "zeros"

    @property
    def projection_size(self) -> int:
        return self.projection_blocks * self.units

    def build(self, input_shape):
        feature_dim = input_shape[-1]  # shapes may arrive as lists after a reload
        self.kernel = self.add_weight(shape=(feature_dim, self.projection_size), name="kernel",
                                      initializer=self.kernel_initializer)
        if self.projection_bias:
            self.bias = self.add_weight(shape=(self.projection_size,), name="bias",
                                        initializer=self.bias_initializer)
        self.build_recurrent()

    def project_inputs(self, inputs):
        """(..., features) -> (..., projection_size): the step's input-only part."""
        projected = self.input_matmul(inputs)
        return projected + self.bias if self.projection_bias else projected

    def sequence_inputs(self, inputs, mask, training):
        """What `Recurrent` hands the steps: the projection of the whole sequence (time, batch,
        features) at once. A cell whose step needs more (bn_lstm: the mask and the timestep)
        appends it as extra columns; mask is (time, batch) or None."""
        return self.project_inputs(inputs)

    def input_matmul(self, inputs):
        """x W for one step (batch, features) or a whole sequence (time, batch, features)."""
        if len(inputs.shape) == 3:
            # A whole sequence: one 2-D matmul. (A 3-D matmul against a 2-D kernel becomes a
            # batched matmul whose kernel gradient materialises one copy per batch row.)
            batch, steps = ops.shape(inputs)[0], ops.shape(inputs)[1]
            flat = ops.reshape(inputs, (-1, inputs.shape[-1]))  # (batch * time, features)
            return ops.reshape(ops.matmul(flat, self.kernel), (batch, steps, self.projection_size))
        return ops.matmul(inputs, self.kernel)  # (batch, projection_size)

    def recurrent_step(self, projected, states, training=False, state_mask=None):
        """The step after the input projection. A template cell (`fits_template`) defines only
        `after_recurrent`: the recurrent matmul of h_{t-1} = states[0] comes first, alone."""
        recurrent = ops.matmul(self.masked(states[0], state_mask), self.recurrent_kernel)
        return self.after_recurrent(projected, recurrent, states, training=training)

    @property
    def fits_template(self) -> bool:
        """Whether the step is `after_recurrent(projected, (h_{t-1} * state_mask) U, states)`, so
        that `layers.batched_gradient` can compute U's gradient once per sequence."""
        return callable(getattr(self, "after_recurrent", None))

    def masked(self, h, state_mask):
        """h_{t-1} as it enters the recurrent matmul: times the recurrent-dropout mask, if any."""
        return h if state_mask is None else h * state_mask

    def call(self, inputs, states, training=False):
        return self.recurrent_step(self.project_inputs(inputs), states, training=training)

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "recurrent_initializer": keras.initializers.serialize(self.recurrent_initializer),
            "bias_initializer": (None if self._bias_initializer_arg is None
                                 else keras.initializers.serialize(self.bias_initializer)),
        }


@keras.saving.register_keras_serializable(package=PACKAGE)
class GateBias(keras.initializers.Initializer):
    """Bias of `blocks` gates of `units` each: zeros, except gate `i` filled with `values[i]`
    (a forget-gate bias of 1 is `GateBias(units, 4, {1: 1.0})`)."""

    def __init__(self, units: int, blocks: int, values: dict):
        self.units, self.blocks = units, blocks
        self.values = {int(k): float(v) for k, v in values.items()}

    def __call__(self, shape, dtype=None):
        parts = [ops.full((self.units,), self.values.get(i, 0.0), dtype=dtype) for i in range(self.blocks)]
        return ops.concatenate(parts)

    def get_config(self):
        return {"units": self.units, "blocks": self.blocks, "values": {str(k): v for k, v in self.values.items()}}


def split_blocks(x, count: int):
    """Splits the last axis into `count` equal blocks (gate pre-activations)."""
    return ops.split(x, count, axis=-1)
