import pytest
import tensorflow as tf

from pipelines.errors import DataError
from pipelines.vocabulary import OOV_ID, OOV_TOKEN, PAD_ID, PAD_TOKEN, Vocabulary


def test_build_orders_by_count_then_alphabet_and_applies_caps():
    docs = [["b", "a", "c", "a"], ["c", "a", "d"], ["e"]]
    vocab = Vocabulary.build(docs)
    assert vocab.tokens == [PAD_TOKEN, OOV_TOKEN, "a", "c", "b", "d", "e"]
    assert Vocabulary.build(docs, min_count=2).tokens == [PAD_TOKEN, OOV_TOKEN, "a", "c"]
    assert Vocabulary.build(docs, max_size=4).tokens == [PAD_TOKEN, OOV_TOKEN, "a", "c"]


def test_oov_and_padding_ids():
    vocab = Vocabulary.build([["good", "movie"]])
    assert vocab.encode(["good", "film", "movie"]) == [vocab.tokens.index("good"), OOV_ID, vocab.tokens.index("movie")]
    assert PAD_ID == 0 and vocab.tokens[PAD_ID] == PAD_TOKEN
    assert vocab.decode([2, 0, 0]) == ["good"]


def test_lookup_table_agrees_with_encode():
    vocab = Vocabulary.build([["x", "y", "y", "z"]])
    table = vocab.lookup_table()
    tokens = ["y", "x", "nope", "z", ""]
    assert table.lookup(tf.constant(tokens)).numpy().tolist() == vocab.encode(tokens)


def test_save_load_round_trip(tmp_path):
    vocab = Vocabulary.build([["ünïcode", "ok", "ok"]])
    vocab.save(tmp_path / "vocab.txt")
    assert Vocabulary.load(tmp_path / "vocab.txt").tokens == vocab.tokens


def test_rejects_bad_arguments(tmp_path):
    with pytest.raises(DataError, match="vocab_size must be at least 3, received vocab_size=2"):
        Vocabulary.build([["a"]], max_size=2)
    with pytest.raises(DataError, match="starts with"):
        Vocabulary(["a", "b"])
    with pytest.raises(DataError, match="does not exist"):
        Vocabulary.load(tmp_path / "missing.txt")
