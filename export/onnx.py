"""ONNX export with tf2onnx (`from_function`: `from_keras` does not work with Keras 3), checked
in onnxruntime.

Recurrent layers become the runtime's own `LSTM` / `GRU` nodes where they have one
(`export/onnx_recurrent.py`): the caller hands `fusion`, a context factory (`layers.runtime_recurrent.
fuse_recurrent`) under which the model traces each fusable layer as a stand-in op.
When that graph fails to convert, to load or to match the Keras model, the export falls back to
tf2onnx's own conversion (a `Loop` per layer) and says why in its report.
"""

from __future__ import annotations

import os
import pathlib

import numpy as np
import tensorflow as tf

from export import ExportError
from export.graph_checks import check_no_cudnn
from export.onnx_recurrent import DOMAIN, insert_fused_nodes
from export.parity import check, max_differences

OPSET = 17


def export_onnx(fn: tf.types.experimental.GenericFunction, input_signature: list[tf.TensorSpec], out_path,
                sample_inputs: dict[str, np.ndarray], reference: dict[str, np.ndarray], atol: float = 1e-4,
                fusion=None) -> dict:
    """Converts `fn` (a `tf.function` returning a dict of tensors) with dynamic axes where the
    signature has None, runs `sample_inputs` in onnxruntime and compares with `reference`.

    `fusion`: `fusion("onnx")` is a context yielding `.specs` and `.unfused` (see
    `layers.runtime_recurrent.fuse_recurrent`); None converts every layer with tf2onnx.

    Returns {"max_abs_diff", "bytes", "opset", "recurrent_ops" (the op types of the graph:
    "LSTM"/"GRU"/"Loop"...), "recurrent_layers" (layer -> the op it became, and why when a
    `Loop`)}. Raises ExportError if conversion or parity fails; nothing is left at `out_path` then.
    """
    check_no_cudnn(fn.get_concrete_function(*input_signature))
    out_path = pathlib.Path(out_path)
    layers, fallback = {}, None
    if fusion is not None:
        try:
            with fusion("onnx") as found:
                # A fresh tf.function: the stand-in ops must not land in `fn`'s own traces.
                proto = _convert(tf.function(fn.python_function), input_signature, custom=True)
            fused = insert_fused_nodes(proto, found.specs)
            layers = {f["layer"]: f"{f['op']} ({f['direction']})" for f in fused}
            layers.update({name: f"Loop: {why}" for name, why in found.unfused.items()})
            differences = _check_and_write(proto, out_path, sample_inputs, reference, atol)
        except ExportError as e:
            fallback, layers = str(e), {}
    if fusion is None or fallback is not None:
        proto = _convert(fn, input_signature, custom=False)
        differences = _check_and_write(proto, out_path, sample_inputs, reference, atol)
    op_types = {node.op_type for node in proto.graph.node}
    report = {"max_abs_diff": differences, "bytes": out_path.stat().st_size, "opset": OPSET,
              "recurrent_ops": sorted(op_types & {"LSTM", "GRU", "RNN", "Loop", "Scan"})}
    if layers:
        report["recurrent_layers"] = layers
    if fallback:
        report["fused_fallback"] = f"the runtime's fused ops failed, tf2onnx's loops used instead: {fallback}"
    return report


def _convert(fn, input_signature, custom: bool):
    import tf2onnx
    from onnx import helper

    options = {}
    if custom:  # stand-in ops pass through as nodes of our domain, replaced afterwards
        options = {"custom_op_handlers": {"EagerPyFunc": (_pass_through, [])},
                   "extra_opset": [helper.make_opsetid(DOMAIN, 1)]}
    try:
        proto, _ = tf2onnx.convert.from_function(fn, input_signature=input_signature, opset=OPSET, **options)
    except Exception as e:
        lines = [line for line in str(e).splitlines() if line.strip()] or [type(e).__name__]
        raise ExportError(f"tf2onnx could not convert the model: {lines[-1].strip()}") from None
    return proto


def _pass_through(ctx, node, name, args):
    node.domain = DOMAIN
    return node


def _check_and_write(proto, out_path: pathlib.Path, sample_inputs, reference, atol) -> dict:
    """Runs `proto` in onnxruntime, checks parity and writes it to `out_path` atomically."""
    import onnxruntime

    tmp = out_path.with_name(f".{out_path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(proto.SerializeToString())
        try:
            session = onnxruntime.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        except Exception as e:
            message = str(e).replace(str(tmp), out_path.name)
            raise ExportError(f"onnxruntime rejects the converted model: {message[:400]}") from None
        names = [o.name for o in session.get_outputs()]
        outputs = dict(zip(names, session.run(None, sample_inputs)))
        differences = max_differences(reference, outputs)
        check("onnx", differences, atol)
        os.replace(tmp, out_path)
    finally:
        tmp.unlink(missing_ok=True)
    return differences
