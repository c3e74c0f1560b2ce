"""Run directories (see DESIGN.md) and atomic writes.

`RUN/model.keras` is written last, so a run directory without it is an unfinished run: the same
`train` command resumes it from `RUN/checkpoints/`.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import tempfile

import keras
import yaml

from apps.config import ConfigError, to_dict, to_yaml


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Writes a temporary file beside `path` and renames it into place: readers see the old or
    the new file, never half of one. The file gets the permissions the umask gives any new file
    (mkstemp's are owner-only)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """`atomic_write_text` for bytes (an image)."""
    path = pathlib.Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_json(path: str | os.PathLike, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def save_model_atomic(model: keras.Model, path: str | os.PathLike) -> None:
    """Saves to a temporary `.keras` file beside `path`, then renames it into place."""
    path = pathlib.Path(path)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.keras")
    try:
        model.save(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def replace_dir_atomic(staged: pathlib.Path, final: pathlib.Path) -> None:
    """Moves a fully written directory into place, replacing an older one."""
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        os.replace(final, old)
        os.replace(staged, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staged, final)


class RunDir:
    """Paths of one run, and its checks."""

    def __init__(self, path: str | os.PathLike):
        self.path = pathlib.Path(path)
        self.config = self.path / "config.yaml"
        self.assets = self.path / "assets"
        self.model = self.path / "model.keras"
        self.checkpoints = self.path / "checkpoints"
        self.last = self.checkpoints / "last.keras"  # the model (and optimizer) after the last complete epoch
        self.last_epoch = self.checkpoints / "last.json"  # {"epoch": that epoch}, written after last.keras
        self.best = self.checkpoints / "best.keras"
        self.history = self.path / "history.csv"
        self.plots = self.path / "plots"
        self.logs = self.path / "logs"  # TensorBoard

    def best_member(self, member: int) -> pathlib.Path:
        """An ensemble's member `member` at its own best epoch (its weights, .npz)."""
        return self.checkpoints / f"best_member{member}.npz"

    def metrics(self, split: str) -> pathlib.Path:
        return self.path / f"metrics-{split}.json"

    @property
    def complete(self) -> bool:
        return self.model.exists()

    def require_complete(self) -> "RunDir":
        if not self.path.is_dir():
            raise ConfigError(f"run directory {self.path} does not exist")
        if not self.config.exists():
            raise ConfigError(f"{self.path} is not a run directory (no config.yaml)")
        if not self.complete:
            raise ConfigError(
                f"run {self.path} is unfinished (no model.keras): rerun the same train command to resume it"
            )
        return self

    def read_config(self, cls):
        from apps.config import load_config

        return load_config(cls, files=[self.config])

    def start(self, config, resumable_differences=("train.epochs",)) -> bool:
        """Creates the run directory, or checks that an unfinished one belongs to `config`.

        Returns True when resuming. Raises ConfigError if `path` holds a finished run, another
        run's files, or an unfinished run with a different config.
        """
        if self.path.exists() and not self.path.is_dir():
            raise ConfigError(f"--out {self.path} is a file")
        if self.complete:
            raise ConfigError(f"{self.path} already holds a finished run (model.keras); choose another --out")
        if self.config.exists():
            self.lock()  # first: a run being trained is refused as such
            with open(self.config, encoding="utf-8") as f:
                previous = _flatten(yaml.safe_load(f) or {})
            current = _flatten(to_dict(config))
            defaults = _flatten(to_dict(type(config)()))  # what a key that an older version did not write meant
            changed = sorted(
                k for k in set(previous) | set(current)
                if k not in resumable_differences and previous.get(k, defaults.get(k)) != current.get(k)
            )
            if changed:
                details = ", ".join(f"{k}: {previous.get(k)!r} -> {current.get(k)!r}" for k in changed[:4])
                raise ConfigError(
                    f"{self.path} holds an unfinished run with a different config ({details}); "
                    "choose another --out or rerun with the same settings"
                )
            for folder in (self.assets, self.checkpoints, self.plots):  # a copy may hold the config only
                folder.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.config, to_yaml(config))
            return True
        if self.path.exists() and any(self.path.iterdir()):
            raise ConfigError(f"--out {self.path} is not empty and is not a run directory")
        for folder in (self.path, self.assets, self.checkpoints, self.plots):
            folder.mkdir(parents=True, exist_ok=True)
        self.lock()
        atomic_write_text(self.config, to_yaml(config))
        return False

    def lock(self) -> None:
        """Takes the run's lock (`RUN/.lock`, held until `release` or the process ends, so a killed
        process leaves none behind): a second `train` on the same run refuses instead of
        interleaving its checkpoints and history with the first one's."""
        import fcntl

        handle = open(self.path / ".lock", "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise ConfigError(f"{self.path} is being trained by process {holder}: wait for it to finish, or stop "
                              "it and rerun the same command to resume") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._lock = handle

    def release(self) -> None:
        handle = getattr(self, "_lock", None)
        if handle is not None:
            handle.close()
            self._lock = None


def _flatten(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[prefix + key] = value
    return flat
