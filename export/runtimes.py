"""Running an export directory in its runtimes, without the Keras model.

    runner = load_runner("exports/s1", "onnx")     # or "tflite", "savedmodel"
    outputs = runner(token_ids=ids)                # numpy in, dict of numpy out
"""

from __future__ import annotations

import pathlib

import numpy as np

from export import ExportError

RUNTIMES = ("savedmodel", "onnx", "tflite")
FILES = {"savedmodel": "savedmodel", "onnx": "model.onnx", "tflite": "model.tflite"}
NUMERIC_SIGNATURE = "numeric"  # the SavedModel signature with the ONNX/TFLite inputs and outputs


class OnnxRunner:
    def __init__(self, path, threads: int | None = None):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.names = [o.name for o in self.session.get_outputs()]

    def __call__(self, **inputs: np.ndarray) -> dict[str, np.ndarray]:
        return dict(zip(self.names, self.session.run(None, inputs)))


class SavedModelRunner:
    def __init__(self, path, signature: str = NUMERIC_SIGNATURE):
        import tensorflow as tf
        import tensorflow_text  # noqa: F401  (registers the tokenizer ops the SavedModel uses)

        from export.stderr import quiet, silenced_stderr

        self.tf = tf
        with silenced_stderr(quiet()):  # a subword tokenizer's C++ log line as its model loads
            self.function = tf.saved_model.load(str(path)).signatures[signature]

    def __call__(self, **inputs) -> dict[str, np.ndarray]:
        outputs = self.function(**{k: self.tf.constant(v) for k, v in inputs.items()})
        return {k: v.numpy() for k, v in outputs.items()}


def load_runner(export_dir, runtime: str, signature: str = NUMERIC_SIGNATURE, file: str | None = None,
                threads: int | None = None):
    """A callable for one runtime of an export directory (`file`: another file than the
    runtime's default, such as a step model; `threads`: onnxruntime's and LiteRT's thread count,
    None for their default); clear errors for missing or corrupt files."""
    if runtime not in RUNTIMES:
        raise ExportError(f"--runtime must be one of {RUNTIMES}, received {runtime!r}")
    file = file or FILES[runtime]
    path = pathlib.Path(export_dir) / file
    if not path.exists():
        raise ExportError(f"{export_dir} has no {file}: export it with --format {runtime}")
    try:
        if runtime == "onnx":
            return OnnxRunner(path, threads)
        if runtime == "tflite":
            from export.tflite import TFLiteRunner

            return TFLiteRunner(path, threads)
        return SavedModelRunner(path, signature)
    except ExportError:
        raise
    except Exception as e:
        lines = [line.strip() for line in str(e).splitlines() if line.strip()] or [type(e).__name__]
        raise ExportError(f"{path} cannot be loaded ({runtime}): {lines[-1][:300]}") from None
