"""What every app's training shares: the distribution strategy, the optimizer of the config and
the resumable `fit` into a run directory."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import tempfile
import time
import warnings

import keras
import tensorflow as tf

from apps.callbacks import (DevPlateau, EpochLog, KeepBest, ResumePoint, restore_member_weights, resume,
                            save_member_weights)
from apps.config import ConfigError
from apps.rundir import RunDir
from layers.clipping import OPTIMIZERS, GradientStatistics
from layers.ensemble import member_metric

STRATEGIES = ("default", "mirrored", "multiworker")
_STRATEGIES: dict = {}  # made by make_strategy, reused

# Bucketed datasets have no known length, and Keras warns that they "ran out of data" at the
# end of every first pass; for them that is the normal end of an epoch.
warnings.filterwarnings("ignore", message="Your input ran out of data")


def split_cpu(devices: int) -> None:
    """Makes the CPU `devices` logical devices (`train.cpu_devices`); TensorFlow allows it only
    before its runtime starts, so `App.train` calls it first."""
    if devices < 0:
        raise ConfigError(f"train.cpu_devices must be at least 0, received {devices}")
    cpu = tf.config.list_physical_devices("CPU")[0]
    configured = tf.config.get_logical_device_configuration(cpu)  # neither starts the runtime
    if devices in (0, 1) or len(configured or ()) == devices:
        return
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * devices)
    except RuntimeError:
        raise ConfigError(f"train.cpu_devices={devices}: TensorFlow has already started with "
                          f"{len(tf.config.list_logical_devices('CPU'))} CPU device(s) in this process; set it "
                          "on the command line (rnnapps train ... --set train.cpu_devices=N)") from None


def make_strategy(name: str) -> tf.distribute.Strategy:
    """`default` (one device), `mirrored` (all local GPUs, else every logical CPU device: see
    `split_cpu`) or `multiworker` (TF_CONFIG names the cluster; without it, one worker)."""
    if name == "default":
        return tf.distribute.get_strategy()
    # One strategy object per process: two MirroredStrategy objects over the same devices number
    # their collective ops alike, and the second one's all-reduces meet the first one's ("Shape
    # mismatch in the collective instance 100"); MultiWorkerMirroredStrategy may be made once.
    if name not in _STRATEGIES:
        if name == "mirrored":
            devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
            _STRATEGIES[name] = tf.distribute.MirroredStrategy([d.name for d in devices])
        elif name == "multiworker":
            _STRATEGIES[name] = tf.distribute.MultiWorkerMirroredStrategy()
    if name in _STRATEGIES:
        return _STRATEGIES[name]
    raise ValueError(f"--strategy must be one of {STRATEGIES}, received {name!r}")


def worker_directory(strategy: tf.distribute.Strategy, out) -> tuple[str, bool]:
    """(the directory this process trains into, whether it is a temporary one).

    Under MultiWorkerMirroredStrategy every worker runs the same steps, checkpoints included,
    but only the chief (task `chief`, or `worker` 0 when the cluster has no chief) writes the run
    directory `out`. Another worker trains in a temporary copy of out's config, history and
    checkpoints, so that after a restart it resumes from the chief's last epoch with the same
    plateau state (that needs `out` on storage every worker reads), and removes it at the end.
    """
    resolver = getattr(strategy, "cluster_resolver", None)
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) or resolver is None:
        return str(out), False
    task_type, task_id = resolver.task_type, resolver.task_id
    cluster = resolver.cluster_spec().as_dict()
    if task_type in (None, "chief") or (task_type == "worker" and task_id == 0 and "chief" not in cluster):
        return str(out), False
    copy = tempfile.mkdtemp(prefix=f"rnnapps-{task_type}{task_id}-")
    source = RunDir(out)
    if source.config.exists() and not source.complete:
        for path in (source.config, source.history):
            if path.exists():
                shutil.copy2(path, os.path.join(copy, path.name))
        if source.checkpoints.exists():
            shutil.copytree(source.checkpoints, os.path.join(copy, source.checkpoints.name))
    log(f"{task_type} {task_id}: the chief writes {out}; this worker trains in {copy}")
    return copy, True


def log(message: str) -> None:
    """Progress and statistics go to stderr, so stdout stays for results (and JSON)."""
    print(message, file=sys.stderr, flush=True)


class Progress:
    """Progress of long work that is not `fit` (decoding a split, scoring it), on stderr so that
    stdout stays for results: a bar redrawn in place on a terminal; otherwise a line every
    `every` seconds, and a last one if any was printed.

        progress = Progress(len(texts), "translating")
        progress.update(256)  # after each chunk
    """

    def __init__(self, total: int, what: str, every: float = 5.0):
        self.total, self.what, self.every, self.done, self.printed = total, what, every, 0, False
        self.started = self.last = time.monotonic()
        self.terminal = sys.stderr.isatty()

    def update(self, count: int) -> None:
        self.done = min(self.done + count, self.total)
        finished, now = self.done >= self.total, time.monotonic()
        if self.terminal and not (finished and not self.printed and now - self.started < self.every):
            filled = 30 * self.done // max(self.total, 1)
            print(f"\r{self.what}: [{'=' * filled}{'.' * (30 - filled)}] {self.done}/{self.total}",
                  end="\n" if finished else "", file=sys.stderr, flush=True)
            self.printed = True
        elif not self.terminal and (now - self.last >= self.every or (finished and self.printed)):
            print(f"{self.what}: {self.done}/{self.total}", file=sys.stderr, flush=True)
            self.last, self.printed = now, True


def make_optimizer(config) -> keras.optimizers.Optimizer:
    """The optimizer of a `TrainConfig`: clipping gradients by their global norm (fixed or
    adaptive) and skipping steps with a non-finite gradient (`layers.clipping`)."""
    clipping = config.clipping
    if clipping == "global_norm" and not config.global_clipnorm:
        clipping = "none"
    try:
        return OPTIMIZERS[config.optimizer](
            learning_rate=config.learning_rate, clipping=clipping, clip_threshold=config.global_clipnorm,
            clip_decay=config.clip_decay, clip_warmup=config.clip_warmup, clip_multiplier=config.clip_multiplier,
            use_ema=config.ema > 0.0, ema_momentum=config.ema)
    except ValueError as e:
        raise ConfigError(f"train: {e}") from None


def check_schedule(train) -> None:
    """The epoch count and plateau settings of a `TrainConfig`, checked before a run exists."""
    for key in ("epochs", "early_stopping_patience", "lr_patience"):
        if getattr(train, key) < (1 if key == "epochs" else 0):
            raise ConfigError(f"train.{key} must be at least {1 if key == 'epochs' else 0}, "
                              f"received {getattr(train, key)}")
    for key in ("lr_factor", "lr_decay"):
        if not 0.0 < getattr(train, key) <= 1.0:
            raise ConfigError(f"train.{key} must be in (0, 1], received {getattr(train, key)}")
    if not 0.0 <= train.ema < 1.0:
        raise ConfigError(f"train.ema must be in [0, 1) (0: no averaging), received {train.ema}")


def fit_run(
    model: keras.Model,
    run: RunDir,
    train_ds: tf.data.Dataset,
    val_ds: tf.data.Dataset,
    train,
    monitor: str = "val_accuracy",
    mode: str = "max",
    callbacks=(),
    members: int = 1,
) -> int:
    """Trains for up to `train.epochs` (a `TrainConfig`) with a checkpoint per epoch in
    `RUN/checkpoints`, resuming an interrupted run from its last complete epoch, lowering the
    learning rate and stopping early on plateaus of `monitor`; afterwards the model holds the best
    epoch's weights (an ensemble of `members` > 1: each member its own best epoch's, by
    `val_memberK_accuracy`). Returns the epoch training started from."""
    start, epochs = resume(model, run), train.epochs
    plateaus = DevPlateau(monitor, mode, run.history, train.early_stopping_patience, train.lr_patience,
                          train.lr_factor, train.min_learning_rate, train.lr_decay, train.lr_decay_start)
    if plateaus.stopped():
        start = epochs  # the run had stopped early before it was interrupted
    # With train.ema the dev set is scored with the averaged weights, and the best epoch's are kept;
    # the checkpoints keep the training weights (and the average in the optimizer's state).
    averaged = [keras.callbacks.SwapEMAWeights()] if train.ema else []
    swap = averaged[0] if averaged else None
    # An ensemble: each member's weights at its own best epoch too, while stopping and the learning
    # rate follow the ensemble's monitor (README, "model.members").
    members_best = [KeepBest(run.best_member(k), "val_" + member_metric(k), "max", run.history, swap=swap,
                             save=save_member_weights(k)) for k in range(members)] if members > 1 else []
    all_callbacks = [
        *averaged,
        GradientStatistics(),  # first: the loggers after it see grad_norm
        plateaus,  # before the loggers: they see learning_rate
        KeepBest(run.best, monitor, mode, run.history, swap=swap),
        *members_best,
        keras.callbacks.CSVLogger(str(run.history), append=True),
        ResumePoint(run),  # after the history row: an epoch logged but not checkpointed is redone
        EpochLog(epochs),
        *callbacks,
    ]
    if importlib.util.find_spec("tensorboard") is not None:  # an optional extra: pip install -e ".[tensorboard]"
        # `tensorboard --logdir runs`: losses, metrics, learning rate, grad_norm, skipped_steps per epoch
        all_callbacks.insert(4, keras.callbacks.TensorBoard(str(run.logs), write_graph=False))
    if start < epochs:
        model.fit(
            train_ds,
            validation_data=val_ds,
            initial_epoch=start,
            epochs=epochs,
            shuffle=False,  # the pipeline shuffles
            callbacks=all_callbacks,
            verbose=0,  # EpochLog prints the progress
        )
    if run.best.exists():
        best = keras.saving.load_model(run.best, safe_mode=True, compile=False)
        model.set_weights(best.get_weights())
    for k, kept in enumerate(members_best):
        if kept.path.exists():
            restore_member_weights(model, kept.path, k)
    return start
