"""ONNX export with tf2onnx (`from_function`: `from_keras` does not work with Keras 3), checked
in onnxruntime."""

from __future__ import annotations

import os
import pathlib

import numpy as np
import tensorflow as tf

from export import ExportError
from export.graph_checks import check_no_cudnn
from export.parity import check, max_differences

OPSET = 17


def export_onnx(fn: tf.types.experimental.GenericFunction, input_signature: list[tf.TensorSpec], out_path,
                sample_inputs: dict[str, np.ndarray], reference: dict[str, np.ndarray], atol: float = 1e-4) -> dict:
    """Converts `fn` (a `tf.function` returning a dict of tensors) with dynamic axes where the
    signature has None, runs `sample_inputs` in onnxruntime and compares with `reference`.

    Returns {"max_abs_diff", "bytes", "recurrent_ops": "LSTM"/"GRU"/"Loop"/..., "opset"}.
    Raises ExportError if conversion or parity fails; nothing is left at `out_path` then.
    """
    import onnxruntime
    import tf2onnx

    check_no_cudnn(fn.get_concrete_function(*input_signature))
    out_path = pathlib.Path(out_path)
    tmp = out_path.with_name(f".{out_path.name}.{os.getpid()}.tmp")
    try:
        try:
            proto, _ = tf2onnx.convert.from_function(fn, input_signature=input_signature, opset=OPSET)
        except Exception as e:
            lines = [line for line in str(e).splitlines() if line.strip()] or [type(e).__name__]
            raise ExportError(f"tf2onnx could not convert the model: {lines[-1].strip()}") from None
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
    op_types = {node.op_type for node in proto.graph.node}
    recurrent = sorted(op_types & {"LSTM", "GRU", "RNN", "Loop", "Scan"})
    return {"max_abs_diff": differences, "bytes": out_path.stat().st_size, "opset": OPSET,
            "recurrent_ops": recurrent}
