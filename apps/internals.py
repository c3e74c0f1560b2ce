"""Every private hook that `apps/` relies on, each wrapped once, with why.

`tests/test_internals.py` names the hook that an upgrade removed.
"""

from __future__ import annotations


def quiet_failed_trials() -> None:
    """keras-tuner prints the whole traceback of every failed trial while `config.DEBUG` is on
    (its default); the trial keeps its error message either way, and `rnnapps tune` logs one
    line per failed trial. keras-tuner has no public setting for it."""
    from keras_tuner.src import config

    config.DEBUG = False


def _has_debug_flag() -> bool:
    from keras_tuner.src import config

    return isinstance(getattr(config, "DEBUG", None), bool)




def build_from_local_batch(model) -> None:
    """Keras 3 (`TensorFlowTrainer._maybe_symbolic_build`, up to at least 3.15) builds a model's
    metrics under a strategy, before `fit` or `evaluate`, from a batch it averages across the
    replicas with `strategy.reduce`. That fails when the batch splits unevenly (MirroredStrategy:
    "Inputs to operation AddN ... must have the same size and shape", a last batch of 3 on 2
    replicas) and always under MultiWorkerMirroredStrategy (keras-team/keras#20585: "Attempt to
    convert a value (PerReplica...)"). This model instead builds from its first local replica's
    part of the batch, which has the same structure; nothing else changes."""
    import tensorflow as tf
    from keras.src.backend.tensorflow import trainer

    original = trainer.TensorFlowTrainer._maybe_symbolic_build

    def build(iterator=None, data_batch=None):
        if iterator is not None:
            for _, _, it in iterator:
                batch = next(it)
                data_batch = tf.nest.map_structure(
                    lambda x: model.distribute_strategy.experimental_local_results(x)[0]
                    if isinstance(x, tf.distribute.DistributedValues) else x, batch)
                break
            iterator = None
        return original(model, iterator=iterator, data_batch=data_batch)

    model._maybe_symbolic_build = build
    if isinstance(model.distribute_strategy, tf.distribute.MultiWorkerMirroredStrategy):
        _patch_scalar_mean()


def _patch_scalar_mean() -> None:
    """Keras 3's `reduce_per_replica` (keras.src.backend.tensorflow.trainer) averages the logs of
    a step over MultiWorkerMirroredStrategy's workers with `strategy.reduce("MEAN", v, axis=0)`,
    which fails on the scalar losses and metrics ("Invalid reduction dimension 0 for input with
    0 dimensions"). A scalar that is a plain tensor (a metric's result, from variables already
    synchronized across the workers) is kept; per-replica scalars are averaged with `axis=None`;
    everything else as before. Once per process."""
    import tensorflow as tf
    from keras.src.backend.tensorflow import trainer

    original = trainer.reduce_per_replica
    if getattr(original, "rnnapps_patched", False):
        return

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
            def scalar_mean(v):
                local = strategy.experimental_local_results(v)
                if all(x.shape.rank == 0 for x in local):
                    # a plain tensor is a metric's result, already synchronized across workers
                    distributed = isinstance(v, tf.distribute.DistributedValues)
                    return strategy.reduce("MEAN", v, axis=None) if distributed else v
                return original(v, strategy, reduction)
            return tf.nest.map_structure(scalar_mean, values)
        return original(values, strategy, reduction)

    reduce_per_replica.rnnapps_patched = True
    trainer.reduce_per_replica = reduce_per_replica


def _has_symbolic_build() -> bool:
    from keras.src.backend.tensorflow import trainer

    return callable(getattr(trainer.TensorFlowTrainer, "_maybe_symbolic_build", None))


def _has_reduce_per_replica() -> bool:
    from keras.src.backend.tensorflow import trainer

    return callable(getattr(trainer, "reduce_per_replica", None))


HOOKS = {"keras_tuner.src.config.DEBUG": _has_debug_flag,
         "keras.src.backend.tensorflow.trainer.TensorFlowTrainer._maybe_symbolic_build": _has_symbolic_build,
         "keras.src.backend.tensorflow.trainer.reduce_per_replica": _has_reduce_per_replica}
