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


HOOKS = {"keras_tuner.src.config.DEBUG": _has_debug_flag}
