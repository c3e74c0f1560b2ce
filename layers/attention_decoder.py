"""A recurrent decoder that attends to encoder memory (Bahdanau et al. 2015; Luong et al. 2015).

Keras 3's `RNN` cannot hand encoder memory to a cell, so this layer runs its own loop over the
target steps (`tf.while_loop`), closing over `memory`, its projected `keys` and `memory_mask`.
One `step` serves teacher-forced training, greedy decoding and beam search.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from layers import PACKAGE, cells
from layers.bahdanau_attention import BahdanauAttention
from layers.luong_attention import LuongAttention

ATTENTIONS = ("bahdanau", "luong", "none")


@keras.saving.register_keras_serializable(package=PACKAGE)
class AttentionDecoder(keras.layers.Layer):
    """One step, from the previous token y_{i-1} and states s_{i-1}:

        c_i, a_i = attention(query=h_{i-1}, memory, memory_mask)     (a_i over source positions)
        h_i, s_i = cell([embed(y_{i-1}); c_i], s_{i-1})              (input feeding; without it: embed(y_{i-1}))
        logits_i = W_o [h_i; c_i] + b_o

    With `attention="none"`, c_i is the mean of the unmasked memory at every step (the
    encoder-summary baseline of Cho et al. 2014).

    Args:
        vocab_size: target vocabulary size.  embedding_dim: target embedding width.
        units: decoder cell size.  cell: a name of `layers.cells`.
        attention: "bahdanau", "luong" (general score) or "none".
        attention_units: width of Bahdanau's scoring layer (default `units`).
        input_feeding: feed the context into the cell input.

    Call arguments:
        target_ids: (batch, time) int, the decoder inputs (start token, then the target, shifted).
        memory: (batch, source_time, memory_dim) encoder outputs.
        memory_mask: (batch, source_time) boolean.
        initial_state: optional (batch, units), the first state's h (other states start at 0).
        return_attention: also return the weights (batch, time, source_time).

    Returns:
        logits (batch, time, vocab_size) [, attention weights].

    Example:
    >>> decoder = AttentionDecoder(vocab_size=7, embedding_dim=4, units=5)
    >>> logits = decoder(keras.ops.ones((2, 3), "int32"), keras.ops.ones((2, 6, 8)))
    >>> tuple(logits.shape)
    (2, 3, 7)
    """

    def __init__(self, vocab_size: int, embedding_dim: int, units: int, cell: str = "lstm",
                 attention: str = "bahdanau", attention_units: int | None = None, input_feeding: bool = True,
                 **kwargs):
        super().__init__(**kwargs)
        if attention not in ATTENTIONS:
            raise ValueError(f"attention must be one of {ATTENTIONS}, received attention={attention!r}")
        self.vocab_size, self.embedding_dim, self.units = vocab_size, embedding_dim, units
        self.cell_name, self.attention_name = cell, attention
        self.attention_units, self.input_feeding = attention_units, input_feeding
        self.embedding = keras.layers.Embedding(vocab_size, embedding_dim, name="target_embedding")
        self.cell = cells.get(cell, units)
        if attention == "bahdanau":
            self.attention = BahdanauAttention(attention_units or units, name="attention")
        elif attention == "luong":
            self.attention = LuongAttention("general", name="attention")
        else:
            self.attention = None
        self.output_layer = keras.layers.Dense(vocab_size, name="logits")

    def build(self, target_ids_shape, memory_shape=None, *args, **kwargs):
        target_shape = target_ids_shape
        memory_dim = self.memory_dim = int(memory_shape[-1])
        self.embedding.build(target_shape)
        cell_input = self.embedding_dim + (memory_dim if self.input_feeding else 0)
        self.cell.build((None, cell_input))
        if self.attention is not None:
            self.attention.build((None, self.units), tuple(memory_shape))
        self.output_layer.build((None, self.units + memory_dim))

    def prepare_memory(self, memory, memory_mask=None):
        """What the steps reuse: the keys (projected once per source) or, without attention,
        the mean of the memory."""
        if self.attention is not None:
            return self.attention.project_keys(memory)
        if memory_mask is None:
            return ops.mean(memory, axis=1)
        weights = ops.expand_dims(ops.cast(memory_mask, memory.dtype), -1)
        return ops.sum(memory * weights, axis=1) / ops.maximum(ops.sum(weights, axis=1), 1.0)

    def state_sizes(self) -> list[int]:
        sizes = self.cell.state_size
        return [int(s) for s in (sizes if isinstance(sizes, (list, tuple)) else [sizes])]

    def keys_shape(self, batch=None, source_length=None) -> list:
        """The shape of `prepare_memory`'s result (after `build`)."""
        if self.attention is None:
            return [batch, self.memory_dim]  # the memory's mean
        width = self.attention.units if self.attention_name == "bahdanau" else self.units
        return [batch, source_length, width]

    def initial_states(self, first_h):
        """The cell's states: `first_h` (batch, units), then zeros."""
        batch = ops.shape(first_h)[0]
        return [first_h] + [ops.zeros((batch, size), dtype=first_h.dtype) for size in self.state_sizes()[1:]]

    def step(self, token_ids, states, memory, keys, memory_mask=None):
        """(batch,) ids and states -> (logits (batch, vocab), new states, attention (batch, source_time))."""
        if self.attention is not None:
            context, weights = self.attention(states[0], memory, keys=keys, values_mask=memory_mask)
        else:
            context = keys
            weights = ops.zeros(ops.shape(memory)[:2], dtype=memory.dtype)
        x = self.embedding(token_ids)  # (batch, embedding_dim)
        if self.input_feeding:
            x = ops.concatenate([x, context], axis=-1)
        h, new_states = self.cell(x, states)
        logits = self.output_layer(ops.concatenate([h, context], axis=-1))
        return logits, list(new_states), weights

    def call(self, target_ids, memory, memory_mask=None, initial_state=None, return_attention=False):
        keys = self.prepare_memory(memory, memory_mask)
        batch = ops.shape(memory)[0]
        first_h = initial_state if initial_state is not None else ops.zeros((batch, self.units), memory.dtype)
        states = self.initial_states(first_h)
        steps = tf.shape(target_ids)[1]
        logits_ta = tf.TensorArray(self.compute_dtype, size=steps)
        weights_ta = tf.TensorArray(self.compute_dtype, size=steps)

        def body(t, states, logits_ta, weights_ta):
            logits, states, weights = self.step(target_ids[:, t], states, memory, keys, memory_mask)
            return t + 1, states, logits_ta.write(t, logits), weights_ta.write(t, weights)

        _, _, logits_ta, weights_ta = tf.while_loop(lambda t, *_: t < steps, body,
                                                    (tf.constant(0), states, logits_ta, weights_ta))
        logits = tf.transpose(logits_ta.stack(), (1, 0, 2))  # (batch, time, vocab)
        logits = tf.ensure_shape(logits, [None, target_ids.shape[1], self.vocab_size])
        if not return_attention:
            return logits
        return logits, tf.transpose(weights_ta.stack(), (1, 0, 2))  # (batch, time, source_time)

    def get_config(self):
        return {**super().get_config(), "vocab_size": self.vocab_size, "embedding_dim": self.embedding_dim,
                "units": self.units, "cell": self.cell_name, "attention": self.attention_name,
                "attention_units": self.attention_units, "input_feeding": self.input_feeding}
