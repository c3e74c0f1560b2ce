"""TFLite export: frozen weights, fixed input shapes, builtin ops only, checked in the
interpreter.

A Keras 3 recurrent model with a dynamic length does not convert with builtin ops (its
TensorList needs a static element shape); with Select TF (Flex) ops it converts but the
standard interpreter refuses it; an unfrozen fixed-shape model converts but crashes when
invoked. Frozen and fixed-shape, it converts to builtin ops only and runs (STACK-NOTES).
"""

from __future__ import annotations

import os
import pathlib

import numpy as np
import tensorflow as tf
from export import ExportError
from export.internals import convert_variables_to_constants_v2, interpreter_op_names
from export.stderr import quiet, silenced_stderr
from export.graph_checks import check_no_cudnn
from export.parity import check, max_differences


def export_tflite(fn: tf.types.experimental.GenericFunction, input_signature: list[tf.TensorSpec], out_path,
                  sample_inputs: dict[str, np.ndarray], reference: dict[str, np.ndarray], atol: float | None = 1e-4,
                  trackable_obj=None, quantize: bool = False) -> dict:
    """Freezes `fn` at the fixed shapes of `input_signature` (batch included) and converts it.

    With `quantize`, weights are stored as int8 (dynamic-range quantization) and `atol=None`
    skips the numeric check: the caller judges the metric change instead.
    `trackable_obj` (the model) selects the converter's current path; without it, the
    deprecated one fails on recurrent models. `sample_inputs` hold any number of rows of the signature's shape beyond the batch axis;
    they run through the interpreter one signature-sized batch at a time.

    Returns {"max_abs_diff", "bytes", "ops", "input_shapes"}.
    Raises ExportError naming the ops if conversion needs anything beyond builtin ops, or if
    parity fails; nothing is left at `out_path` then.
    """
    for spec in input_signature:
        if not spec.shape.is_fully_defined():
            raise ExportError(f"TFLite export needs fixed input shapes, received {spec.name}: {spec.shape}")
    # A fresh tf.function: an existing trace with dynamic shapes would be reused for the fixed
    # ones (it is their supertype), and that graph does not convert.
    concrete = tf.function(fn.python_function).get_concrete_function(*input_signature)
    check_no_cudnn(concrete)
    frozen = convert_variables_to_constants_v2(concrete)
    # Freezing flattens the outputs (dict keys sorted) to output_0, output_1...: name them again.
    names = sorted(concrete.structured_outputs)

    @tf.function(input_signature=input_signature)
    def named(*inputs):
        outputs = frozen(*inputs)
        return dict(zip(names, outputs if isinstance(outputs, (list, tuple)) else [outputs]))

    converter = tf.lite.TFLiteConverter.from_concrete_functions([named.get_concrete_function()], trackable_obj)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantize:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    try:
        data = converter.convert()
    except Exception as e:
        lines = [line.strip() for line in str(e).splitlines() if "op" in line.lower()] or [str(e).strip()]
        raise ExportError(f"TFLite conversion with builtin ops only failed: {lines[0][:300]}") from None
    out_path = pathlib.Path(out_path)
    tmp = out_path.with_name(f".{out_path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        runner = TFLiteRunner(tmp)
        flex = [op for op in runner.ops if op.startswith("Flex") or op == "CUSTOM"]
        if flex:
            raise ExportError(f"the TFLite model needs non-builtin ops {flex}")
        differences = max_differences(reference, runner(**sample_inputs))
        if atol is not None:
            check("tflite", differences, atol)
        os.replace(tmp, out_path)
    finally:
        tmp.unlink(missing_ok=True)
    return {"max_abs_diff": differences, "bytes": out_path.stat().st_size, "ops": runner.ops,
            "input_shapes": {spec.name: spec.shape.as_list() for spec in input_signature}}


class TFLiteRunner:
    """Runs a fixed-shape TFLite model on inputs of any batch size, a model-sized batch at a time,
    in the LiteRT interpreter (`ai-edge-litert`, the one deployed; `tf.lite.Interpreter` is
    deprecated and TensorFlow keeps only the converter)."""

    def __init__(self, path):
        from ai_edge_litert.interpreter import Interpreter

        with silenced_stderr(quiet()):  # the runtime's "Created TensorFlow Lite XNNPACK delegate" line
            self.interpreter = Interpreter(model_path=str(path))
            self.runner = self.interpreter.get_signature_runner()
        details = self.runner.get_input_details()
        self.input_shapes = {name: tuple(d["shape"]) for name, d in details.items()}
        self.ops = interpreter_op_names(self.interpreter)

    def __call__(self, **inputs: np.ndarray) -> dict[str, np.ndarray]:
        batch = next(iter(self.input_shapes.values()))[0]
        total = len(next(iter(inputs.values())))
        outputs: dict[str, list] = {}
        for start in range(0, total, batch):
            chunk = {}
            for name, value in inputs.items():
                part = value[start:start + batch]
                if len(part) < batch:  # pad the last chunk with copies of its first row
                    part = np.concatenate([part, np.repeat(part[:1], batch - len(part), axis=0)])
                chunk[name] = part
            with silenced_stderr(quiet()):  # the delegate is created, and says so, on the first run
                result = self.runner(**chunk)
            for name, value in result.items():
                outputs.setdefault(name, []).append(value[: min(batch, total - start)])
        return {name: np.concatenate(parts) for name, parts in outputs.items()}
