"""Every private TensorFlow / LiteRT hook that `export/` relies on, each wrapped once, with why.

`tests/test_internals.py` names the hook that an upgrade removed.
"""

from __future__ import annotations

# Freezing variables into constants: TFLite converts a recurrent model with builtin ops only
# when its weights are frozen (STACK-NOTES); TensorFlow has no public v2 API for it.
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2  # noqa: F401


def interpreter_op_names(interpreter) -> list[str]:
    """The op names of a loaded TFLite model (to refuse Flex ops and report the recurrent op):
    the interpreter has no public listing of its ops."""
    return sorted({op["op_name"] for op in interpreter._get_ops_details()})


def _has_ops_details() -> bool:
    from ai_edge_litert.interpreter import Interpreter

    return callable(getattr(Interpreter, "_get_ops_details", None))


HOOKS = {
    "tensorflow.python.framework.convert_to_constants.convert_variables_to_constants_v2":
        lambda: callable(convert_variables_to_constants_v2),
    "ai_edge_litert.interpreter.Interpreter._get_ops_details": _has_ops_details,
}
