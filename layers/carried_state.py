"""Truncated backpropagation through time inside `Model.fit`: a recurrent stack whose final
states carry over to the next batch (row by row), unless that row's chunk starts a document.

Reference: Williams & Peng, 1990, "An efficient gradient-based algorithm for on-line training
of recurrent network trajectories" (truncated BPTT); the stream layout is
`pipelines.streams.stream_layout`.
"""

from __future__ import annotations

import keras
from keras import ops

from layers import PACKAGE
from layers.recurrent_stack import RecurrentStack


@keras.saving.register_keras_serializable(package=PACKAGE)
class CarriedState(keras.layers.Layer):
    """Runs `stack` (a unidirectional `RecurrentStack` with `return_sequences=True` and
    `return_state=True`) on a chunk, starting from the states the previous call ended with;
    rows whose `reset` is true start from zeros. Gradients stop at the chunk boundary: the
    carried states are variables, not a path back into the previous batch.

    The states are non-trainable variables of shape (batch_size, units): every batch must have
    `batch_size` rows (`pipelines.streams` makes them so). They carry through training and
    evaluation alike; a stream's first chunk resets them. `reset_states()` zeros them.

    Call arguments: inputs (batch_size, steps, features), reset (batch_size,) bool,
    inputs_mask (batch_size, steps) (Keras fills it from the inputs' mask, as it names the
    mask of each of several tensor arguments), training. Returns: the stack's sequence output (batch_size, steps, units).

    Example:
    >>> stack = RecurrentStack("gru", [4], return_sequences=True, return_state=True)
    >>> carried = CarriedState(stack, batch_size=2)
    >>> tuple(carried(keras.ops.ones((2, 3, 5)), keras.ops.array([True, False])).shape)
    (2, 3, 4)
    """

    def __init__(self, stack: RecurrentStack, batch_size: int, **kwargs):
        super().__init__(**kwargs)
        if not (stack.return_sequences and stack.return_state) or stack.bidirectional:
            raise ValueError("CarriedState needs a unidirectional RecurrentStack with return_sequences=True and "
                             "return_state=True (a backward direction has no state to carry forward)")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, received {batch_size}")
        self.stack, self.batch_size = stack, batch_size
        self.supports_masking = True

    def build(self, inputs_shape, reset_shape=None):
        shape = (self.batch_size, *tuple(inputs_shape)[1:])
        self.stack.build(shape)
        _, *state_shapes = self.stack.compute_output_shape(shape)
        self.carried = [self.add_weight(shape=(self.batch_size, s[-1]), initializer="zeros", trainable=False,
                                        name=f"carried_state_{i}") for i, s in enumerate(state_shapes)]

    def call(self, inputs, reset, inputs_mask=None, training=None):
        if inputs.shape[0] is not None and inputs.shape[0] != self.batch_size:
            raise ValueError(f"CarriedState was built for batches of {self.batch_size} rows (one per stream), "
                             f"received {inputs.shape[0]}")
        keep = 1.0 - ops.cast(ops.reshape(reset, (-1, 1)), self.carried[0].dtype)
        initial = [ops.convert_to_tensor(state) * keep for state in self.carried]
        outputs, *states = self.stack(inputs, mask=inputs_mask, training=training, initial_state=initial)
        for variable, state in zip(self.carried, states):
            variable.assign(ops.stop_gradient(state))
        return outputs

    def reset_states(self):
        for variable in self.carried:
            variable.assign(ops.zeros_like(variable))

    def compute_output_spec(self, inputs, reset, inputs_mask=None, training=None):
        units = self.stack.units[-1]
        return keras.KerasTensor((inputs.shape[0], inputs.shape[1], units), dtype=self.compute_dtype)

    def compute_mask(self, inputs, previous_mask=None):
        return previous_mask

    def get_config(self):
        return {**super().get_config(), "stack": keras.saving.serialize_keras_object(self.stack),
                "batch_size": self.batch_size}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["stack"] = keras.saving.deserialize_keras_object(config["stack"])
        return cls(**config)
