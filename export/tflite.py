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

import keras
import numpy as np
import tensorflow as tf
from export import ExportError
from export.internals import convert_variables_to_constants_v2, interpreter_op_names
from export.stderr import quiet, silenced_stderr
from export.graph_checks import check_no_cudnn
from export.parity import check, max_differences


def export_tflite(fn: tf.types.experimental.GenericFunction, input_signature: list[tf.TensorSpec], out_path,
                  sample_inputs: dict[str, np.ndarray], reference: dict[str, np.ndarray], atol: float | None = 1e-4,
                  trackable_obj=None, quantize: bool = False, fusion=None) -> dict:
    """Freezes `fn` at the fixed shapes of `input_signature` (batch included) and converts it.

    With `quantize`, weights are stored as int8 (dynamic-range quantization) and `atol=None`
    skips the numeric check: the caller judges the metric change instead.
    `trackable_obj` (the model) selects the converter's current path; without it, the
    deprecated one fails on recurrent models. `sample_inputs` hold any number of rows of the
    signature's shape beyond the batch axis; they run through the interpreter one
    signature-sized batch at a time.

    `fusion`: `fusion("litert")` is the context (`layers.runtime_recurrent.fuse_recurrent`) under
    which recurrent layers trace as LiteRT's composite LSTM function. When
    every recurrent layer of the graph has it, `fn` is traced with the model's weights read as
    constants (`keras.StatelessScope`; freezing would inline the function) and converts to fused
    `UNIDIRECTIONAL_SEQUENCE_LSTM` ops; if that fails or misses parity, the `WHILE` export is
    made instead and the report says why (`fused_fallback`).

    Returns {"max_abs_diff", "bytes", "ops", "input_shapes"[, "recurrent_layers", "fused_fallback"]}.
    Raises ExportError naming the ops if conversion needs anything beyond builtin ops, or if
    parity fails; nothing is left at `out_path` then.
    """
    for spec in input_signature:
        if not spec.shape.is_fully_defined():
            raise ExportError(f"TFLite export needs fixed input shapes, received {spec.name}: {spec.shape}")
    out_path = pathlib.Path(out_path)
    layers, fallback = {}, None
    if fusion is not None:
        weights = [(v, tf.constant(v.numpy())) for v in getattr(trackable_obj, "variables", [])]

        def with_constant_weights(*inputs):
            with keras.StatelessScope(state_mapping=weights):
                return fn.python_function(*inputs)

        with fusion("litert") as found:
            concrete = tf.function(with_constant_weights).get_concrete_function(*input_signature)
        layers = {**found.specs, **{name: f"WHILE: {why}" for name, why in found.unfused.items()}}
        if found.specs and not found.unfused:
            try:
                report = _check_and_write(_convert(concrete, trackable_obj, quantize), out_path, input_signature,
                                          sample_inputs, reference, atol)
                return {**report, "recurrent_layers": layers}
            except ExportError as e:
                fallback = str(e)
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

    report = _check_and_write(_convert(named.get_concrete_function(), trackable_obj, quantize), out_path,
                              input_signature, sample_inputs, reference, atol)
    if layers:
        why = "see fused_fallback" if fallback else "another layer of the model is not fused"
        report["recurrent_layers"] = {name: op if op.startswith("WHILE") else f"WHILE: {why}"
                                      for name, op in layers.items()}
    if fallback:
        report["fused_fallback"] = f"the fused LSTM op failed, WHILE loops used instead: {fallback}"
    return report


def _convert(concrete, trackable_obj, quantize: bool) -> bytes:
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], trackable_obj)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantize:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    try:
        return converter.convert()
    except Exception as e:
        lines = [line.strip() for line in str(e).splitlines() if "op" in line.lower()] or [str(e).strip()]
        raise ExportError(f"TFLite conversion with builtin ops only failed: {lines[0][:300]}") from None


def _check_and_write(data: bytes, out_path: pathlib.Path, input_signature, sample_inputs, reference, atol) -> dict:
    """Runs `data` in the interpreter, checks parity and writes it to `out_path` atomically."""
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

    def __init__(self, path, threads: int | None = None):
        from ai_edge_litert.interpreter import Interpreter

        with silenced_stderr(quiet()):  # the runtime's "Created TensorFlow Lite XNNPACK delegate" line
            self.interpreter = Interpreter(model_path=str(path), num_threads=threads)
            self.ops = interpreter_op_names(self.interpreter)  # the model's own: allocating applies the delegate
            self.interpreter.allocate_tensors()  # before the first reset_all_variables
            self.runner = self.interpreter.get_signature_runner()
        details = self.runner.get_input_details()
        self.input_shapes = {name: tuple(d["shape"]) for name, d in details.items()}

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
            # A fused LSTM's states are variable tensors that persist across invocations: each
            # batch starts from zeros, as the Keras model does.
            self.interpreter.reset_all_variables()
            with silenced_stderr(quiet()):  # the delegate is created, and says so, on the first run
                result = self.runner(**chunk)
            for name, value in result.items():  # copies: the interpreter refuses to run while views of it live
                outputs.setdefault(name, []).append(np.array(value[: min(batch, total - start)]))
        return {name: np.concatenate(parts) for name, parts in outputs.items()}
