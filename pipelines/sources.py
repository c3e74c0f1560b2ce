"""Data source specifications: `synthetic[?size=N&seed=S]`, `tfds:NAME[/CONFIG]`, or a local path."""

from __future__ import annotations

import dataclasses
import os
import random
import urllib.parse
from collections.abc import Sequence

from pipelines.errors import DataError


@dataclasses.dataclass(frozen=True)
class SourceSpec:
    kind: str  # "synthetic", "tfds" or "local"
    name: str = ""  # tfds name (with /CONFIG) or the local path
    params: tuple[tuple[str, str], ...] = ()

    def param(self, key: str, default: int) -> int:
        value = dict(self.params).get(key)
        if value is None:
            return default
        try:
            return int(value)
        except ValueError:
            raise DataError(f"synthetic source option {key} must be an integer, received {key}={value!r}") from None


def parse_source(spec: str, file_ok: bool = False) -> SourceSpec:
    """Parses a `--data` value (`file_ok`: a local path may be a file, not only a directory).

    Example:
    >>> parse_source("synthetic?size=100&seed=3").param("size", 0)
    100
    >>> parse_source("tfds:imdb_reviews").name
    'imdb_reviews'
    """
    if not spec:
        raise DataError("the data source is empty: use 'synthetic', 'tfds:NAME' or a directory")
    if spec == "synthetic" or spec.startswith("synthetic?"):
        query = spec.partition("?")[2]
        params = urllib.parse.parse_qsl(query, keep_blank_values=True, strict_parsing=False)
        known = {"size", "seed"}
        unknown = sorted({k for k, _ in params} - known)
        if unknown:
            raise DataError(f"unknown synthetic source option(s) {unknown} in {spec!r}; known: {sorted(known)}")
        return SourceSpec("synthetic", params=tuple(params))
    if spec.startswith("tfds:"):
        name = spec[len("tfds:") :]
        if not name:
            raise DataError(f"tfds source needs a dataset name, as in tfds:imdb_reviews (received {spec!r})")
        return SourceSpec("tfds", name)
    if not os.path.exists(spec):
        raise DataError(
            f"data source {spec!r} does not exist (expected 'synthetic', 'tfds:NAME' or a data directory)"
        )
    if not os.path.isdir(spec) and not file_ok:
        raise DataError(f"data source {spec!r} is a file; give the directory that holds the split files")
    return SourceSpec("local", os.path.abspath(spec))


def split_off(examples: Sequence, fraction: float, seed: int) -> tuple[list, list]:
    """Splits a held-out part from `examples` with a fixed seed: returns (rest, held_out)."""
    if not 0 < fraction < 1:
        raise DataError(f"split fraction must be in (0, 1), received {fraction}")
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    n_held = max(1, int(round(len(examples) * fraction)))
    if n_held >= len(examples):
        raise DataError(f"cannot split {len(examples)} example(s) into two non-empty parts")
    held = set(order[:n_held])
    rest = [e for i, e in enumerate(examples) if i not in held]
    return rest, [examples[i] for i in sorted(held)]


def complete_splits(splits: dict, origins: dict[str, str], dev_fraction: float, test_fraction: float,
                    seed: int) -> tuple[dict, str]:
    """Makes missing test and dev splits from train (fixed seed); returns the splits and a note
    of where each came from, for the run's config.

    Example:
    >>> splits, note = complete_splits({"train": list(range(20))}, {"train": "train.tsv"}, 0.1, 0.1, seed=0)
    >>> sorted(splits), note
    (['dev', 'test', 'train'], 'train: train.tsv; test: 10% of train (seed 0); dev: 10% of train (seed 0)')
    """
    notes = [f"{split}: {origin}" for split, origin in origins.items()]
    for split, fraction in (("test", test_fraction), ("dev", dev_fraction)):
        if split not in splits:
            splits["train"], splits[split] = split_off(splits["train"], fraction, seed)
            notes.append(f"{split}: {fraction:.0%} of train (seed {seed})")
    return splits, "; ".join(notes)
