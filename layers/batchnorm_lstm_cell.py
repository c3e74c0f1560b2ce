"""LSTM with recurrent batch normalization. Reference: Cooijmans, Ballas, Laurent, Gülçehre &
Courville, 2016, "Recurrent Batch Normalization", https://arxiv.org/abs/1603.09025 (eq. 6-8,
section 4: statistics per timestep, gamma initialised to 0.1)."""

from __future__ import annotations

import keras
from keras import ops

from layers import PACKAGE
from layers.lstm_cell import LSTMCell
from layers.recurrent_cell import split_blocks

def masked_moments(x, mask, axis):
    """Mean and (biased) variance of `x` over `axis`, counting only entries where `mask` is 1."""
    count = ops.maximum(ops.sum(mask, axis=axis), 1.0)
    mean = ops.sum(x * mask, axis=axis) / count
    variance = ops.sum(ops.square(x - ops.expand_dims(mean, axis)) * mask, axis=axis) / count
    return mean, variance, ops.sum(mask, axis=axis)


def normalize(x, mean, variance, gamma, beta, epsilon):
    return (x - mean) / ops.sqrt(variance + epsilon) * gamma + beta


@keras.saving.register_keras_serializable(package=PACKAGE)
class BatchNormLSTMCell(LSTMCell):
    """An LSTM with batch-normalised input and recurrent pre-activations and cell state, gate
    order [i, f, g, o]:

        [i, f, g, o] = BN(h_{t-1} U; gamma_h, beta_h) + BN(x_t W; gamma_x, beta_x) + b
        c_t = sigma(f) * c_{t-1} + sigma(i) * tanh(g)
        h_t = sigma(o) * tanh(BN(c_t; gamma_c, beta_c))

    In training each BN uses the batch statistics of its timestep, over the sequences not
    masked (padded) there, and moves the population statistics of that timestep (position t
    of the sequence, also for `go_backwards`) towards them: `moving = momentum * moving +
    (1 - momentum) * batch`. At inference it uses the population statistics of the timestep;
    timesteps from `max_steps` on use (and in training do not move) those of `max_steps - 1`.
    Gammas start at `gamma_initial_value` (0.1, as in the paper), betas at 0.

    Not a Keras RNN cell: its steps need the mask and the position, which `keras.layers.RNN`
    does not give a cell. Run it as `layers.BatchNormLSTM` (or `RecurrentStack("bn_lstm", ...)`),
    the layer that owns its loop; `call` refuses. Each call starts again at timestep 0.

    Args:
        units, forget_bias, kernel_initializer, recurrent_initializer: as `LSTMCell`.
        max_steps: T_max, the number of timesteps with their own statistics.
        momentum: of the population statistics.  gamma_initial_value: initial gammas.
        epsilon: added to variances. Each normalisation can scale a gradient by up to
            1 / sqrt(epsilon) where a batch's values agree (few sequences left at a timestep),
            and the recurrence compounds that over steps: Keras's BatchNormalization default
            1e-3 keeps it at 32 per step (1e-5 overflowed float32 in a character LM whose last
            batches had 2 sequences).

    Example:
    >>> from layers.recurrent import Recurrent
    >>> tuple(Recurrent(BatchNormLSTMCell(3))(keras.ops.ones((2, 5, 4))).shape)
    (2, 3)
    """

    collects_statistics = True  # in training, steps also output what `update_statistics` needs
    fits_template = False  # its step also needs the mask and the position (LSTMCell's after_recurrent is not it)

    def __init__(self, units: int, max_steps: int = 100, momentum: float = 0.99, gamma_initial_value: float = 0.1,
                 epsilon: float = 1e-3, **kwargs):
        super().__init__(units, **kwargs)
        if not isinstance(max_steps, int) or max_steps < 1:
            raise ValueError(f"max_steps must be a positive integer, received max_steps={max_steps!r}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), received momentum={momentum!r}")
        if not epsilon > 0:
            raise ValueError(f"epsilon must be positive, received epsilon={epsilon!r}")
        self.max_steps, self.momentum, self.gamma_initial_value = max_steps, momentum, gamma_initial_value
        self.epsilon = epsilon

    def build_recurrent(self):
        super().build_recurrent()
        gamma = keras.initializers.Constant(self.gamma_initial_value)
        for name, size in (("input", self.projection_size), ("recurrent", self.projection_size),
                           ("cell", self.units)):
            setattr(self, f"{name}_gamma", self.add_weight(shape=(size,), name=f"{name}_gamma", initializer=gamma))
            setattr(self, f"{name}_beta", self.add_weight(shape=(size,), name=f"{name}_beta", initializer="zeros"))
            for stat, init in (("mean", "zeros"), ("variance", "ones")):
                setattr(self, f"{name}_moving_{stat}", self.add_weight(
                    shape=(self.max_steps, size), name=f"{name}_moving_{stat}", initializer=init, trainable=False))

    def call(self, inputs, states, training=False):
        raise ValueError("bn_lstm keeps statistics per timestep and is not a Keras RNN cell: run it as "
                         "layers.BatchNormLSTM (or RecurrentStack('bn_lstm', ...)), not in keras.layers.RNN")

    def population(self, name: str, positions):
        index = ops.minimum(positions, self.max_steps - 1)
        return (ops.take(getattr(self, f"{name}_moving_mean"), index, axis=0),
                ops.take(getattr(self, f"{name}_moving_variance"), index, axis=0))

    def batch_norm(self, name: str, x, mask, positions, training, moments=None):
        """BN of x (time, batch, size) or (batch, size) at `positions`, with batch statistics
        over the axis before last in training (masked entries left out; `moments` if already
        computed), population ones else."""
        if training:
            mean, variance, _ = moments or masked_moments(x, mask, axis=-2)
        else:
            mean, variance = self.population(name, positions)
        mean, variance = ops.expand_dims(mean, -2), ops.expand_dims(variance, -2)
        return normalize(x, mean, variance, getattr(self, f"{name}_gamma"), getattr(self, f"{name}_beta"),
                         self.epsilon)

    def sequence_inputs(self, inputs, mask, training):
        """inputs (time, batch, features), mask (time, batch) or None -> (time, batch,
        4 * units + 2): per step the normalised input part, then the mask and the position
        as two more columns (one tensor: the backend loop cannot infer a nested input's length)."""
        mask = self.step_mask(inputs, mask)
        columns = ops.broadcast_to(ops.cast(ops.arange(ops.shape(inputs)[0]), inputs.dtype)[:, None, None],
                                   ops.shape(mask))
        return ops.concatenate([self.normalized_inputs(inputs, mask, training), mask, columns], axis=-1)

    @staticmethod
    def step_mask(inputs, mask):
        """(time, batch, 1) floats: 1 where a step runs, from mask (time, batch) or None."""
        mask = ops.ones(ops.shape(inputs)[:2]) if mask is None else ops.cast(mask, inputs.dtype)
        return ops.expand_dims(mask, -1)

    def normalized_inputs(self, inputs, mask, training):
        """BN(x_t W) + b for inputs (time, batch, features), mask (time, batch, 1) floats: in training
        with each timestep's batch statistics, which also move the population ones."""
        projected = self.input_matmul(inputs)  # (time, batch, 4 * units)
        moments = masked_moments(projected, mask, axis=1) if training else None
        if training:
            self.move("input", *moments)
        positions = ops.arange(ops.shape(inputs)[0], dtype="int32")
        return self.batch_norm("input", projected, mask, positions, training, moments) + self.bias

    def recurrent_step(self, inputs, states, training=False, state_mask=None):
        projected, mask = inputs[:, :self.projection_size], inputs[:, self.projection_size:-1]
        position = ops.cast(inputs[0, -1], "int32")
        h_prev, c_prev = states
        recurrent = ops.matmul(self.masked(h_prev, state_mask), self.recurrent_kernel)  # (batch, 4 * units)
        i, f, g, o = split_blocks(projected + self.batch_norm("recurrent", recurrent, mask, position, training), 4)
        c = ops.sigmoid(f) * c_prev + ops.sigmoid(i) * ops.tanh(g)
        h = ops.sigmoid(o) * ops.tanh(self.batch_norm("cell", c, mask, position, training))
        return ((h, (recurrent, c)) if training else h), [h, c]

    def update_statistics(self, statistics, mask):
        """After a training sequence: `statistics` = (recurrent pre-activations, cell states),
        each (time, batch, size) in position order; mask (time, batch) or None."""
        recurrent, cell = statistics
        mask = self.step_mask(cell, mask)
        for name, values in (("recurrent", recurrent), ("cell", cell)):
            mean, variance, count = masked_moments(values, mask, axis=1)
            self.move(name, mean, variance, count)

    def move(self, name: str, mean, variance, count):
        """Moves the first min(time, max_steps) population statistics towards batch ones
        (time, size); timesteps no sequence reached (count 0) keep theirs."""
        steps = ops.minimum(ops.shape(mean)[0], self.max_steps)
        rest = self.max_steps - steps

        def padded(x):  # (time, size) -> (max_steps, size), zeros past the sequence
            return ops.concatenate([x[:steps], ops.zeros((rest,) + tuple(x.shape[1:]), x.dtype)], axis=0)

        weight = padded(ops.cast(count > 0, mean.dtype)) * (1.0 - self.momentum)  # (max_steps, 1)
        for stat, batch in (("mean", mean), ("variance", variance)):
            moving = getattr(self, f"{name}_moving_{stat}")
            moving.assign(moving + weight * (padded(batch) - moving))

    def get_config(self):
        return {**super().get_config(), "max_steps": self.max_steps, "momentum": self.momentum,
                "gamma_initial_value": self.gamma_initial_value, "epsilon": self.epsilon}
