from types import SimpleNamespace

import numpy as np
import tensorflow as tf

from pipelines.conllu_files import TaggedSentence
from pipelines.tagging_preprocessor import TaggingPreprocessor
from pipelines.vocabulary import OOV_ID


def _data(**overrides):
    return SimpleNamespace(**{"lowercase": True, "vocab_size": None, "min_count": 1, "max_length": None,
                              "length_percentile": 100.0, "batch_size": 50, "bucketing": False, "num_buckets": 1,
                              "max_word_length": None, "unknown_word_alpha": 1.0, **overrides})


def test_rare_words_become_unknown_in_training_only_with_a_new_draw_each_epoch():
    sentences = [TaggedSentence(("common", "rare%d" % i), ("X", "Y"), f"s{i}") for i in range(200)]
    p = TaggingPreprocessor(_data(), seed=3)
    p.fit(sentences)
    tf.random.set_seed(0)
    ds = p.dataset(sentences, training=True)
    epochs = [np.concatenate([w.numpy() for (w, _), _, _ in ds]) for _ in range(2)]
    rare_unknown = [np.mean(e[:, 1] == OOV_ID) for e in epochs]
    common_unknown = [np.mean(e[:, 0] == OOV_ID) for e in epochs]
    print(f"\n[UNK] rate: words seen once {rare_unknown}, seen 200 times {common_unknown}")
    assert all(0.4 < r < 0.6 for r in rare_unknown)  # alpha / (alpha + 1) = 0.5
    assert all(c < 0.03 for c in common_unknown)  # 1 / 201
    assert not np.array_equal(*[np.sort(e, axis=0) for e in epochs])  # drawn again
    evaluation = np.concatenate([w.numpy() for (w, _), _, _ in p.dataset(sentences, training=False)])
    assert not (evaluation == OOV_ID).any()


def test_tensorflow_and_python_encodings_agree():
    sentences = [TaggedSentence(("Straße", "naïve", "ÉCOLE", "42", "👍", "n't"), ("N", "A", "N", "NUM", "S", "P"), "s")]
    p = TaggingPreprocessor(_data(max_word_length=4))
    p.fit(sentences)
    texts = ["STRASSE naïve école 42 👍 unseen", "", "n't n ' t"]
    tokens = p.tokenize_python(texts, p.max_length)
    words, chars = p.encode_python(tokens)
    tf_words, tf_chars = p.tf_encode_tokens(p.tf_tokens(tf.constant(texts)))
    np.testing.assert_array_equal(tf_words.numpy(), words)
    np.testing.assert_array_equal(tf_chars.numpy(), chars)
    assert words[0, 0] == p.words.ids["strasse"]  # case-folded: ß -> ss
    assert words[0, 5] == OOV_ID and chars[0, 5, 0] != 0  # unseen, but its characters are there
