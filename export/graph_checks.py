"""Checks on a traced graph before it is exported."""

from __future__ import annotations

from export import ExportError


def graph_op_types(concrete_function) -> set[str]:
    """Every op type in a concrete function's graph, including the functions it calls."""
    graph_def = concrete_function.graph.as_graph_def()
    types = {node.op for node in graph_def.node}
    for function in graph_def.library.function:
        types.update(node.op for node in function.node_def)
    return types


def check_no_cudnn(concrete_function) -> None:
    """A model traced on a GPU can carry cuDNN-only ops, which fail on CPU serving and in
    converters: refuse to export them."""
    cudnn = sorted(op for op in graph_op_types(concrete_function) if "Cudnn" in op)
    if cudnn:
        raise ExportError(f"the traced graph contains cuDNN-only ops {cudnn}; trace the export on a CPU "
                          "(CUDA_VISIBLE_DEVICES=) so that it serves everywhere")
