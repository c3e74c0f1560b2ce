"""ONNX `LSTM` / `GRU` nodes in place of recurrent stand-in ops (see `layers/runtime_recurrent`).

tf2onnx passes a stand-in op through as a node of the `ai.rnnapps` domain (op type
`EagerPyFunc`, its `token` attribute naming the layer's spec); `insert_fused_nodes` swaps each
for the runtime's op over time-major inputs, since onnxruntime runs only `layout=0`:

    x (batch, time, features) -> Transpose -> LSTM(W, R, B, sequence_lens[, P]) -> Y (time, dirs, batch, hidden)
      -> Transpose (batch, time, dirs, hidden) -> Reshape (batch, time, dirs * hidden)     (sequences)
      or Y_h (dirs, batch, hidden) -> Transpose -> Reshape (batch, dirs * hidden)           (last output)

Steps past a sequence's length output zeros and the final state is the one at its last valid
step, as Keras's masked layers give; the reverse direction runs over each sequence's valid part.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

DOMAIN = "ai.rnnapps"


def insert_fused_nodes(model: onnx.ModelProto, specs: dict) -> list[dict]:
    """Replaces every stand-in node of `model` in place; returns, per layer, the op it became."""
    graph, nodes, done = model.graph, [], []
    for node in graph.node:
        if node.domain != DOMAIN:
            nodes.append(node)
            continue
        spec = specs[next(a.s.decode() for a in node.attribute if a.name == "token")]
        fused, initializers = _fused_nodes(node, spec, prefix=f"{node.name}_{len(done)}")
        nodes.extend(fused)
        graph.initializer.extend(initializers)
        done.append({"layer": spec["layer"], "op": spec["op"], "direction": spec["direction"]})
    del graph.node[:]
    graph.node.extend(nodes)
    kept = [o for o in model.opset_import if o.domain != DOMAIN]
    del model.opset_import[:]
    model.opset_import.extend(kept)
    return done


def _fused_nodes(node, spec: dict, prefix: str):
    x, lengths = node.input
    (out,) = node.output
    name = f"{prefix}_{spec['op'].lower()}"

    def const(key, value):
        return numpy_helper.from_array(np.asarray(value), f"{name}_{key}")

    initializers = [const("W", spec["W"].astype(np.float32)), const("R", spec["R"].astype(np.float32)),
                    const("B", spec["B"].astype(np.float32)),
                    const("shape", np.array([0, 0, -1] if spec["return_sequences"] else [0, -1], np.int64))]
    inputs = [f"{name}_time_major", f"{name}_W", f"{name}_R", f"{name}_B", f"{name}_lengths"]
    attributes = {"hidden_size": int(spec["hidden_size"]), "direction": spec["direction"]}
    if spec["op"] == "LSTM":
        if "P" in spec:
            initializers.append(const("P", spec["P"].astype(np.float32)))
            inputs += ["", "", f"{name}_P"]  # initial_h, initial_c: zeros
        if spec.get("input_forget"):
            attributes["input_forget"] = 1
    else:
        attributes["linear_before_reset"] = int(spec["linear_before_reset"])
    nodes = [helper.make_node("Transpose", [x], [f"{name}_time_major"], perm=[1, 0, 2], name=f"{name}_in"),
             helper.make_node("Cast", [lengths], [f"{name}_lengths"], to=onnx.TensorProto.INT32, name=f"{name}_len"),
             helper.make_node(spec["op"], inputs, [f"{name}_Y", f"{name}_Y_h"], name=name, **attributes)]
    if spec["return_sequences"]:
        nodes += [helper.make_node("Transpose", [f"{name}_Y"], [f"{name}_batch_major"], perm=[2, 0, 1, 3],
                                   name=f"{name}_out"),
                  helper.make_node("Reshape", [f"{name}_batch_major", f"{name}_shape"], [out],
                                   name=f"{name}_flat")]
    else:
        nodes += [helper.make_node("Transpose", [f"{name}_Y_h"], [f"{name}_batch_major"], perm=[1, 0, 2],
                                   name=f"{name}_out"),
                  helper.make_node("Reshape", [f"{name}_batch_major", f"{name}_shape"], [out],
                                   name=f"{name}_flat")]
    return nodes, initializers
