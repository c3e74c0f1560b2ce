"""One step at a time through a unidirectional model: embedding -> `RecurrentStack` -> optional
mask-aware pooling -> dense head, as a `tf.function` for on-device streaming and step exports."""

from __future__ import annotations

import tensorflow as tf


def cell_step_function(embedding, stack):
    """`step(token_ids (batch,), states: list) -> (outputs (batch, units), new states)` through
    the embedding (a layer with an `embeddings` table, or a function of the token ids (batch,)
    to their features) and each layer's cell, with the state names and sizes in order (layer i's
    states are `layer{i}_state{j}`); (None, why) where a step cannot reproduce the stack."""
    if stack.bidirectional:
        return None, "not available: a bidirectional model needs the whole sequence"
    layer_cells = [layer.cell for layer in stack.recurrent_layers]
    if any(getattr(cell, "collects_statistics", False) for cell in layer_cells):
        return None, f"not available: {stack.cell} normalises with statistics per timestep, not carried in its state"
    sizes, counts = {}, []
    for i, cell in enumerate(layer_cells):
        cell_sizes = cell.state_size if isinstance(cell.state_size, (list, tuple)) else [cell.state_size]
        sizes.update({f"layer{i}_state{j}": int(size) for j, size in enumerate(cell_sizes)})
        counts.append(len(cell_sizes))

    if hasattr(embedding, "embeddings"):  # an embedding layer: the table row itself (a step has no
        table = embedding.embeddings  # padding to mask, and a mask would reach the cells)

        def embedding(token_ids):
            return tf.gather(table, token_ids)

    def step(token_ids, states):
        x, new, first = embedding(token_ids), [], 0  # (batch, features)
        for cell, count in zip(layer_cells, counts):
            x, cell_states = cell(x, list(states[first:first + count]), training=False)
            new.extend(cell_states)
            first += count
        return x, new

    return step, sizes


def stream_step_function(embedding, stack, head, pooling: str = "last"):
    """`stream_step(token_ids (batch,), *states) -> {"probabilities", *new states}` and the
    state names and sizes, all states starting at 0; after the tokens of a text, the
    probabilities equal the model's on the whole text. Returns (None, why) where a step
    cannot reproduce the model.

    Args:
        embedding: the token embedding layer, or a function of token ids to features.
        stack: a unidirectional `RecurrentStack`.
        head: the layer from the pooled features to logits.
        pooling: "last" (the stack's last output), "max" or "mean" (over the steps so far).
    """
    cell_step, sizes = cell_step_function(embedding, stack)
    if cell_step is None:
        return None, sizes
    layer_names = list(sizes)
    width = int(getattr(stack.recurrent_layers[-1].cell, "output_size", stack.units[-1]))
    if pooling == "max":
        sizes.update({"pool_max": width, "pool_count": 1})
    elif pooling == "mean":
        sizes.update({"pool_sum": width, "pool_count": 1})
    names = list(sizes)

    @tf.function
    def stream_step(token_ids, *states):
        state = dict(zip(names, states))
        x, cell_states = cell_step(token_ids, [state[k] for k in layer_names])
        new = dict(zip(layer_names, cell_states))
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
