"""Comparing a runtime's outputs with the Keras model's, and the `parity.json` report."""

from __future__ import annotations

import json
import os
import pathlib

import numpy as np

from export import ExportError


def max_differences(reference: dict, outputs: dict) -> dict[str, float]:
    """Largest absolute difference per numeric output; string outputs must match exactly
    (reported as 0.0, or as an ExportError naming the first mismatch)."""
    result = {}
    for name, expected in reference.items():
        if name not in outputs:
            raise ExportError(f"the exported model has no output {name!r} (it has {sorted(outputs)})")
        expected, actual = np.asarray(expected), np.asarray(outputs[name])
        if expected.shape != actual.shape:
            raise ExportError(f"output {name!r}: shape {actual.shape}, the Keras model gives {expected.shape}")
        if expected.dtype.kind in "SUO":
            mismatch = np.flatnonzero(expected.ravel() != actual.ravel())
            if mismatch.size:
                i = mismatch[0]
                raise ExportError(
                    f"output {name!r} differs at index {i}: {actual.ravel()[i]!r} vs Keras {expected.ravel()[i]!r}"
                )
            result[name] = 0.0
        else:
            result[name] = float(np.max(np.abs(expected.astype(np.float64) - actual.astype(np.float64)), initial=0.0))
    return result


def check(runtime: str, differences: dict[str, float], atol: float) -> None:
    worst = max(differences.values(), default=0.0)
    if not worst <= atol:  # also catches NaN
        raise ExportError(f"{runtime} parity failed: largest difference {worst:.3g} > {atol:g} ({differences})")


def directory_size(path: str | os.PathLike) -> int:
    path = pathlib.Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def write_report(path: str | os.PathLike, report: dict) -> None:
    path = pathlib.Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)
