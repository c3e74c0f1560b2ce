"""Export to SavedModel, ONNX and TFLite, each checked against the Keras model.

Nothing here imports from `apps`: an app hands over its serving module, sample inputs and the
reference outputs of its Keras model.
"""


class ExportError(RuntimeError):
    """An export that could not be written, or whose parity check failed."""
