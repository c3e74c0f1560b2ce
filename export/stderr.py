"""Silencing what native libraries write straight to the process's stderr (file descriptor 2),
which Python's logging and warnings filters cannot reach: TensorFlow's start-up lines, the
TFLite runtime's "Created TensorFlow Lite XNNPACK delegate for CPU"."""

from __future__ import annotations

import contextlib
import os
import sys


@contextlib.contextmanager
def silenced_stderr(enabled: bool = True):
    """Sends file descriptor 2 to /dev/null inside the block (Python exceptions still propagate
    and are reported after it)."""
    if not enabled:
        yield
        return
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def quiet() -> bool:
    """Whether TensorFlow's own logging is turned down (TF_CPP_MIN_LOG_LEVEL >= 1, as the CLI
    sets it unless --debug)."""
    return os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0") not in ("", "0")
