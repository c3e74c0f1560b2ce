"""A character language model trained with truncated BPTT: states carried between batches."""

from __future__ import annotations

import keras

from layers.carried_state import CarriedState
from layers.embedding_dropout import DropoutEmbedding
from layers.recurrent_stack import RecurrentStack


def char_language_model(vocab_size: int, units: list[int], batch_size: int, cell: str = "lstm",
                        embedding_dim: int = 64, cell_options: dict | None = None, seed: int | None = None,
                        embedding_dropout: float = 0.0, embedding_seed: int | None = None, prefer_fused: bool = False,
                        name: str = "char_language_model", native: bool = False, **dropout) -> keras.Model:
    """{"tokens" (batch, steps) int, "reset" (batch,) bool} -> next-character logits (batch,
    steps, vocab_size): an embedding (0 is padding; `embedding_dropout` drops whole characters,
    `layers.DropoutEmbedding`), a unidirectional `RecurrentStack` (`prefer_fused`: the built-in
    LSTM/GRU where the configuration is plain) whose
    states `CarriedState` keeps from one batch to the next (row i continues row i, as
    `pipelines.streams` lays the text out; `reset` zeroes a row's states where a document
    starts), and a dense softmax layer.

    `dropout`: the `RecurrentStack` options (dropout, recurrent_dropout, output_dropout,
    dropout_mode, weight_dropout); `native`: train it through `layers.native_lstm` (lstm,
    layernorm_lstm, bn_lstm; compile with `jit_compile=False`).

    Example:
    >>> model = char_language_model(30, [16], batch_size=2)
    >>> tuple(model({"tokens": keras.ops.ones((2, 5), "int32"), "reset": keras.ops.ones((2,), "bool")}).shape)
    (2, 5, 30)
    """
    tokens = keras.Input((None,), dtype="int32", name="tokens")
    reset = keras.Input((), dtype="bool", name="reset")
    x = DropoutEmbedding(vocab_size, embedding_dim, mask_zero=True, embedding_dropout=embedding_dropout,
                         seed=embedding_seed, name="embedding")(tokens)
    stack = RecurrentStack(cell, units, return_sequences=True, return_state=True, cell_options=cell_options,
                           prefer_fused=prefer_fused, seed=seed, name="recurrent", native=native, **dropout)
    x = CarriedState(stack, batch_size, name="carried_state")(x, reset)
    logits = keras.layers.Dense(vocab_size, name="logits")(x)
    return keras.Model({"tokens": tokens, "reset": reset}, logits, name=name)
