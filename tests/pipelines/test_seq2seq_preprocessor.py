"""Translation targets keep their case and spelling: what the model writes is not case folded."""

import numpy as np
import tensorflow as tf

from apps.config import DataConfig
from pipelines.text_files import Pair
from pipelines.text_preprocessors import Seq2SeqPreprocessor

GERMAN = ["Der Hund läuft über die Straße.", "Zwei Männer grüßen den weißen Hund.", "Ein Mädchen (klein) liest."]
PAIRS = [Pair(f"An English SOURCE {i}", german, f"test #{i}") for i, german in enumerate(GERMAN)]


def _fitted():
    preprocessor = Seq2SeqPreprocessor(DataConfig(lowercase=True, batch_size=4, bucketing=False))
    preprocessor.fit(PAIRS)
    return preprocessor


def test_cased_targets_round_trip_through_the_pipeline_and_a_savedmodel(tmp_path):
    preprocessor = _fitted()
    assert "Straße" in preprocessor.target_vocab.tokens and "straße" not in preprocessor.target_vocab.tokens
    assert "english" in preprocessor.source_vocab.tokens  # data.lowercase folds the source side
    (sources, target_in), target_out = next(iter(preprocessor.dataset(PAIRS, training=False)))
    ids = target_out.numpy()

    assert Seq2SeqPreprocessor.decode_assets(preprocessor.assets(), ids) == GERMAN  # the TF-free twin

    class Detokenizer(tf.Module):
        def __init__(self):
            super().__init__()
            self.tokens = tf.Variable(preprocessor.target_vocab.tokens, trainable=False)

        @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32)])
        def __call__(self, ids):
            return preprocessor.target_text(self.tokens)(ids)

    tf.saved_model.save(Detokenizer(), str(tmp_path / "detokenizer"))
    loaded = tf.saved_model.load(str(tmp_path / "detokenizer"))
    assert [t.decode("utf-8") for t in loaded(tf.constant(ids)).numpy()] == GERMAN
    assert np.all(target_in.numpy()[:, 0] == preprocessor.bos_id)


def test_bleu_is_scored_on_the_real_casing():
    from apps.seq2seq import translation_scores

    scores = translation_scores([t.lower() for t in GERMAN], GERMAN)
    assert scores["bleu_lowercase"] == 100.0 and scores["bleu"] < 60.0
    assert translation_scores(GERMAN, GERMAN)["bleu"] == 100.0
