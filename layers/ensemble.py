"""An ensemble of classifiers in one Keras model: members that share nothing but the input,
trained side by side in one `fit`, each on its own loss, and whose class probabilities are
averaged for prediction.

    logits = [member(token_ids, k) for k in range(3)]          # (batch, classes) each
    stacked = MemberLogits(name="member_logits")(logits)       # (batch, members, classes)
    model = keras.Model(token_ids, EnsembleLogits()(stacked))  # what predicts and exports
    trainer = keras.Model(token_ids, stacked)                  # what fit trains: the same layers
    trainer.compile(loss=MembersCrossEntropy(), metrics=[MembersAccuracy(), MembersAccuracy(member_metric(0), 0)])

The ensemble's output stays logits (the log of the mean probability: their softmax is the
members' average), so a classifier's loss, argmax and softmax work on it unchanged. Training
each member on its own cross-entropy, rather than the ensemble's output on one, keeps them
independent (the gradient a member gets does not depend on the others), which is what makes
their average better than each of them.
"""

from __future__ import annotations

import math
import re

import keras
from keras import ops

from layers import PACKAGE

MEMBER_SUFFIX = "_member"  # member k > 0 names its layers NAME_memberK; member 0 keeps the plain names
_SUFFIX = re.compile(rf"{MEMBER_SUFFIX}(\d+)$")


def member_name(name: str, member: int) -> str:
    """The name of layer `name` in member `member` (member 0 and a single model: `name`)."""
    return name if member == 0 else f"{name}{MEMBER_SUFFIX}{member}"


def split_name(name: str) -> tuple[str, int]:
    """A layer name -> (its name without the member suffix, its member: 0 without a suffix)."""
    found = _SUFFIX.search(name)
    return (name[:found.start()], int(found.group(1))) if found else (name, 0)


def member_layers(model: keras.Model, name: str) -> list:
    """Layer `name` of each member of `model`, member 0 first (one layer for a single model)."""
    return [layer for layer in model.layers if split_name(layer.name)[0] == name]


def layers_of_member(model: keras.Model, member: int) -> list:
    """The layers with weights of member `member` of `model`."""
    return [layer for layer in model.layers if layer.weights and split_name(layer.name)[1] == member]


def member_metric(member: int) -> str:
    """The name of member `member`'s accuracy (`MembersAccuracy`; in the logs, `val_` before it on dev)."""
    return f"member{member}_accuracy"


@keras.saving.register_keras_serializable(package=PACKAGE)
class MemberLogits(keras.layers.Layer):
    """A list of the members' logits, (batch, classes) each -> (batch, members, classes)."""

    def call(self, logits):
        return ops.stack(logits, axis=1)

    def compute_output_shape(self, input_shape):
        first = tuple(input_shape[0])
        return (first[0], len(input_shape), *first[1:])


@keras.saving.register_keras_serializable(package=PACKAGE)
class EnsembleLogits(keras.layers.Layer):
    """Members' logits (batch, members, classes) -> (batch, classes): the log of the members'
    mean class probability, log(mean_k softmax(z_k)), whose softmax is that mean.

    Example:
    >>> z = keras.ops.log(keras.ops.convert_to_tensor([[[0.9, 0.1], [0.5, 0.5]]]))
    >>> keras.ops.softmax(EnsembleLogits()(z)).numpy().round(4)
    array([[0.7, 0.3]], dtype=float32)
    """

    def call(self, member_logits):
        members = member_logits.shape[1]
        log_probabilities = ops.log_softmax(member_logits, axis=-1)
        return ops.logsumexp(log_probabilities, axis=1) - math.log(members)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *input_shape[2:])


@keras.saving.register_keras_serializable(package=PACKAGE)
class MembersCrossEntropy(keras.losses.Loss):
    """The mean over members of each member's cross-entropy: labels (batch,), logits (batch,
    members, classes). A member's gradient is 1 / members of its own loss's gradient."""

    def __init__(self, name="members_cross_entropy", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        labels = ops.reshape(ops.cast(y_true, "int32"), (-1, 1))
        labels = ops.broadcast_to(labels, ops.shape(y_pred)[:2])  # (batch, members)
        losses = keras.losses.sparse_categorical_crossentropy(labels, y_pred, from_logits=True)
        return ops.mean(losses, axis=1)


def ensemble_accuracy(y_true, y_pred, member=None):
    """Accuracy of the members' mean probability (of member `member`'s alone when given): labels
    (batch,), logits (batch, members, classes)."""
    probabilities = ops.softmax(y_pred, axis=-1)
    probabilities = ops.mean(probabilities, axis=1) if member is None else probabilities[:, member]
    return keras.metrics.sparse_categorical_accuracy(ops.reshape(y_true, (-1,)), probabilities)


@keras.saving.register_keras_serializable(package=PACKAGE)
class MembersAccuracy(keras.metrics.MeanMetricWrapper):
    """Accuracy of the ensemble (the members' mean probability), or of one member (`member`),
    from the members' logits."""

    def __init__(self, name="accuracy", member=None, dtype=None):
        super().__init__(ensemble_accuracy, name=name, dtype=dtype, member=member)
        self.member = member

    def get_config(self):
        return {"name": self.name, "member": self.member, "dtype": self.dtype}
