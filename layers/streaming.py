"""One step at a time through a unidirectional model: embedding -> `RecurrentStack` -> optional
mask-aware pooling -> dense head, as a `tf.function` for on-device streaming and step exports."""

from __future__ import annotations

import tensorflow as tf


def stream_step_function(embedding, stack, head, pooling: str = "last"):
    """`stream_step(token_ids (batch,), *states) -> {"probabilities", *new states}` and the
    state names and sizes, all states starting at 0; after the tokens of a text, the
    probabilities equal the model's on the whole text. Returns (None, why) where a step
    cannot reproduce the model.

    Args:
        embedding: the token embedding layer.  stack: a unidirectional `RecurrentStack`.
        head: the layer from the pooled features to logits.
        pooling: "last" (the stack's last output), "max" or "mean" (over the steps so far).
    """
    if stack.bidirectional:
        return None, "not available: a bidirectional model needs the whole sequence"
    layer_cells = [layer.cell for layer in stack.recurrent_layers]
    if any(getattr(cell, "collects_statistics", False) for cell in layer_cells):
        return None, f"not available: {stack.cell} normalises with statistics per timestep, not carried in its state"
    sizes = {}
    for i, cell in enumerate(layer_cells):
        cell_sizes = cell.state_size if isinstance(cell.state_size, (list, tuple)) else [cell.state_size]
        sizes.update({f"layer{i}_state{j}": int(size) for j, size in enumerate(cell_sizes)})
    width = int(getattr(layer_cells[-1], "output_size", stack.units[-1]))
    if pooling == "max":
        sizes.update({"pool_max": width, "pool_count": 1})
    elif pooling == "mean":
        sizes.update({"pool_sum": width, "pool_count": 1})
    names = list(sizes)

    @tf.function
    def stream_step(token_ids, *states):
        state = dict(zip(names, states))
        x = embedding(token_ids)  # (batch, embedding_dim)
        new = {}
        for i, cell in enumerate(layer_cells):
            keys = [n for n in names if n.startswith(f"layer{i}_")]
            x, cell_states = cell(x, [state[k] for k in keys], training=False)
            new.update(zip(keys, cell_states))
        if pooling == "last":
            pooled = x
        else:
            count = state["pool_count"] + 1.0  # (batch, 1)
            new["pool_count"] = count
            if pooling == "max":
                pooled = tf.where(count > 1.0, tf.maximum(state["pool_max"], x), x)
                new["pool_max"] = pooled
            else:
                new["pool_sum"] = state["pool_sum"] + x
                pooled = new["pool_sum"] / count
        return {"probabilities": tf.nn.softmax(head(pooled), axis=-1), **new}

    return stream_step, sizes
