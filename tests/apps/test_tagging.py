import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from apps.cli import main
from apps.config import replace
from apps.tagging import Tagging, TaggingConfig
from pipelines import synthetic_tagging
from pipelines.conllu_files import TaggedSentence

APP = Tagging()
ROW = "{n}\t{w}\t{w}\t{t}\t_\t_\t0\tdep\t_\t_"


def _conllu(sentences):
    return "\n\n".join("\n".join(ROW.format(n=i + 1, w=w, t=t) for i, (w, t) in enumerate(s)) for s in sentences) + "\n"


def test_learns_tags_from_context(tmp_path):
    config = replace(TaggingConfig(), **{"train.epochs": 6})  # synthetic, 2000 training sentences
    metrics = APP.train(config, tmp_path / "run")
    test = synthetic_tagging.generate(len(APP.load_splits(config)[0]["test"]), config.seed + 2)
    rows = APP.predict(tmp_path / "run", [" ".join(s.words) for s in test])
    pairs = [(p, t, w) for row, s in zip(rows, test) for p, t, w in zip(row["tags"], s.tags, s.words)]
    assert len(pairs) == sum(len(s.words) for s in test)  # the app's tokenizer gives the same words
    ambiguous = [(p == t, w.lower()) for p, t, w in pairs if w.lower() in synthetic_tagging.AMBIGUOUS]
    per_word = {w: np.mean([ok for ok, v in ambiguous if v == w]) for w in synthetic_tagging.AMBIGUOUS}
    print(f"\ntoken accuracy {metrics['accuracy']:.3f}; ambiguous words: "
          + ", ".join(f"{w} {a:.3f}" for w, a in per_word.items()))
    assert metrics["accuracy"] >= 0.95
    assert min(per_word.values()) > 0.9


def test_character_features_tag_unseen_words(tmp_path):
    held_out = [TaggedSentence(s.words, s.tags, f"held-out #{i}")  # words made from other stems
                for i, s in enumerate(synthetic_tagging.generate(400, 99, stem_seed=1))]
    oov = {}
    for chars in (True, False):
        config = replace(TaggingConfig(), **{"data.source": "synthetic?size=1000", "train.epochs": 4,
                                             "model.char_features": chars, "model.units": 32, "model.word_dim": 32})
        APP.train(config, tmp_path / str(chars))
        oov[chars] = APP.score(APP.load(tmp_path / str(chars)), held_out)["accuracy_oov"]
    print(f"\naccuracy on unseen words: with character features {oov[True]:.3f}, words only {oov[False]:.3f}")
    assert oov[True] > oov[False] + 0.15


def test_padding_changes_no_tag_and_never_counts():
    config = replace(TaggingConfig.smoke(), **{"model.vocab_size": 30, "model.char_vocab_size": 20,
                                               "model.num_tags": 6, "data.max_word_length": 5})
    model = APP.build_model(config)
    APP.compile(model, config)
    rng = np.random.default_rng(0)
    words, chars = rng.integers(2, 30, (1, 4)), rng.integers(1, 20, (1, 4, 5))
    expected = model((words, chars)).numpy()
    for pad in (1, 5):
        padded = model((np.pad(words, [[0, 0], [0, pad]]), np.pad(chars, [[0, 0], [0, pad], [0, 0]]))).numpy()
        np.testing.assert_allclose(padded[:, :4], expected, atol=1e-5)
    tags = rng.integers(1, 6, (1, 4))
    plain = model.evaluate((words, chars), tags, sample_weight=np.ones((1, 4)), verbose=0, return_dict=True)
    garbage = np.concatenate([tags, [[5, 5, 5]]], 1)  # tags at padding that a model would get wrong
    padded = model.evaluate((np.pad(words, [[0, 0], [0, 3]]), np.pad(chars, [[0, 0], [0, 3], [0, 0]])), garbage,
                            sample_weight=np.array([[1, 1, 1, 1, 0, 0, 0]]), verbose=0, return_dict=True)
    assert padded["loss"] == pytest.approx(plain["loss"], abs=1e-5)
    assert padded["accuracy"] == pytest.approx(plain["accuracy"], abs=1e-6)


@pytest.mark.parametrize("files, args, message", [
    ({"a-train.conllu": [[("a", "X"), ("b", "Y")]] * 10, "a-dev.conllu": [[("a", "X")], [("a", "Z")]]}, [],
     "a-dev.conllu:3: tag 'Z' never appears in train"),
    ({"a-train.conllu": []}, [], "a-train.conllu is empty"),
    ({"a-train.conllu": [[("a", "X")]]}, ["--set", "data.tag_column=lemma"], "data.tag_column' must be one of"),
])
def test_bad_treebanks_are_one_line_and_leave_no_run(tmp_path, capsys, files, args, message):
    data = tmp_path / "data"
    data.mkdir()
    for name, sentences in files.items():
        (data / name).write_text(_conllu(sentences) if sentences else "")
    assert main(["train", "tagging", "--data", str(data), "--out", str(tmp_path / "run"), *args]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("rnnapps: error: ") and message in err[-1], err
    assert not (tmp_path / "run").exists()


def test_long_sentences_are_counted_not_silently_cut(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    sentences = [[("the", "DET"), ("dog", "NOUN"), ("runs", "VERB"), ("far", "ADV")], [("yes", "INTJ")]] * 10
    (data / "x-train.conllu").write_text(_conllu(sentences))
    config = replace(TaggingConfig.smoke(), **{"data.source": str(data), "data.max_length": 3, "train.epochs": 1})
    APP.train(config, tmp_path / "run")
    err = capsys.readouterr().err
    train = APP.load_splits(config)[0]["train"]
    long = sum(len(s.words) > 3 for s in train)
    assert 0 < long < len(train)
    assert f"warning: {long} of {len(train)} sentences are longer than max_length=3 words and were cut" in err


def test_tfds_treebank_through_mock_data(tmp_path):
    config = replace(TaggingConfig.smoke(), **{"data.source": "tfds:universal_dependencies/en_gum",
                                               "train.epochs": 1})
    with tfds.testing.mock_data(num_examples=30, policy=tfds.testing.MockPolicy.USE_CODE):
        metrics = APP.train(config, tmp_path / "run")
    assert metrics["examples"] == 30 and 0.0 <= metrics["accuracy"] <= 1.0
    assert (tmp_path / "run" / "assets" / "tags.txt").read_text().split()[0] in tfds.builder(
        "universal_dependencies/en_gum").info.features["upos"].feature.names


def test_saved_model_tags_raw_sentences(tmp_path):
    APP.train(TaggingConfig.smoke(), tmp_path / "run")
    APP.export(tmp_path / "run", tmp_path / "export", ["savedmodel"])
    serve = tf.saved_model.load(str(tmp_path / "export" / "savedmodel")).signatures["serving_default"]
    out = serve(texts=tf.constant(["They book a room .", ""]))
    assert out["lengths"].numpy().tolist() == [5, 0]
    assert [t.decode() for t in out["tokens"].numpy()[0]] == ["They", "book", "a", "room", "."]
    tagged = out["tagged"].numpy()[0].decode().split()
    assert [t.split("/")[0] for t in tagged] == ["They", "book", "a", "room", "."] and all("/" in t for t in tagged)
