"""Gradient clipping by global norm, fixed or adaptive, with non-finite steps skipped.

The adaptive threshold follows Pascanu, Mikolov & Bengio, 2013, "On the difficulty of training
recurrent neural networks", https://arxiv.org/abs/1211.5063, section 3.2: "a good heuristic for
setting this threshold is to look at statistics on the average norm over a sufficiently large
number of updates". Here it is a running (exponential, bias-corrected) average of the global
gradient norms of the steps so far.

`ClippedAdam`, `ClippedRMSprop` and `ClippedSGD` are the Keras optimizers with this `apply`;
`GradientStatistics` adds the norms to the training logs (and so to `history.csv`).
"""

from __future__ import annotations

import keras
from keras import ops

from layers import PACKAGE
from layers.internals import optimizer_trainable_variables, strategy_supports_no_merge_call

MODES = ("none", "global_norm", "adaptive")


def _summed_rows(gradient):
    """A sparse gradient (an embedding's `tf.IndexedSlices`: one row per token of the batch) with
    the rows of a repeated index summed, so that its norm is the dense gradient's (the norm of
    the rows as they come counts a word seen twice as two half-size updates)."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        if isinstance(gradient, tf.IndexedSlices):
            unique, position = tf.unique(gradient.indices)
            return tf.math.unsorted_segment_sum(gradient.values, position, tf.shape(unique)[0])
    return gradient


class GradientGuard:
    """Mixin for a `keras.optimizers.Optimizer`: every step measures the global gradient norm,
    skips the step entirely (no variable, slot or iteration changes) when it is not finite,
    and otherwise rescales the gradients to at most the threshold of `clipping`:

    - `"none"`: no rescaling.
    - `"global_norm"`: `clip_threshold`.
    - `"adaptive"`: `clip_multiplier` x the running average of the norms of the steps taken
      so far (decay `clip_decay`, i.e. about the last 1 / (1 - decay) steps). During the first
      `clip_warmup` steps, while that average is still forming, `clip_threshold` applies if
      set. A spike enters the average capped at twice the threshold, so one exploding step
      does not raise the threshold for the steps after it.

    Non-trainable variables `last_norm` and `threshold` (of the last step taken), `norm_sum` /
    `norm_count` (since the last `reset_gradient_statistics()`) and `skipped_steps` are read by
    `GradientStatistics`.
    """

    def __init__(self, *args, clipping: str = "global_norm", clip_threshold: float | None = 1.0,
                 clip_decay: float = 0.99, clip_warmup: int = 20, clip_multiplier: float = 1.0, **kwargs):
        super().__init__(*args, **kwargs)
        if clipping not in MODES:
            raise ValueError(f"clipping must be one of {MODES}, received {clipping!r}")
        if clipping == "global_norm" and not (clip_threshold and clip_threshold > 0):
            raise ValueError(f"clipping='global_norm' needs a positive clip_threshold, received {clip_threshold!r}")
        if not 0.0 < clip_decay < 1.0:
            raise ValueError(f"clip_decay must be in (0, 1), received {clip_decay!r}")
        if clip_multiplier <= 0:
            raise ValueError(f"clip_multiplier must be positive, received {clip_multiplier!r}")
        self.clipping, self.clip_threshold = clipping, clip_threshold
        self.clip_decay, self.clip_warmup, self.clip_multiplier = clip_decay, int(clip_warmup), clip_multiplier

    def build(self, variables):
        super().build(variables)
        add = lambda name: self.add_variable((), name=name, aggregation="only_first_replica")  # noqa: E731
        self.average_norm = add("average_norm")  # biased EMA; divide by 1 - decay^updates
        self.norm_updates = add("norm_updates")
        self.last_norm = add("last_norm")
        self.norm_sum = add("norm_sum")
        self.norm_count = add("norm_count")
        self.threshold = add("threshold")
        self.skipped_steps = add("skipped_steps")

    def current_threshold(self):
        """The threshold for this step (inf for no clipping)."""
        fixed = float("inf") if not self.clip_threshold else float(self.clip_threshold)
        if self.clipping == "none":
            return ops.convert_to_tensor(float("inf"))
        if self.clipping == "global_norm":
            return ops.convert_to_tensor(fixed)
        average = self.average_norm / ops.maximum(1.0 - ops.power(self.clip_decay, self.norm_updates), 1e-12)
        return ops.where(self.norm_updates >= self.clip_warmup, self.clip_multiplier * average, fixed)

    def apply(self, grads, trainable_variables=None):
        if not self.built:
            self.build(trainable_variables if trainable_variables is not None else optimizer_trainable_variables(self))
        grads = list(grads)
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            grads = self._summed_over_replicas(grads)
            if not strategy_supports_no_merge_call():
                # A strategy whose update is a merge_call cannot run it inside a cond in the
                # replica context: decide in the cross-replica context (as Keras's
                # LossScaleOptimizer does). The gradients are summed: every replica agrees.
                def cross_replica(distribution, grads, variables):
                    finite = distribution.experimental_local_results(
                        distribution.extended.call_for_each_replica(self._finite, args=(grads,)))[0]
                    ops.cond(finite,
                             lambda: distribution.extended.call_for_each_replica(self._take_step,
                                                                                 args=(grads, variables)),
                             self._skip_step)

                tf.distribute.get_replica_context().merge_call(cross_replica, args=(grads, trainable_variables))
                return
        ops.cond(self._finite(grads), lambda: self._take_step(grads, trainable_variables), self._skip_step)

    def _summed_over_replicas(self, grads):
        """Under a strategy with several replicas, each replica's gradients are its part of the
        batch's: the norm, the clipping and the finite check must see their sum, the batch's
        gradient, so that every replica takes the same decision and the threshold is one value.
        (`_scale_for_apply` then divides by the replica count, because Keras sums the gradients
        over the replicas again in `apply`: the update is the batch gradient's, as on one device.)"""
        import tensorflow as tf

        if self._replicas() == 1:
            return grads
        context = tf.distribute.get_replica_context()
        present = [i for i, g in enumerate(grads) if g is not None]
        # Sparse gradients (an embedding's) hold as many rows as the replica's batch has tokens,
        # which differ between replicas: summed as dense tensors.
        summed = context.all_reduce(tf.distribute.ReduceOp.SUM, [tf.convert_to_tensor(grads[i]) for i in present])
        out = list(grads)
        for i, g in zip(present, summed):
            out[i] = g
        return out

    @staticmethod
    def _replicas() -> int:
        if keras.backend.backend() != "tensorflow":
            return 1
        import tensorflow as tf

        context = tf.distribute.get_replica_context()
        return context.num_replicas_in_sync if context is not None else 1

    def _scale_for_apply(self, grads, scale):
        """The clipped gradients as `super().apply` should get them (see `_summed_over_replicas`)."""
        divisor = float(self._replicas())
        return [None if g is None else g * ops.cast(scale / divisor, g.dtype) for g in grads]

    @staticmethod
    def global_norm(grads):
        return ops.sqrt(sum(ops.sum(ops.square(ops.cast(_summed_rows(g), "float32"))) for g in grads if g is not None))

    def _finite(self, grads):
        return ops.isfinite(self.global_norm(grads))

    def _take_step(self, grads, trainable_variables):
        norm = self.global_norm(grads)
        threshold = self.current_threshold()
        scale = ops.minimum(1.0, threshold / ops.maximum(norm, 1e-12))
        super().apply(self._scale_for_apply(grads, scale), trainable_variables)
        self.last_norm.assign(norm)
        self.threshold.assign(threshold)
        self.average_norm.assign(self.clip_decay * self.average_norm
                                 + (1.0 - self.clip_decay) * ops.minimum(norm, 2.0 * threshold))
        self.norm_updates.assign_add(1.0)
        self.norm_sum.assign_add(norm)
        self.norm_count.assign_add(1.0)

    def _skip_step(self):
        self.skipped_steps.assign_add(1.0)

    def reset_gradient_statistics(self):
        self.norm_sum.assign(0.0)
        self.norm_count.assign(0.0)

    def get_config(self):
        return {**super().get_config(), "clipping": self.clipping, "clip_threshold": self.clip_threshold,
                "clip_decay": self.clip_decay, "clip_warmup": self.clip_warmup,
                "clip_multiplier": self.clip_multiplier}


@keras.saving.register_keras_serializable(package=PACKAGE)
class ClippedAdam(GradientGuard, keras.optimizers.Adam):
    """`keras.optimizers.Adam` with `GradientGuard`'s clipping and non-finite step skipping."""


@keras.saving.register_keras_serializable(package=PACKAGE)
class ClippedRMSprop(GradientGuard, keras.optimizers.RMSprop):
    """`keras.optimizers.RMSprop` with `GradientGuard`'s clipping and non-finite step skipping."""


@keras.saving.register_keras_serializable(package=PACKAGE)
class ClippedSGD(GradientGuard, keras.optimizers.SGD):
    """`keras.optimizers.SGD` with `GradientGuard`'s clipping and non-finite step skipping."""


OPTIMIZERS = {"adam": ClippedAdam, "rmsprop": ClippedRMSprop, "sgd": ClippedSGD}


class GradientStatistics(keras.callbacks.Callback):
    """Adds `grad_norm` (mean global gradient norm of the epoch's applied steps),
    `clip_threshold` (the last threshold) and `skipped_steps` (so far) to each epoch's logs."""

    def on_epoch_begin(self, epoch, logs=None):
        if isinstance(self.model.optimizer, GradientGuard) and self.model.optimizer.built:
            self.model.optimizer.reset_gradient_statistics()

    def on_epoch_end(self, epoch, logs=None):
        optimizer = self.model.optimizer
        if logs is None or not isinstance(optimizer, GradientGuard):
            return
        count = float(optimizer.norm_count.numpy())
        logs["grad_norm"] = float(optimizer.norm_sum.numpy()) / count if count else float("nan")
        logs["clip_threshold"] = float(optimizer.threshold.numpy())
        logs["skipped_steps"] = float(optimizer.skipped_steps.numpy())
