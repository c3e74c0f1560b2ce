"""The callbacks of a run's `fit`: the checkpoint a rerun resumes from and the best model, each
written atomically, and the resumption itself."""

from __future__ import annotations

import csv
import errno
import io
import json
import math
import shutil
import sys
import time

import keras

from apps.config import ConfigError
from apps.rundir import RunDir, atomic_write_json, atomic_write_text, save_model_atomic


class KeepBest(keras.callbacks.Callback):
    """Saves the model to `path` atomically whenever `monitor` improves.

    On a resumed run the best value so far is read back from the history file, so an earlier,
    better epoch is not overwritten by a worse one.
    """

    def __init__(self, path, monitor: str, mode: str, history_path=None):
        super().__init__()
        self.path, self.monitor, self.mode, self.history_path = path, monitor, mode, history_path
        self.best = -math.inf if mode == "max" else math.inf

    def _better(self, value: float) -> bool:
        return value > self.best if self.mode == "max" else value < self.best

    def on_train_begin(self, logs=None):
        if self.history_path is not None and self.history_path.exists() and self.path.exists():
            with open(self.history_path, newline="") as f:
                for row in csv.DictReader(f):
                    if row.get(self.monitor):
                        value = float(row[self.monitor])
                        if self._better(value):
                            self.best = value

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is not None and self._better(float(value)):
            self.best = float(value)
            try:
                save_model_atomic(self.model, self.path)
            except OSError as e:
                raise write_failure(self.path, e) from None


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
