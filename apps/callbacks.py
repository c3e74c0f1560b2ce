"""The callbacks of a run's `fit`: the best model kept atomically, and where a resumed run started."""

from __future__ import annotations

import csv
import math
import sys

import keras

from apps.rundir import save_model_atomic


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
            save_model_atomic(self.model, self.path)


class FirstEpoch(keras.callbacks.Callback):
    """Records the epoch at which `fit` started (after BackupAndRestore moved it)."""

    def __init__(self):
        super().__init__()
        self.epoch = None

    def on_epoch_begin(self, epoch, logs=None):
        if self.epoch is None:
            self.epoch = epoch
            if epoch > 0:
                print(f"resuming from the checkpoint after epoch {epoch}", file=sys.stderr, flush=True)
