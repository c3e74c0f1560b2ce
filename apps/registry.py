"""The app registry: name -> module. Modules are imported on first use (TensorFlow is slow to load)."""

from __future__ import annotations

import importlib
from types import ModuleType

from apps.config import ConfigError

# name -> (module, one-line description)
APPS = {
    "sentiment": ("apps.sentiment", "many-to-one text classification: review -> label (accuracy)"),
    "translation": ("apps.translation", "encoder-decoder with attention, greedy/beam search (bleu, chrf)"),
}


def get_app(name: str) -> ModuleType:
    if name not in APPS:
        raise ConfigError(f"unknown app {name!r} (available: {', '.join(APPS)})")
    return importlib.import_module(APPS[name][0])
