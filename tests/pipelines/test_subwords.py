"""Subwords (`pipelines/subwords.py`): learned from a small corpus here, exact round trips, the
TensorFlow and Python twins agreeing id for id, unseen words split into pieces, and the
preprocessors using them end to end (saved, loaded, from `assets.json`)."""

import numpy as np
import pytest
import tensorflow as tf

from apps.config import TextDataConfig
from pipelines.subwords import Subwords, detokenize
from pipelines.text_files import Pair, TextExample
from pipelines.text_preprocessors import Seq2SeqPreprocessor, TextClassificationPreprocessor
from pipelines.tokenization import detokenize_pieces
from pipelines.vocabulary import OOV_ID

CORPUS = [
    "The quick brown fox jumps over the lazy dog.", "Der Hund läuft über die Straße.",
    "Zwei Männer grüßen den weißen Hund!", "Es-tu jamais passé à la télévision ?", "l'heure exacte, c'est ça.",
    "東京は大きい都市です。", "Ça coûte 5 € — vraiment ?", "naïve café résumé", "Emoji time 🙂🚀 ok",
    "e\u0301 combining accent", "שלום עולם", "(brackets) [and] {braces}",
] * 20
TRICKY = ["Der Hund läuft über die Straße.", "Es-tu jamais passé à la télévision ?", "l'heure exacte, c'est ça.",
          "東京は大きい都市です。", "Emoji time 🙂🚀 ok", "e\u0301 combining accent", "שלום עולם"]


@pytest.fixture(scope="module")
def model():
    return Subwords.learn(CORPUS, vocab_size=120, markers=True)


def test_reserved_ids_follow_the_vocabulary_convention(model):
    assert model.vocabulary().tokens[:4] == ["[PAD]", "[UNK]", "[BOS]", "[EOS]"]


def test_round_trip_is_exact_on_tricky_unicode(model):
    vocabulary = model.vocabulary().tokens
    for text, ids in zip(TRICKY, model.encode(TRICKY)):
        assert OOV_ID not in ids, text
        assert detokenize([vocabulary[i] for i in ids]) == text


def test_tensorflow_and_python_twins_give_the_same_ids_and_text(model):
    texts = [*TRICKY, "an unseen wordification", ""]
    tf_ids = model.tf_encoder()(tf.constant(texts)).to_list()
    assert tf_ids == model.encode(texts)
    vocabulary = model.vocabulary().tokens
    pieces = tf.ragged.constant([[vocabulary[i] for i in row] for row in tf_ids], dtype=tf.string)
    assert [t.decode("utf-8") for t in detokenize_pieces(pieces).numpy()] == [
        detokenize([vocabulary[i] for i in row]) for row in tf_ids]
    assert model.tf_encoder(max_length=3)(tf.constant(texts)).to_list() == model.encode(texts, max_length=3)


def test_an_unseen_word_is_split_not_oov(model):
    (ids,) = model.encode(["strassenhunde"])  # never in the corpus, its letters are
    assert len(ids) > 1 and OOV_ID not in ids


def test_a_classifier_with_subwords_saves_loads_and_encodes_from_assets(tmp_path):
    data = TextDataConfig(tokenizer="subwords", subword_vocab_size=100, batch_size=4, bucketing=False)
    examples = [TextExample(text, str(i % 2), f"#{i}") for i, text in enumerate(CORPUS)]
    preprocessor = TextClassificationPreprocessor(data)
    fitted = preprocessor.fit(examples)
    assert fitted["vocab_size"] == len(preprocessor.vocab) <= 100
    texts = ["Ein unbekanntes Wort: Straßenhunde!", "the LAZY fox"]
    expected = preprocessor.encode_python(texts)
    np.testing.assert_array_equal(preprocessor.tf_encode(tf.constant(texts)).numpy(), expected)
    np.testing.assert_array_equal(TextClassificationPreprocessor.encode_assets(preprocessor.assets(), texts),
                                  expected)
    preprocessor.save(tmp_path)
    loaded = TextClassificationPreprocessor.load(tmp_path, data)
    np.testing.assert_array_equal(loaded.encode_python(texts), expected)
    # data.lowercase folds before the pieces
    np.testing.assert_array_equal(preprocessor.encode_python(["the lazy fox"]), preprocessor.encode_python(texts[1:]))


def test_cased_subword_targets_round_trip_through_a_savedmodel(tmp_path):
    data = TextDataConfig(tokenizer="subwords", subword_vocab_size=150, batch_size=8, bucketing=False)
    pairs = [Pair(f"source {i}", text, f"#{i}") for i, text in enumerate(CORPUS)]
    preprocessor = Seq2SeqPreprocessor(data)
    preprocessor.fit(pairs)
    wanted = [Pair("x", t, "t") for t in TRICKY]
    (_, target_in), target_out = next(iter(preprocessor.dataset(wanted, training=False)))
    assert np.all(target_in.numpy()[:, 0] == preprocessor.bos_id)
    assert Seq2SeqPreprocessor.decode_assets(preprocessor.assets(), target_out.numpy()) == TRICKY

    class Detokenizer(tf.Module):
        def __init__(self):
            super().__init__()
            self.tables = preprocessor.tables()
            self.tokens = tf.Variable(preprocessor.target_vocab.tokens, trainable=False)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string), tf.TensorSpec([None, None], tf.int32)])
        def __call__(self, sources, ids):
            return preprocessor.tf_encode(sources), preprocessor.target_text(self.tokens)(ids)

    tf.saved_model.save(Detokenizer(), str(tmp_path / "m"))
    source_ids, texts = tf.saved_model.load(str(tmp_path / "m"))(tf.constant(["Source 3"]), target_out)
    assert [t.decode("utf-8") for t in texts.numpy()] == TRICKY
    np.testing.assert_array_equal(source_ids.numpy(), preprocessor.encode_python(["Source 3"]))
