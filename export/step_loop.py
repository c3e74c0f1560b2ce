"""Host-side decoding over exported encoder and decoder-step models, in any runtime whose
callables take and return dicts of numpy arrays (TFLite, onnxruntime, a SavedModel signature).

The step models of sequence-to-sequence apps take `token_ids` (batch,), the encoder's outputs
and the states `state_0, state_1, ...`, and return `logits` and the new states.
"""

from __future__ import annotations

import numpy as np


def greedy_step_loop(encode, step, inputs: dict[str, np.ndarray], state_names: list[str], start_id: int,
                     end_id: int, max_steps: int, carried: tuple[str, ...] = ("memory", "keys"),
                     step_takes_inputs: bool = True, next_prefix: str = "") -> list[int]:
    """Greedy decoding of one example (batch 1): `encode(**inputs)` gives the carried tensors
    and the first states; each `step` gets the previous token, `inputs` (unless not
    `step_takes_inputs`), the carried tensors and the states. Returns the ids decoded, `end_id`
    included when reached. The step returns each new state as `next_prefix + name` (ONNX
    refuses an output named as an input).

    Example (a step that counts down from the start id):
    >>> encode = lambda **x: {"memory": x["source_ids"], "state_0": np.zeros((1, 1))}
    >>> step = lambda token_ids, **x: {"logits": np.eye(5)[token_ids - 1], "state_0": x["state_0"]}
    >>> greedy_step_loop(encode, step, {"source_ids": np.zeros((1, 2))}, ["state_0"], 4, 1, 10,
    ...                  carried=("memory",))
    [3, 2, 1]
    """
    encoded = encode(**inputs)
    states = {name: encoded[name] for name in state_names}
    fixed = {**(inputs if step_takes_inputs else {}), **{name: encoded[name] for name in carried}}
    token, out = start_id, []
    for _ in range(max_steps):
        result = step(token_ids=np.array([token], np.int32), **fixed, **states)
        token = int(np.argmax(result["logits"][0]))
        out.append(token)
        states = {name: result[next_prefix + name] for name in state_names}
        if token == end_id:
            break
    return out


def decode_exported(export_dir, runtime: str, input_name: str, rows, state_names: list[str], start_id: int,
                    end_id: int, max_steps: int, **loop_options) -> list[list[int]]:
    """Greedy ids of each row (one example's input, without its batch axis) through the
    `encoder.<runtime>` and `decoder_step.<runtime>` files of an export directory, each loaded
    once; `loop_options` as `greedy_step_loop`'s."""
    from export.runtimes import load_runner

    encoder, step = (load_runner(export_dir, runtime, file=f"{name}.{runtime}") for name in ("encoder", "decoder_step"))
    return [greedy_step_loop(encoder, step, {input_name: row[None]}, state_names, start_id, end_id, max_steps,
                             **loop_options) for row in rows]
