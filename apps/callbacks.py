"""The callbacks of a run's `fit`: the checkpoint a rerun resumes from and the best model, each
written atomically, the resumption itself, and what the dev metric's plateaus decide (a lower
learning rate, an early stop)."""

from __future__ import annotations

import csv
import dataclasses
import errno
import io
import json
import math
import shutil
import sys
import time

import keras
import numpy as np

from apps.config import ConfigError
from apps.rundir import RunDir, atomic_write_bytes, atomic_write_json, atomic_write_text, save_model_atomic
from layers.ensemble import layers_of_member


class KeepBest(keras.callbacks.Callback):
    """Saves the model to `path` atomically whenever `monitor` improves (`save(model, path)`:
    the whole model by default; `save_member_weights(k)` for one member of an ensemble).

    On a resumed run the best value so far is read back from the history file, so an earlier,
    better epoch is not overwritten by a worse one.
    """

    def __init__(self, path, monitor: str, mode: str, history_path=None, swap=None, save=save_model_atomic):
        super().__init__()
        self.path, self.monitor, self.mode, self.history_path = path, monitor, mode, history_path
        self.best = -math.inf if mode == "max" else math.inf
        self.swap = swap  # a keras.callbacks.SwapEMAWeights: the averaged weights are the ones saved
        self.save = save

    def on_train_begin(self, logs=None):
        if self.history_path is not None and self.path.exists():
            self.best = plateau(monitor_history(self.history_path, self.monitor), self.mode).best

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is not None and better(float(value), self.best, self.mode):
            self.best = float(value)
            if self.swap is not None:
                self.swap.on_test_begin()  # the averaged weights in, as for scoring the dev set
            try:
                self.save(self.model, self.path)
            except OSError as e:
                raise write_failure(self.path, e) from None
            finally:
                if self.swap is not None:
                    self.swap.on_test_end()


def save_member_weights(member: int):
    """A `KeepBest` save function: the weights of one member of an ensemble (`layers.ensemble`),
    as an .npz file written atomically, for `restore_member_weights`."""
    def save(model, path):
        buffer = io.BytesIO()
        np.savez(buffer, **{f"{layer.name}/{i}": w for layer in layers_of_member(model, member)
                            for i, w in enumerate(layer.get_weights())})
        atomic_write_bytes(path, buffer.getvalue())

    return save


def restore_member_weights(model, path, member: int) -> None:
    """The weights `save_member_weights(member)` wrote to `path`, into that member's layers."""
    with np.load(path) as saved:
        for layer in layers_of_member(model, member):
            layer.set_weights([saved[f"{layer.name}/{i}"] for i in range(len(layer.weights))])


def monitor_history(history_path, monitor: str) -> list[float]:
    """The values of `monitor`, epoch by epoch, in a run's `history.csv` (none if it is absent)."""
    if history_path is None or not history_path.exists():
        return []
    with open(history_path, newline="") as f:
        return [float(row[monitor]) for row in csv.DictReader(f) if row.get(monitor)]


@dataclasses.dataclass
class Plateau:
    best: float  # the best value so far
    best_epoch: int  # its epoch (0-based; -1: none yet)
    wait: int  # epochs since it, in a row without improvement

    def after(self, epoch: int, value: float, mode: str) -> "Plateau":
        if better(value, self.best, mode):
            return Plateau(value, epoch, 0)
        return Plateau(self.best, self.best_epoch, self.wait + 1)


def better(value: float, best: float, mode: str) -> bool:
    return value > best if mode == "max" else value < best


def plateau(values: list[float], mode: str) -> Plateau:
    """Where a dev metric stands after `values` (one per epoch): a state that a resumed run
    rebuilds from its history, so its early stop and learning-rate cuts match an uninterrupted one."""
    state = Plateau(-math.inf if mode == "max" else math.inf, -1, 0)
    for epoch, value in enumerate(values):
        state = state.after(epoch, value, mode)
    return state


class DevPlateau(keras.callbacks.Callback):
    """After each epoch without a better dev metric: every `lr_patience` such epochs in a row, the
    learning rate times `lr_factor` (not below `min_learning_rate`; `lr_patience=0`: never), and
    after `patience` of them, the end of training (`patience=0`: never). Besides, after every
    epoch from the `lr_decay_start`-th on, the learning rate times `lr_decay` (an annealing). The learning rate of each
    epoch goes to the logs (`history.csv`, TensorBoard). The optimizer's learning rate is a variable
    of the resume checkpoint, and the count of epochs without improvement comes from the history:
    a resumed run decides as an uninterrupted one.
    """

    def __init__(self, monitor: str, mode: str, history_path, patience: int = 0, lr_patience: int = 0,
                 lr_factor: float = 0.5, min_learning_rate: float = 0.0, lr_decay: float = 1.0,
                 lr_decay_start: int = 0):
        super().__init__()
        self.monitor, self.mode, self.history_path = monitor, mode, history_path
        self.patience, self.lr_patience, self.lr_factor, self.min_learning_rate = (
            patience, lr_patience, lr_factor, min_learning_rate)
        self.lr_decay, self.lr_decay_start = lr_decay, lr_decay_start
        self.on_train_begin()

    def on_train_begin(self, logs=None):
        self.state = plateau(monitor_history(self.history_path, self.monitor), self.mode)
        self.pending = None  # said after the epoch's progress line: at the next epoch or the end

    def stopped(self) -> bool:
        """Whether the run has had `patience` epochs in a row without improvement."""
        return bool(self.patience) and self.state.wait >= self.patience

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        learning_rate = self.model.optimizer.learning_rate
        logs["learning_rate"] = float(keras.ops.convert_to_numpy(learning_rate))
        value = logs.get(self.monitor)
        if value is None:
            return
        self.state = self.state.after(epoch, float(value), self.mode)
        wait = self.state.wait
        if self.stopped():
            self.model.stop_training = True
            self.pending = (f"early stop: {self.monitor} has not improved for {wait} epochs; the model keeps "
                            f"epoch {self.state.best_epoch + 1}'s weights ({self.monitor} {self.state.best:.4f})")
            return
        if epoch + 1 >= self.params.get("epochs", 0):  # nothing to change after the last epoch
            return
        factor = self.lr_decay if epoch + 1 >= self.lr_decay_start else 1.0
        cut = bool(wait and self.lr_patience and wait % self.lr_patience == 0)
        if cut:
            factor *= self.lr_factor
        lowered = max(logs["learning_rate"] * factor, self.min_learning_rate)
        if lowered < logs["learning_rate"]:
            learning_rate.assign(lowered)
            if cut:
                self.pending = f"{self.monitor} has not improved for {wait} epochs: learning rate {lowered:.3g}"

    def on_epoch_begin(self, epoch, logs=None):
        self._say()

    def on_train_end(self, logs=None):
        self._say()

    def _say(self):
        if self.pending:
            print(self.pending, file=sys.stderr, flush=True)
            self.pending = None


class CheckpointError(ConfigError):
    """A checkpoint that could not be written (one line; the previous one is intact)."""


def write_failure(path, error: OSError) -> CheckpointError:
    """The one-line error of a failed write, with the free space where it was written."""
    try:
        free = f"{shutil.disk_usage(path.parent).free / 1e6:.1f} MB free there"
    except OSError:
        free = "free space unknown"
    why = "no space left on the device" if error.errno == errno.ENOSPC else (error.strerror or str(error))
    return CheckpointError(f"cannot write {path}: {why} ({free}); the last complete checkpoint is kept: "
                           "make room and rerun the same command to resume")


class ResumePoint(keras.callbacks.Callback):
    """After each epoch, the model with its optimizer state to `RUN/checkpoints/last.keras`, then
    the epoch number to `last.json`, each to a temporary file renamed into place: a write that
    fails (a full disk) leaves the previous checkpoint whole. `resume` starts from it."""

    def __init__(self, run: RunDir):
        super().__init__()
        self.run = run

    def on_epoch_end(self, epoch, logs=None):
        for path, write in ((self.run.last, lambda: save_model_atomic(self.model, self.run.last)),
                            (self.run.last_epoch, lambda: atomic_write_json(self.run.last_epoch, {"epoch": epoch}))):
            try:
                write()
            except OSError as e:
                raise write_failure(path, e) from None


def resume(model: keras.Model, run: RunDir) -> int:
    """Restores the weights and optimizer state of the last complete epoch, if any, and cuts
    `history.csv` to the epochs before the one training restarts from (an epoch logged but not
    checkpointed is trained again, and logged once). Returns the first epoch to train."""
    start = 0
    if run.last_epoch.exists() and run.last.exists():
        start = json.loads(run.last_epoch.read_text(encoding="utf-8"))["epoch"] + 1
        saved = keras.saving.load_model(run.last, safe_mode=True)
        with model.distribute_strategy.scope():  # optimizer variables live where the model's do
            model.set_weights(saved.get_weights())
            model.optimizer.build(model.trainable_variables)
            for variable, value in zip(model.optimizer.variables, saved.optimizer.variables):
                variable.assign(value)
        print(f"resuming from the checkpoint after epoch {start}", file=sys.stderr, flush=True)
    if run.history.exists():
        with open(run.history, newline="") as f:
            rows = list(csv.reader(f))
        kept = rows[:1] + [row for row in rows[1:] if row and int(row[0]) < start]
        if start == 0:
            run.history.unlink()
        elif len(kept) != len(rows):
            text = io.StringIO()
            csv.writer(text, lineterminator="\n").writerows(kept)
            atomic_write_text(run.history, text.getvalue())
    return start


class EpochLog(keras.callbacks.Callback):
    """Progress of `fit` on stdout: on a terminal a line redrawn after each batch, and one line
    per epoch, as Keras's own but with counts (`skipped_steps`) printed as whole numbers:

        Epoch 3/12 - 20s - accuracy: 0.9704 - loss: 0.0886 - val_accuracy: 0.9575 - skipped_steps: 0
    """

    COUNTS = ("skipped_steps",)

    def __init__(self, epochs: int):
        super().__init__()
        self.epochs, self.terminal = epochs, sys.stdout.isatty()

    def _format(self, logs) -> str:
        parts = []
        for key, value in (logs or {}).items():
            value = float(value)
            if key in self.COUNTS and value.is_integer():
                parts.append(f"{key}: {int(value)}")
            else:
                parts.append(f"{key}: {value:.4f}" if value == 0 or abs(value) >= 1e-3 else f"{key}: {value:.4e}")
        return " - ".join(parts)

    def on_epoch_begin(self, epoch, logs=None):
        self.started, self._epoch = time.monotonic(), epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.terminal:
            steps = self.params.get("steps")
            print(f"\rEpoch {self._epoch_label()} {batch + 1}/{steps or '?'} - {self._format(logs)}", end="",
                  flush=True)

    def _epoch_label(self) -> str:
        return f"{self._epoch + 1}/{self.epochs}"

    def on_epoch_end(self, epoch, logs=None):
        line = f"Epoch {epoch + 1}/{self.epochs} - {time.monotonic() - self.started:.0f}s - {self._format(logs)}"
        print(("\r\x1b[K" if self.terminal else "") + line, flush=True)  # the batch line cleared first
