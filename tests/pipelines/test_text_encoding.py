import numpy as np
import tensorflow as tf

from pipelines.text_encoding import labeled_text_dataset, pad_ids, text_encoder
from pipelines.tokenization import tokenize, tokenize_texts
from pipelines.vocabulary import OOV_ID, Vocabulary

TEXTS = ["The movie was NOT good!", "Ça déçoit, vraiment", "", "great"]


def test_tokenizer_case_folds_and_splits_punctuation_unicode_aware():
    assert tokenize_texts(TEXTS) == [
        ["the", "movie", "was", "not", "good", "!"], ["ça", "déçoit", ",", "vraiment"], [], ["great"]]
    assert tokenize_texts(["MiXeD"], lowercase=False) == [["MiXeD"]]


def test_direct_call_unbatched_map_and_batched_map_agree():
    vocab = Vocabulary.build(tokenize_texts(TEXTS[:2]))
    encode = text_encoder(vocab.lookup_table(), max_length=4)
    direct = encode(tf.constant(TEXTS)).to_list()
    ds = tf.data.Dataset.from_tensor_slices(TEXTS)
    unbatched = [x.numpy().tolist() for x in ds.map(lambda t: encode(t[None])[0])]
    batched = [row for b in ds.batch(3).map(encode) for row in b.to_list()]
    assert direct == unbatched == batched
    assert direct[0] == vocab.encode(["the", "movie", "was", "not"])
    assert direct[3] == [OOV_ID]


def test_pad_ids_gives_at_least_one_column():
    assert pad_ids(tf.ragged.constant([[], []], dtype=tf.int32)).shape == (2, 1)
    assert pad_ids(tf.ragged.constant([[1, 2], [3]], dtype=tf.int32)).numpy().tolist() == [[1, 2], [3, 0]]


def test_labeled_dataset_keeps_every_example_once():
    texts = [" ".join(["word"] * (i % 7 + 1)) for i in range(50)]
    vocab = Vocabulary.build(tokenize_texts(texts))
    ds = labeled_text_dataset(texts, list(range(50)), text_encoder(vocab.lookup_table()), batch_size=8,
                              boundaries=[3, 5], shuffle_buffer=50, seed=0)
    labels, lengths = [], {}
    for ids, y in ds:
        for row, label in zip(ids.numpy(), y.numpy()):
            labels.append(int(label))
            lengths[int(label)] = int(np.count_nonzero(row))
    assert sorted(labels) == list(range(50))
    assert all(lengths[i] == i % 7 + 1 for i in range(50))
    assert tokenize(tf.constant(["a b"])).shape[0] == 1


TRICKY = [
    "The movie was NOT good!!!", "Straße İstanbul ǅ", "ＦＵＬＬＷＩＤＴＨ ﬁne", "e\u0301te\u0301 été",
    "great 👍🏽 film 🎬!!", "", " ", "a\u00a0b\u3000c\td\ne", "don't...stop", "word " * 2000,
    "$100 + 50% = ¿qué?", "soft\u00adhyphen", "ΣΊΣΥΦΟΣ ὈΔΥΣΣΕΎΣ", "日本語のテキスト、です。", "w10 h2o",
    "«quoted» — dash", "\u200bzero\u200dwidth", "ǰ ŉ", "MiXeD CaSe ÉCOLE",
]


def test_python_rules_give_the_same_ids_as_the_tf_pipeline():
    from pipelines.text_rules import encode_text, tokenize_text

    for lowercase in (True, False):
        assert [tokenize_text(t, lowercase) for t in TRICKY] == tokenize_texts(TRICKY, lowercase)
    vocab = Vocabulary.build(tokenize_texts(TRICKY[:8]))
    ids = {token: i for i, token in enumerate(vocab.tokens)}
    expected = text_encoder(vocab.lookup_table(), max_length=50)(tf.constant(TRICKY)).to_list()
    assert [encode_text(t, ids, OOV_ID, max_length=50) for t in TRICKY] == expected
