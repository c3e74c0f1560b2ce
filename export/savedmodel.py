"""SavedModel export: the app's serving module with its signatures, reloaded and checked."""

from __future__ import annotations

import os
import pathlib
import shutil

import tensorflow as tf

from export import ExportError
from export.graph_checks import check_no_cudnn
from export.parity import check, directory_size, max_differences
from export.stderr import quiet, silenced_stderr


def export_savedmodel(
    module: tf.Module,
    signatures: dict,
    out_dir: str | os.PathLike,
    sample_inputs: dict,
    reference: dict,
    atol: float = 1e-5,
    trackable: dict | None = None,
) -> dict:
    """Writes `out_dir` (a SavedModel), reloads it and runs `serving_default` on `sample_inputs`.

    Args:
        module: a `tf.Module` to save; `trackable` objects (the model, lookup tables, modules
            holding them) are attached to it first, so that the signatures' resources are saved.
        signatures: name -> concrete function; must contain "serving_default".
        sample_inputs: keyword inputs of `serving_default`.
        reference: expected outputs (the Keras model's) by output name.
        atol: largest allowed absolute difference in numeric outputs.

    Returns:
        {"max_abs_diff": {output: difference}, "bytes": size on disk}.

    Raises:
        ExportError: the reloaded model disagrees with `reference`; nothing is left at `out_dir`.
    """
    if "serving_default" not in signatures:
        raise ExportError("a SavedModel export needs a serving_default signature")
    out_dir = pathlib.Path(out_dir)
    staged = out_dir.with_name(f".{out_dir.name}.staging-{os.getpid()}")
    shutil.rmtree(staged, ignore_errors=True)
    for name, value in (trackable or {}).items():
        setattr(module, name, value)
    for name, function in signatures.items():
        check_no_cudnn(function)
    try:
        tf.saved_model.save(module, str(staged), signatures=signatures)
        with silenced_stderr(quiet()):  # a subword tokenizer's C++ log line as its model loads
            reloaded = tf.saved_model.load(str(staged))
        outputs = reloaded.signatures["serving_default"](**sample_inputs)
        differences = max_differences(reference, {k: v.numpy() for k, v in outputs.items()})
        check("savedmodel", differences, atol)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(staged, out_dir)
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    return {"max_abs_diff": differences, "bytes": directory_size(out_dir)}
