"""Character features of words: `CharCNN` against a NumPy convolution, `VocabularySpelling`'s table
against the spelling rule written out in Python."""

import keras
import numpy as np
import pytest

from layers.char_cnn import SPELLING_CHARS, CharCNN, VocabularySpelling


def test_char_cnn_is_the_maximum_over_a_words_characters_of_a_relu_convolution():
    keras.utils.set_random_seed(3)
    layer = CharCNN(12, embedding_dim=5, filters=7, kernel_size=3)
    ids = np.array([[[3, 4, 5, 0, 0], [11, 0, 0, 0, 0], [0, 0, 0, 0, 0]]], "int32")  # 3 letters, 1, none
    out = keras.ops.convert_to_numpy(layer(ids))
    table = keras.ops.convert_to_numpy(layer.embedding.embeddings)
    kernel, bias = (keras.ops.convert_to_numpy(w) for w in layer.conv.weights)  # (1, 3, 5, 7), (7,)
    for word, row in zip(ids[0], out[0]):
        x = np.pad(table[word], ((1, 1), (0, 0)))  # "same" padding of a width-3 window
        conv = np.stack([np.einsum("kd,kdf->f", x[j:j + 3], kernel[0]) + bias for j in range(len(word))])
        present = word != 0
        expected = np.maximum(conv[present], 0).max(axis=0) if present.any() else np.zeros(7)
        np.testing.assert_allclose(row, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer.compute_mask(ids)), [[True, True, False]])


def _spelled(word, max_chars, suffix):
    kept = word if len(word) <= max_chars else word[:max_chars - suffix] + word[len(word) - suffix:]
    ids = [ord(c) + 1 if ord(c) < 256 else SPELLING_CHARS - 1 for c in kept]
    return ids + [0] * (max_chars - len(ids))


def test_vocabulary_spelling_looks_up_each_tokens_characters(tmp_path):
    tokens = ["[PAD]", "[UNK]", "good", "naïve", "北京", "unbelievably", "x"]
    layer = VocabularySpelling(len(tokens), max_chars=8, suffix=3)
    layer.set_vocabulary(tokens)
    ids = np.array([[2, 3, 4, 5, 6, 1, 0]], "int32")
    out = keras.ops.convert_to_numpy(layer(ids))
    assert out.shape == (1, 7, 8) and out.dtype == np.int32
    for position, token_id in enumerate(ids[0][:5]):
        assert out[0, position].tolist() == _spelled(tokens[token_id], 8, 3)
    assert out[0, 3].tolist()[:5] == _spelled("unbel", 5, 0) and out[0, 3].tolist()[5:] == _spelled("bly", 3, 0)
    assert not out[0, 5:].any()  # [UNK] and [PAD] have no characters
    # the table is a weight of the model: it is saved and loaded with it, and never trained
    token_ids = keras.Input((None,), dtype="int32")
    model = keras.Model(token_ids, layer(token_ids))
    assert not model.trainable_weights
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded(ids)), out)


def test_vocabulary_spelling_refuses_a_vocabulary_of_another_size():
    with pytest.raises(ValueError, match="3 tokens for a vocabulary of 4"):
        VocabularySpelling(4).set_vocabulary(["[PAD]", "[UNK]", "a"])
    with pytest.raises(ValueError, match="suffix must be in"):
        VocabularySpelling(4, max_chars=4, suffix=4)
