"""Character-level features of words, so that a word never seen in training still gets a
representation from its spelling (suffixes, capitals, digits). Reference: Ma & Hovy, 2016,
"End-to-end Sequence Labeling via Bi-directional LSTM-CNNs-CRF", https://arxiv.org/abs/1603.01354."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from layers import PACKAGE


@keras.saving.register_keras_serializable(package=PACKAGE)
class CharCNN(keras.layers.Layer):
    """For each word: its characters embedded, a convolution of width `kernel_size` over them
    (ReLU), and the maximum over the word's characters (padding left out):

        f_w = max_{j < len(w)} relu(conv([e(c_{j-k/2}) ... e(c_{j+k/2})]))

    Args:
        vocab_size: characters, padding (0) included.  embedding_dim: character embedding width.
        filters: features per word.  kernel_size: characters per convolution window.

    Call arguments: char_ids (batch, time, chars) int, 0 = padding.
    Returns: (batch, time, filters); a word with no characters (padding) gets zeros.
    Masking: outputs the mask of the words (those with at least one character), so that
        concatenated with a masked word embedding the padding stays masked.

    Example:
    >>> tuple(CharCNN(30, filters=8)(keras.ops.ones((2, 5, 7), "int32")).shape)
    (2, 5, 8)
    """

    def __init__(self, vocab_size: int, embedding_dim: int = 32, filters: int = 64, kernel_size: int = 3, **kwargs):
        super().__init__(**kwargs)
        for name, value in (("vocab_size", vocab_size), ("embedding_dim", embedding_dim), ("filters", filters),
                            ("kernel_size", kernel_size)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, received {name}={value!r}")
        self.vocab_size, self.embedding_dim, self.filters, self.kernel_size = (vocab_size, embedding_dim, filters,
                                                                                kernel_size)
        self.embedding = keras.layers.Embedding(vocab_size, embedding_dim, name="char_embedding")
        # A (1, k) 2-D convolution is a 1-D convolution over each word's characters.
        self.conv = keras.layers.Conv2D(filters, (1, kernel_size), padding="same", activation="relu", name="char_conv")

    def build(self, input_shape):
        self.embedding.build(input_shape)
        self.conv.build(tuple(input_shape) + (self.embedding_dim,))

    def call(self, char_ids):
        features = self.conv(self.embedding(char_ids))  # (batch, time, chars, filters), all >= 0
        present = ops.expand_dims(ops.cast(ops.not_equal(char_ids, 0), features.dtype), -1)
        return ops.max(features * present, axis=2)  # ReLU outputs are >= 0: zeroed padding never wins

    def compute_mask(self, char_ids, mask=None):
        # A word is there when it has characters. Keras's Concatenate masks a position only where
        # every input masks it, so an unmasked CharCNN would unmask the padding of a word embedding.
        return ops.any(ops.not_equal(char_ids, 0), axis=-1)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:2]) + (self.filters,)

    def get_config(self):
        return {**super().get_config(), "vocab_size": self.vocab_size, "embedding_dim": self.embedding_dim,
                "filters": self.filters, "kernel_size": self.kernel_size}


# Characters as ids: code point + 1 for Latin-1 (U+0000-U+00FF), one id for every other character.
SPELLING_CHARS = 257


@keras.saving.register_keras_serializable(package=PACKAGE)
class VocabularySpelling(keras.layers.Layer):
    """Token ids -> the characters of each token's vocabulary entry, for a `CharCNN` in models
    whose input is word ids only: the spelling of every known word, rare ones included, without
    changing the model's input. A word outside the vocabulary ([UNK]) has no characters here.

    The table (vocab_size, max_chars) is a non-trainable weight, set from the vocabulary's tokens
    by `set_vocabulary` and saved with the model. Character ids: code point + 1 below U+0100,
    `SPELLING_CHARS - 1` above; 0 is padding. Words longer than `max_chars` keep their first
    `max_chars - suffix` characters and their last `suffix` ones (endings carry morphology).

    Args:
        vocab_size: tokens in the vocabulary.  max_chars: characters kept per word.
        suffix: of which the word's last ones (the rest from its start).

    Call arguments: token_ids (batch, time) int.
    Returns: (batch, time, max_chars) int32 character ids.

    Example:
    >>> layer = VocabularySpelling(3, max_chars=4, suffix=1)
    >>> layer.set_vocabulary(["[PAD]", "[UNK]", "great"])
    >>> keras.ops.convert_to_numpy(layer(keras.ops.convert_to_tensor([[2, 1]]))).tolist()
    [[[104, 115, 102, 117], [0, 0, 0, 0]]]
    """

    def __init__(self, vocab_size: int, max_chars: int = 16, suffix: int = 4, **kwargs):
        super().__init__(**kwargs)
        if not 0 <= suffix < max_chars:
            raise ValueError(f"suffix must be in [0, max_chars), received suffix={suffix}, max_chars={max_chars}")
        self.vocab_size, self.max_chars, self.suffix = vocab_size, max_chars, suffix

    def build(self, input_shape):
        self.table = self.add_weight(shape=(self.vocab_size, self.max_chars), dtype="int32", initializer="zeros",
                                     trainable=False, name="table")

    def set_vocabulary(self, tokens, reserved: int = 2) -> None:
        """The table from the vocabulary's tokens; the first `reserved` ([PAD], [UNK]) get no characters."""
        if len(tokens) != self.vocab_size:
            raise ValueError(f"{len(tokens)} tokens for a vocabulary of {self.vocab_size}")
        if not self.built:
            self.build(None)
        table = np.zeros((self.vocab_size, self.max_chars), "int32")
        head = self.max_chars - self.suffix
        for i, token in enumerate(tokens[reserved:], start=reserved):
            kept = token if len(token) <= self.max_chars else token[:head] + token[len(token) - self.suffix:]
            table[i, :len(kept)] = [ord(c) + 1 if ord(c) < SPELLING_CHARS - 1 else SPELLING_CHARS - 1 for c in kept]
        self.table.assign(table)

    def call(self, token_ids):
        return ops.take(self.table, ops.cast(token_ids, "int32"), axis=0)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.max_chars,)

    def get_config(self):
        return {**super().get_config(), "vocab_size": self.vocab_size, "max_chars": self.max_chars,
                "suffix": self.suffix}
