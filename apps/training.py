"""What every app's training shares: the distribution strategy, the optimizer of the config and
the resumable `fit` into a run directory."""

from __future__ import annotations

import importlib.util
import sys
import warnings

import keras
import tensorflow as tf

from apps.callbacks import FirstEpoch, KeepBest
from apps.config import ConfigError
from apps.rundir import RunDir
from layers.clipping import OPTIMIZERS, GradientStatistics

STRATEGIES = ("default", "mirrored", "multiworker")

# Bucketed datasets have no known length, and Keras warns that they "ran out of data" at the
# end of every first pass; for them that is the normal end of an epoch.
warnings.filterwarnings("ignore", message="Your input ran out of data")


def make_strategy(name: str) -> tf.distribute.Strategy:
    """`default` (one device), `mirrored` (all local GPUs, or the CPU) or `multiworker`
    (TF_CONFIG names the cluster; without it, one worker)."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"--strategy must be one of {STRATEGIES}, received {name!r}")


def log(message: str) -> None:
    """Progress and statistics go to stderr, so stdout stays for results (and JSON)."""
    print(message, file=sys.stderr, flush=True)


def make_optimizer(config) -> keras.optimizers.Optimizer:
    """The optimizer of a `TrainConfig`: clipping gradients by their global norm (fixed or
    adaptive) and skipping steps with a non-finite gradient (`layers.clipping`)."""
    clipping = config.clipping
    if clipping == "global_norm" and not config.global_clipnorm:
        clipping = "none"
    try:
        return OPTIMIZERS[config.optimizer](
            learning_rate=config.learning_rate, clipping=clipping, clip_threshold=config.global_clipnorm,
            clip_decay=config.clip_decay, clip_warmup=config.clip_warmup, clip_multiplier=config.clip_multiplier)
    except ValueError as e:
        raise ConfigError(f"train: {e}") from None


def fit_run(
    model: keras.Model,
    run: RunDir,
    train_ds: tf.data.Dataset,
    val_ds: tf.data.Dataset,
    epochs: int,
    monitor: str = "val_accuracy",
    mode: str = "max",
    callbacks=(),
) -> int:
    """Trains with checkpoints in `RUN/checkpoints`, resuming an interrupted run; afterwards the
    model holds the best epoch's weights. Returns the epoch training started from."""
    first = FirstEpoch()
    all_callbacks = [
        GradientStatistics(),  # first: the loggers after it see grad_norm
        keras.callbacks.BackupAndRestore(str(run.backup)),
        KeepBest(run.best, monitor, mode, run.history),
        keras.callbacks.CSVLogger(str(run.history), append=True),
        first,
        *callbacks,
    ]
    if importlib.util.find_spec("tensorboard") is not None:  # an optional extra: pip install -e ".[tensorboard]"
        # `tensorboard --logdir runs`: losses, metrics, learning rate, grad_norm, skipped_steps per epoch
        all_callbacks.insert(4, keras.callbacks.TensorBoard(str(run.logs), write_graph=False))
    model.fit(
        train_ds,
        validation_data=val_ds,
        epochs=epochs,
        shuffle=False,  # the pipeline shuffles
        callbacks=all_callbacks,
        verbose=1 if sys.stdout.isatty() else 2,
    )
    if run.best.exists():
        best = keras.saving.load_model(run.best, safe_mode=True, compile=False)
        model.set_weights(best.get_weights())
    return first.epoch or 0
