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

    Under a tf.distribute strategy with R replicas each replica gets batch_size / R consecutive
    rows (replica k the k-th block): it starts from its block of the carried states, and the new
    states of all replicas are gathered back into the whole (batch_size, units), so that every
    replica holds the same variable and a checkpoint has every stream's state.

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
        # Every replica assigns the same gathered value: the first replica's is the variable's.
        self.carried = [self.add_weight(shape=(self.batch_size, s[-1]), initializer="zeros", trainable=False,
                                        aggregation="only_first_replica", name=f"carried_state_{i}")
                        for i, s in enumerate(state_shapes)]

    def _replica_block(self):
        """(this replica's index, its rows, the replica context) under a strategy with several
        replicas; (0, batch_size, None) otherwise."""
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            context = tf.distribute.get_replica_context()
            replicas = context.num_replicas_in_sync if context is not None else 1
            if replicas > 1:
                if self.batch_size % replicas:
                    raise ValueError(f"CarriedState's batch_size ({self.batch_size} streams) must divide evenly "
                                     f"among the {replicas} replicas")
                return context.replica_id_in_sync_group, self.batch_size // replicas, context
        return 0, self.batch_size, None

    @staticmethod
    def _building_under_strategy() -> bool:
        """Whether Keras calls the model in a strategy's cross-replica context, as it does once
        before `fit` or `evaluate` to build the metrics (with one replica's part of a batch)."""
        if keras.backend.backend() != "tensorflow":
            return False
        import tensorflow as tf

        return tf.distribute.has_strategy() and tf.distribute.in_cross_replica_context() and \
            tf.distribute.get_strategy().num_replicas_in_sync > 1

    def call(self, inputs, reset, inputs_mask=None, training=None):
        if self._building_under_strategy():  # from zeros, and nothing carried
            zeros = [ops.zeros((ops.shape(inputs)[0], state.shape[-1]), state.dtype) for state in self.carried]
            return self.stack(inputs, mask=inputs_mask, training=training, initial_state=zeros)[0]
        replica, rows, context = self._replica_block()
        if inputs.shape[0] is not None and inputs.shape[0] != rows:
            raise ValueError(f"CarriedState was built for batches of {self.batch_size} rows (one per stream), "
                             f"received {inputs.shape[0]}" + (f" on one of several replicas (expected {rows})"
                                                             if context is not None else ""))
        keep = 1.0 - ops.cast(ops.reshape(reset, (-1, 1)), self.carried[0].dtype)
        initial = [ops.convert_to_tensor(state) * keep if context is None else
                   ops.slice(ops.convert_to_tensor(state), [replica * rows, 0], [rows, state.shape[-1]]) * keep
                   for state in self.carried]
        outputs, *states = self.stack(inputs, mask=inputs_mask, training=training, initial_state=initial)
        for variable, state in zip(self.carried, states):
            state = ops.stop_gradient(state)
            variable.assign(state if context is None else context.all_gather(state, axis=0))
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
