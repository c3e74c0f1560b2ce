"""Token cross-entropy over the non-padding positions of a sequence, with label smoothing: the
loss of every app that predicts a token at each step (translation, tagging, captioning, char LM)."""

from __future__ import annotations

import keras
from keras import ops

from layers import PACKAGE


@keras.saving.register_keras_serializable(package=PACKAGE)
class MaskedCrossEntropy(keras.losses.Loss):
    """Per sequence: the mean over its non-padding targets (`y_true != pad_id`) of

        (1 - label_smoothing) * -log p(y_t) - label_smoothing * mean_v log p(v)

    (the smoothed target puts `label_smoothing` uniformly over the vocabulary). A sequence with
    no target counts 0. `y_pred` are logits (batch, time, vocab); `y_true` ids (batch, time).

    Example:
    >>> loss = MaskedCrossEntropy()
    >>> float(loss(keras.ops.array([[1, 0]]), keras.ops.zeros((1, 2, 4))))  # log(4), padding ignored
    1.3862943649291992
    """

    def __init__(self, label_smoothing: float = 0.0, pad_id: int = 0, name="masked_cross_entropy", **kwargs):
        super().__init__(name=name, **kwargs)
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), received label_smoothing={label_smoothing!r}")
        self.label_smoothing, self.pad_id = float(label_smoothing), int(pad_id)

    def call(self, y_true, y_pred):
        log_probs = ops.log_softmax(y_pred, axis=-1)  # (batch, time, vocab)
        y_true = ops.cast(y_true, "int32")
        nll = -ops.take_along_axis(log_probs, ops.expand_dims(y_true, -1), axis=-1)[..., 0]  # (batch, time)
        loss = (1.0 - self.label_smoothing) * nll - self.label_smoothing * ops.mean(log_probs, axis=-1)
        mask = ops.cast(ops.not_equal(y_true, self.pad_id), loss.dtype)
        return ops.sum(loss * mask, axis=-1) / ops.maximum(ops.sum(mask, axis=-1), 1.0)

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing, "pad_id": self.pad_id}


@keras.saving.register_keras_serializable(package=PACKAGE)
class WeightedTokenCrossEntropy(keras.losses.Loss):
    """Cross-entropy of integer targets from logits, summed over the tokens times their weights
    (0 on padding) and divided by the sum of the weights of the whole batch.

    On one device this is Keras's `reduction="mean_with_sample_weight"`. Under a tf.distribute
    strategy Keras would divide each replica's part by that replica's own weight sum, so that the
    tokens of a replica with more padding would weigh more than the others; here the divisor is
    the weight sum over all replicas, so that the replicas' gradients, which Keras sums, add up
    to the gradient of the whole batch's mean, as on one device. (Like every Keras loss under a
    strategy, the value a replica returns is its share of the batch's loss.)

    Example:
    >>> loss = WeightedTokenCrossEntropy()
    >>> float(loss(keras.ops.array([[1, 0]]), keras.ops.zeros((1, 2, 4)), keras.ops.array([[1.0, 0.0]])))
    1.3862943649291992
    """

    def __init__(self, name="token_cross_entropy", **kwargs):
        super().__init__(name=name, **kwargs)

    def __call__(self, y_true, y_pred, sample_weight=None):
        losses = keras.losses.sparse_categorical_crossentropy(y_true, y_pred, from_logits=True)
        weights = ops.ones_like(losses) if sample_weight is None else ops.cast(sample_weight, losses.dtype)
        total, count = ops.sum(losses * weights), ops.sum(weights)
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            context = tf.distribute.get_replica_context()
            if context is not None and context.num_replicas_in_sync > 1:
                # Keras sums the replicas' gradients (and logs the loss times the replica count,
                # averaged over the replicas): each replica's share of the batch's mean is its own.
                count = context.all_reduce(tf.distribute.ReduceOp.SUM, count)
        return ops.divide_no_nan(total, count)
