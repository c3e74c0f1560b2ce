import keras
import numpy as np
import pytest

from apps.config import ConfigError, replace
from apps.sentiment import Sentiment, SentimentConfig

APP = Sentiment()


def _data(directory, words, labels=("pos", "neg")):
    directory.mkdir()
    rows = [f"the {w} film {w}\t{labels[i % 2]}" for i, w in enumerate(words)] * 6
    (directory / "train.tsv").write_text("\n".join(rows) + "\n")
    return str(directory)


class _WeightsAtStart(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.weights = {layer.name: layer.get_weights() for layer in self.model.layers}


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    root = tmp_path_factory.mktemp("warm")
    config = replace(SentimentConfig.smoke(), **{
        "data.source": _data(root / "a", ["good", "bad", "great", "awful", "alpha", "omega"]), "train.epochs": 1})
    APP.train(config, root / "source")
    return root, config


def test_a_run_starts_from_another_runs_weights_word_by_word(source, capsys):
    root, config = source
    start = _WeightsAtStart()
    target = replace(config, **{"data.source": _data(root / "b", ["beta", "bad", "good", "gamma"]),
                                "train.init_from": str(root / "source")})
    APP.train(target, root / "target", callbacks=[start])
    assert "weights of" in capsys.readouterr().err
    old, new = APP.load(root / "source"), APP.load(root / "target")
    old_vocab, new_vocab = old.preprocessor.vocab.tokens, new.preprocessor.vocab.tokens
    old_rows = old.model.get_layer("embedding").get_weights()[0]
    rows = start.weights["embedding"][0]
    assert old_vocab.index("good") != new_vocab.index("good")  # the same word at other rows
    for word in ("good", "bad", "the", "film", "[UNK]"):
        np.testing.assert_array_equal(rows[new_vocab.index(word)], old_rows[old_vocab.index(word)])
    for word in ("beta", "gamma"):  # not in the source: its own random start, not a source row
        assert not any(np.allclose(rows[new_vocab.index(word)], r) for r in old_rows)
    old_bag, bag = old.model.get_layer("ngrams").get_weights(), start.weights["ngrams"]
    for word in ("good", "bad", "the", "film"):  # the bag's word scores follow the words too
        np.testing.assert_array_equal(bag[0][new_vocab.index(word)], old_bag[0][old_vocab.index(word)])
    assert np.abs(old_bag[1]).max() > 0 and not bag[1].any()  # bigrams hash ids: they start anew
    for layer in old.model.layers:
        if layer.name not in ("embedding", "spelling", "ngrams") and layer.weights:
            for a, b in zip(start.weights[layer.name], layer.get_weights()):
                np.testing.assert_array_equal(a, b)
    spelling = start.weights["spelling"][0]  # this run's vocabulary, not the source's
    beta = new_vocab.index("beta")
    assert spelling[beta][:4].tolist() == [ord(c) + 1 for c in "beta"]


def test_each_member_of_an_ensemble_starts_from_its_member_word_by_word(tmp_path):
    config = replace(SentimentConfig.smoke(), **{
        "data.source": _data(tmp_path / "a", ["good", "bad", "great", "awful", "alpha", "omega"]), "train.epochs": 1,
        "model.members": 2})
    APP.train(config, tmp_path / "source")
    start = _WeightsAtStart()
    target = replace(config, **{"data.source": _data(tmp_path / "b", ["beta", "bad", "good", "gamma"]),
                                "train.init_from": str(tmp_path / "source")})
    APP.train(target, tmp_path / "target", callbacks=[start])
    old, new = APP.load(tmp_path / "source"), APP.load(tmp_path / "target")
    old_vocab, new_vocab = old.preprocessor.vocab.tokens, new.preprocessor.vocab.tokens
    assert old_vocab.index("good") != new_vocab.index("good")
    for name in ("embedding", "embedding_member1"):
        old_rows, rows = old.model.get_layer(name).get_weights()[0], start.weights[name][0]
        for word in ("good", "bad", "the", "film"):
            np.testing.assert_array_equal(rows[new_vocab.index(word)], old_rows[old_vocab.index(word)])
    np.testing.assert_array_equal(start.weights["logits_member1"][0],
                                  old.model.get_layer("logits_member1").get_weights()[0])


@pytest.mark.parametrize("change, message", [
    ({"model.units": 12}, "layer recurrent has weights of shapes"),
    ({"model.char_features": False}, "other layers"),
    ({"model.members": 2}, "other layers"),  # an ensemble starts from an ensemble of as many members
])
def test_a_source_with_other_model_settings_is_refused_by_layer(source, change, message):
    root, config = source
    target = replace(config, **{"train.init_from": str(root / "source"), **change})
    with pytest.raises(ConfigError, match=message):
        APP.train(target, root / "refused")
    assert not (root / "refused").exists()  # before the run exists


def test_a_source_with_other_labels_is_refused(source):
    root, config = source
    target = replace(config, **{"data.source": _data(root / "c", ["good", "bad"], labels=("yes", "no")),
                                "train.init_from": str(root / "source")})
    with pytest.raises(ConfigError, match=r"its labels \['neg', 'pos'\] are not this run's \['no', 'yes'\]"):
        APP.train(target, root / "refused_labels")


def test_a_vocabulary_table_of_another_size_is_named_as_such():
    from types import SimpleNamespace as S

    from apps.warm_start import copy_weights

    def tagger(words):
        ids = keras.Input((None,), dtype="int32")
        return keras.Model(ids, keras.layers.Dense(3)(keras.layers.Embedding(words, 4, name="words")(ids)))

    source = S(run=S(path="RUN"), preprocessor=S(), model=tagger(10))
    with pytest.raises(ConfigError, match=r"layer words has weights of shapes \[\(10, 4\)\] there and \[\(12, 4\)\] "
                                          r"here; a table over a vocabulary of another size"):
        copy_weights(tagger(12), source, S(), {})
    model = tagger(10)
    assert copy_weights(model, source, S(), {}) == ["train.init_from RUN: weights of 2 layers copied"]
    for a, b in zip(model.get_weights(), source.model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_token_indexed_weights_follow_the_words_and_hashed_ones_only_the_same_vocabulary():
    """The bag of n-grams names its word scores as token-indexed: they are copied word by word, a
    new word keeps its row; its bigram rows (hashes of ids) are copied only when the vocabularies
    are the same."""
    from types import SimpleNamespace as S

    from apps.warm_start import copy_weights
    from layers.bag_of_ngrams import BagOfNgrams

    def classifier(tokens, seed):
        ids = keras.Input((None,), dtype="int32")
        pooled = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(len(tokens), 3, name="words")(ids))
        model = keras.Model(ids, keras.layers.Add()([keras.layers.Dense(2)(pooled),
                                                     BagOfNgrams(len(tokens), 2, buckets=8, name="ngrams")(ids)]))
        rng = np.random.default_rng(seed)
        model.set_weights([rng.normal(size=w.shape).astype("float32") for w in model.get_weights()])
        return model, S(input_vocab=lambda: ("vocab", S(tokens=tokens)))

    old_tokens, new_tokens = ["[PAD]", "[UNK]", "good", "bad"], ["[PAD]", "[UNK]", "new", "bad", "good"]
    old_model, old_preprocessor = classifier(old_tokens, 0)
    source = S(run=S(path="RUN"), preprocessor=old_preprocessor, model=old_model)
    (old_unigrams, old_bigrams), old_words = (old_model.get_layer(n).get_weights() for n in ("ngrams", "words"))
    model, preprocessor = classifier(new_tokens, 1)
    kept_row, kept_bigrams = model.get_layer("ngrams").get_weights()[0][2], model.get_layer("ngrams").get_weights()[1]
    notes = copy_weights(model, source, preprocessor, {"vocab": "words"})
    unigrams, bigrams = model.get_layer("ngrams").get_weights()
    for word in ("[PAD]", "[UNK]", "good", "bad"):
        new, old = new_tokens.index(word), old_tokens.index(word)
        np.testing.assert_array_equal(unigrams[new], old_unigrams[old])
        np.testing.assert_array_equal(model.get_layer("words").get_weights()[0][new], old_words[0][old])
    np.testing.assert_array_equal(unigrams[2], kept_row)  # "new": its own row
    np.testing.assert_array_equal(bigrams, kept_bigrams)
    assert "ngrams: 4 of 5 vocabulary rows" in notes[1] and "bigrams start anew" in notes[1]

    same, preprocessor = classifier(old_tokens, 2)
    notes = copy_weights(same, source, preprocessor, {"vocab": "words"})
    np.testing.assert_array_equal(same.get_layer("ngrams").get_weights()[1], old_bigrams)
    assert "start anew" not in notes[1]
