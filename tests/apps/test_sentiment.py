import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from apps.config import replace
from apps.sentiment import Sentiment, SentimentConfig

APP = Sentiment()
from pipelines import synthetic_sentiment
from pipelines.tokenization import tokenize_texts
from pipelines.vocabulary import Vocabulary


@pytest.mark.parametrize("pooling", ["last", "max", "mean"])
@pytest.mark.parametrize("cell", ["lstm", "gru", "peephole_lstm"])
def test_padding_does_not_change_the_prediction(pooling, cell):
    config = replace(SentimentConfig.smoke(), **{"model.pooling": pooling, "model.cell": cell,
                                                 "model.num_classes": 3, "model.num_layers": 2, "model.vocab_size": 20})
    model = APP.build_model(config)
    sentence = [5, 3, 9, 2, 7]
    outputs = [model(np.array([sentence + [0] * pad]))[0] for pad in (0, 1, 6)]
    batch = model(np.array([sentence + [0] * 4, [4] * 9]))  # beside a longer sequence
    for out in outputs[1:] + [batch[0]]:
        np.testing.assert_allclose(out, outputs[0], atol=1e-5)
    # and the check is not vacuous: the content does change the output
    assert np.abs(model(np.array([[4, 4, 4]]))[0] - outputs[0]).max() > 1e-4


def _bag_of_words_accuracy(train, test):
    """A logistic regression on word counts, trained to convergence on the same data."""
    vocab = Vocabulary.build(tokenize_texts([s.text for s in train]))

    def features(samples):
        x = np.zeros((len(samples), len(vocab)), "float32")
        for row, tokens in enumerate(tokenize_texts([s.text for s in samples])):
            for i in vocab.encode(tokens):
                x[row, i] += 1.0
        return x, np.array([s.label == "positive" for s in samples], "float32")

    x_train, y_train = features(train)
    x_test, y_test = features(test)
    model = keras.Sequential([keras.Input((len(vocab),)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile(keras.optimizers.Adam(0.05), "binary_crossentropy")
    model.fit(x_train, y_train, batch_size=256, epochs=40, verbose=0)
    return (model.predict(x_test, verbose=0)[:, 0] > 0.5) == y_test.astype(bool)


def test_learns_word_order_that_a_bag_of_words_cannot(tmp_path):
    config = SentimentConfig()  # the demo's defaults: synthetic, 4000 training reviews
    metrics = APP.train(config, tmp_path / "run")
    splits = APP.synthetic_splits(APP.synthetic_size, config.seed)
    test = synthetic_sentiment.generate(len(splits["test"]), config.seed + 2)  # with what each review holds
    assert [s.text for s in test] == [e.text for e in splits["test"]]
    predicted = APP.predict(tmp_path / "run", [s.text for s in test])
    rnn_correct = np.array([p["label"] == s.label for p, s in zip(predicted, test)])
    bow_correct = _bag_of_words_accuracy(splits["train"], test)
    negated = np.array([s.negated for s in test])
    print(f"\nBiLSTM: test accuracy {rnn_correct.mean():.3f}, on negated reviews {rnn_correct[negated].mean():.3f}")
    print(f"bag of words: test accuracy {bow_correct.mean():.3f}, on negated reviews {bow_correct[negated].mean():.3f}")
    assert metrics["accuracy"] >= 0.90
    assert abs(rnn_correct.mean() - metrics["accuracy"]) < 1e-6
    assert bow_correct[negated].mean() < rnn_correct[negated].mean() - 0.25


def test_multiclass_labels_from_tsv(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    rows = [f"{w} {w} item\t{label}" for w, label in [("great", "pos"), ("awful", "neg"), ("okay", "neutral")]] * 20
    (data / "train.tsv").write_text("\n".join(rows) + "\n")
    config = replace(SentimentConfig.smoke(), **{"data.source": str(data), "train.epochs": 1})
    metrics = APP.train(config, tmp_path / "run")
    assert metrics["examples"] == 6  # 10% of 60 made into test
    run_config = (tmp_path / "run" / "config.yaml").read_text()
    assert "num_classes: 3" in run_config and "test: 10% of train (seed 42)" in run_config
    labels = {p["label"] for p in APP.predict(tmp_path / "run", ["great", "awful", "okay"])}
    assert labels <= {"pos", "neg", "neutral"}


def test_tfds_imdb_reviews_through_mock_data(tmp_path):
    config = replace(SentimentConfig.smoke(), **{"data.source": "tfds:imdb_reviews", "train.epochs": 1})
    with tfds.testing.mock_data(num_examples=40, policy=tfds.testing.MockPolicy.USE_CODE):
        metrics = APP.train(config, tmp_path / "run")
        assert APP.evaluate(tmp_path / "run", split="test")["examples"] == 40
    assert metrics["examples"] == 40
    assert (tmp_path / "run" / "assets" / "labels.txt").read_text().split() == ["neg", "pos"]
    assert "dev: 10% of train" in (tmp_path / "run" / "config.yaml").read_text()


@pytest.mark.parametrize("cell, recurrent_dropout, implementation", [
    ("lstm", 0.0, "layers.FusedLSTM (keras.layers.LSTM, fused on GPU)"),
    ("lstm", 0.2, "layers.Recurrent(LSTMCell)"),
    # slow: bn_lstm's own loop trains in tests/layers/test_batchnorm_lstm.py; here it only adds the app around it
    pytest.param("bn_lstm", 0.2, "layers.BatchNormLSTM", marks=pytest.mark.slow),
])
def test_regularization_and_adaptive_clipping_from_the_config(tmp_path, cell, recurrent_dropout, implementation):
    config = replace(SentimentConfig.smoke(), **{
        "model.cell": cell, "regularization.embedding_dropout": 0.1, "regularization.input_dropout": 0.2,
        "regularization.recurrent_dropout": recurrent_dropout, "regularization.output_dropout": 0.2,
        "regularization.weight_dropout": 0.3, "train.clipping": "adaptive", "train.clip_warmup": 3})
    APP.train(config, tmp_path / "run")
    history = (tmp_path / "run" / "history.csv").read_text().splitlines()
    assert {"grad_norm", "clip_threshold", "skipped_steps"} <= set(history[0].split(","))
    saved = (tmp_path / "run" / "config.yaml").read_text()
    assert f"implementation: {implementation}" in saved and "weight_dropout: 0.3" in saved
    model = keras.saving.load_model(tmp_path / "run" / "model.keras", safe_mode=True)
    stack = model.get_layer("recurrent")
    assert stack.dropout_options["recurrent_dropout"] == recurrent_dropout
    assert model.get_layer("embedding").embedding_dropout == 0.1
    ids = np.array([[3, 4, 5, 0]])
    np.testing.assert_array_equal(model(ids), model(ids))  # no dropout at inference


def test_a_bag_of_words_counts_the_polar_words_of_long_reviews(tmp_path):
    """Reviews of 41 made-up words, each word +1 or -1; the label is the sign of the sum: how
    many words of each kind a review holds, wherever they are. A linear model of word counts is
    exactly that; a small recurrent classifier with max pooling does not learn to count."""
    rng = np.random.default_rng(0)
    words = list({"".join(rng.choice(list("bcdfgkmnprstvz"), 6)) for _ in range(40)})[:20]
    polarity = dict(zip(words, rng.permutation([1, -1] * 10)))
    data = tmp_path / "data"
    data.mkdir()
    for split, count in (("train", 450), ("dev", 100), ("test", 300)):
        lines = []
        for _ in range(count):
            review = list(rng.choice(words, 41))
            lines.append(f"{' '.join(review)}\t{'pos' if sum(polarity[w] for w in review) > 0 else 'neg'}")
        (data / f"{split}.tsv").write_text("\n".join(lines) + "\n")
    accuracy = {}
    for ngrams in (0, 1):
        config = replace(SentimentConfig.smoke(), **{"data.source": str(data), "model.ngrams": ngrams,
                                                     "model.char_features": False, "train.epochs": 8})
        accuracy[ngrams] = APP.train(config, tmp_path / f"run{ngrams}")["accuracy"]
    print(f"test accuracy: recurrent only {accuracy[0]:.3f}, with the bag of words {accuracy[1]:.3f}")
    assert accuracy[1] >= 0.85  # 0.90 with data seeds 0, 1 and 2; recurrent only 0.47, 0.51, 0.76
    assert accuracy[1] > accuracy[0] + 0.1


def test_character_features_read_the_spelling_of_words_train_never_had(tmp_path):
    """Each review's verdict is one made-up word, positive ones ending in -ful, negative in -less;
    test reviews use words train never had (in the vocabulary through a vectors file of random
    vectors, as a pretrained file adds words). Only the spelling carries their label."""
    rng = np.random.default_rng(0)
    letters = list("bcdfgkmnprstvz")
    stems = list({"".join(rng.choice(letters, 5)) for _ in range(700)})[:600]
    # dev has unseen words too: the best epoch is the one that reads spelling, not the first that
    # knows train's words (with dev from train, some runs kept an epoch at 0.83 on test)
    train_stems, dev_stems, test_stems = stems[:400], stems[400:450], stems[450:]
    data = tmp_path / "data"
    data.mkdir()

    def rows(stem_list):
        out = []
        for i, stem in enumerate(stem_list):
            positive = i % 2 == 0
            out.append(f"the film was {stem}{'ful' if positive else 'less'} .\t{'pos' if positive else 'neg'}")
        return "\n".join(out) + "\n"

    (data / "train.tsv").write_text(rows(train_stems))
    (data / "dev.tsv").write_text(rows(dev_stems))
    (data / "test.tsv").write_text(rows(test_stems))
    words = ["the", "film", "was", "."] + [f"{s}{end}" for s in stems for end in ("ful", "less")]
    vectors = tmp_path / "v.txt"
    vectors.write_text("".join(f"{w} {' '.join(f'{x:.4f}' for x in rng.normal(size=8))}\n" for w in words))
    accuracy = {}
    for char_features in (False, True):
        config = replace(SentimentConfig.smoke(), **{
            "data.source": str(data), "model.embeddings": str(vectors), "model.embeddings_words": len(words),
            "model.char_features": char_features, "model.char_dim": 8, "model.char_filters": 16,
            "model.units": 16, "train.epochs": 4, "data.batch_size": 16})
        accuracy[char_features] = APP.train(config, tmp_path / f"run{char_features}")["accuracy"]
    print(f"test accuracy on unseen words: words only {accuracy[False]:.3f}, with their spelling {accuracy[True]:.3f}")
    assert accuracy[True] >= 0.9
    assert accuracy[True] > accuracy[False] + 0.25
    loaded = APP.load(tmp_path / "runTrue")  # the table travels with the saved model
    table = loaded.model.get_layer("spelling").get_weights()[0]
    word = f"{test_stems[0]}ful"
    assert table[loaded.preprocessor.vocab.tokens.index(word)][:len(word)].tolist() == [ord(c) + 1 for c in word]


def test_an_ensemble_averages_members_each_trained_on_its_own_loss(tmp_path):
    config = replace(SentimentConfig.smoke(), **{"model.members": 3, "data.source": "synthetic?size=300"})
    APP.train(config, tmp_path / "run")
    loaded = APP.load(tmp_path / "run")
    model = loaded.model
    header = (tmp_path / "run" / "history.csv").read_text().splitlines()[0].split(",")
    assert {"val_accuracy", "val_member0_accuracy", "val_member2_accuracy"} <= set(header)  # the ensemble's, each's
    assert all((tmp_path / "run" / "checkpoints" / f"best_member{k}.npz").exists() for k in range(3))
    ids = loaded.preprocessor.encode_python(list(APP.demo_inputs))
    members = keras.Model(model.input, model.get_layer("member_logits").output)(ids).numpy()  # (batch, 3, classes)
    np.testing.assert_allclose(keras.ops.softmax(model(ids)), keras.ops.softmax(members).numpy().mean(axis=1),
                               atol=1e-6)
    embeddings = [layer.get_weights()[0] for layer in model.layers if layer.name.startswith("embedding")]
    assert len(embeddings) == 3 and not np.allclose(embeddings[0], embeddings[1])  # each its own start
    spellings = [layer for layer in model.layers if layer.name.startswith("spelling")]
    assert len(spellings) == 3 and all(np.array_equal(s.get_weights()[0], spellings[0].get_weights()[0])
                                       for s in spellings)  # every member reads the vocabulary's spelling
    # what fit trains: each member's gradient is that of its own loss, whatever the others predict
    trainer, _ = APP.fitted_part(model, loaded.config, loaded.preprocessor, {}, {})
    labels = np.array([1, 0, 0, 1, 1])
    first = [v for v in trainer.trainable_variables if "member" not in v.path]

    def gradients():
        with tf.GradientTape() as tape:
            loss = trainer.loss(labels, trainer(ids, training=False))
        return [tf.convert_to_tensor(g).numpy() for g in tape.gradient(loss, first)]

    before = gradients()
    other = model.get_layer("logits_member2")
    other.set_weights([w + 5.0 for w in other.get_weights()])  # member 2 now predicts other things
    for old, new in zip(before, gradients()):
        np.testing.assert_allclose(new, old, atol=1e-7)
    assert any(np.abs(g).max() > 0 for g in before)

