"""The speech app: it learns the synthetic words from the time course of their spectrum (and
fails when the frames are shuffled), reads the local layouts and tfds sources, and refuses bad
data before a run exists. The app contract runs in test_app_contract.py."""

import contextlib
import io
import json

import numpy as np
import pytest
import soundfile
import tensorflow as tf
import tensorflow_datasets as tfds

from apps.cli import main
from apps.config import replace
from apps.speech import Speech, SpeechConfig
from pipelines.errors import DataError
from pipelines.synthetic_speech import WORDS, generate

APP = Speech()
RATE = 8000


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 32-unit BiLSTM behind a strided convolution on 600 synthetic words at 8 kHz (about 20 s)."""
    config = replace(SpeechConfig(), **{"data.source": "synthetic?size=600", "data.sample_rate": RATE,
                                        "data.num_mel_bins": 24, "model.units": 32, "model.conv_filters": 32,
                                        "train.epochs": 6})
    run = tmp_path_factory.mktemp("speech") / "run"
    metrics = APP.train(config, run)
    return run, metrics, APP.load(run)


def _shuffled_in_time(features: np.ndarray, rng) -> np.ndarray:
    out = features.copy()
    for row in out:
        n = int(row[:, -1].sum())  # the flagged frames
        row[:n] = row[rng.permutation(n)]
    return out


def test_learns_the_words_from_the_order_of_their_sounds(trained):
    run, metrics, loaded = trained
    assert metrics["accuracy"] >= 0.9, metrics
    test = APP.load_splits(loaded.config)[0]["test"]
    truth = np.array(loaded.preprocessor.label_ids(test))
    features, _ = loaded.preprocessor.numpy_features([u.samples for u in test])
    ordered = loaded.model.predict(features, verbose=0).argmax(-1)
    shuffled = loaded.model.predict(_shuffled_in_time(features, np.random.default_rng(0)), verbose=0).argmax(-1)
    chance = 1 / len(WORDS)
    assert np.mean(ordered == truth) >= 0.9
    assert np.mean(shuffled == truth) < chance + 0.2, "the model should need the order of the frames"


def _write_words(folder, utterances, name, rate=RATE):
    folder.mkdir(parents=True, exist_ok=True)
    for i, u in enumerate(utterances):
        soundfile.write(folder / name(u, i), u.samples, rate, subtype="PCM_16")


def test_flat_folder_with_labels_in_file_names_splits_by_speaker(tmp_path):
    words = generate(60, seed=3, rate=RATE)
    _write_words(tmp_path, words, lambda u, i: f"{u.label}_{u.speaker.split('-')[1]}_{i}.wav")
    config = replace(SpeechConfig(), **{"data.source": str(tmp_path), "data.label_from": "filename",
                                        "data.sample_rate": RATE, "data.dev_fraction": 0.2, "data.test_fraction": 0.2})
    splits, note = APP.load_splits(config)
    speakers = {k: {u.speaker for u in v} for k, v in splits.items()}
    assert sum(len(v) for v in splits.values()) == 60 and all(speakers.values())
    assert not (speakers["train"] & speakers["test"]) and not (speakers["train"] & speakers["dev"])
    assert "speakers of train" in note
    assert {u.label for u in splits["train"]} <= set(WORDS)


def _layout(root, labels_by_split):
    words = generate(4, seed=5, rate=RATE)
    for split, labels in labels_by_split.items():
        for label in labels:
            _write_words(root / split / label, words[:2], lambda u, i: f"s{i}_nohash_0.wav")
    return root


@pytest.mark.parametrize("labels, message", [
    ({"train": ["yes", "no"], "dev": ["yes"], "test": ["maybe"]}, r"label 'maybe' never appears in train"),
    ({"dev": ["yes"], "test": ["no"]}, r"has no train/ folder"),
])
def test_bad_data_fails_before_the_run_exists(tmp_path, labels, message):
    data = _layout(tmp_path / "data", labels)
    out = tmp_path / "run"
    config = replace(SpeechConfig.smoke(), **{"data.source": str(data)})
    with pytest.raises(DataError, match=message):
        APP.train(config, out)
    assert not out.exists()


def test_skip_bad_trains_past_unreadable_files_and_says_which(tmp_path, capsys):
    data = _layout(tmp_path / "data", {"train": ["yes", "no"], "dev": ["yes", "no"], "test": ["yes", "no"]})
    (data / "train" / "no" / "broken.wav").write_bytes(b"RIFF\x00\x00")
    config = replace(SpeechConfig.smoke(), **{"data.source": str(data), "train.epochs": 1})
    with pytest.raises(DataError, match="broken.wav: not a readable WAV"):
        APP.load_splits(config)
    splits, note = APP.load_splits(replace(config, **{"data.skip_bad": True}))
    assert len(splits["train"]) == 4 and "1 unreadable files skipped" in note
    assert "broken.wav" in capsys.readouterr().err


@pytest.mark.parametrize("name, labels", [("speech_commands", 12), ("spoken_digit", 10)])
def test_tfds_sources(name, labels):
    config = replace(SpeechConfig(), **{"data.source": f"tfds:{name}", "data.sample_rate": RATE})
    with tfds.testing.mock_data(num_examples=12):
        splits, note = APP.load_splits(config)
    assert {"train", "dev", "test"} <= set(splits) and splits["train"]
    u = splits["train"][0]
    assert u.samples.dtype == np.float32 and u.samples.ndim == 1 and np.abs(u.samples).max() <= 1.0
    assert f"tfds:{name}[" in u.where


def test_predict_from_the_command_line_reads_a_folder_at_any_rate(trained, tmp_path):
    run, _, loaded = trained
    words = generate(6, seed=11, rate=16000)  # another rate: resampled to the model's
    _write_words(tmp_path / "in", words, lambda u, i: f"{i}.wav", rate=16000)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        main(["predict", str(run), str(tmp_path / "in"), "--json"])
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["file"].rsplit("/", 1)[1] for r in rows] == [f"{i}.wav" for i in range(6)]
    assert np.mean([r["label"] == u.label for r, u in zip(rows, words)]) >= 0.8
    with pytest.raises(DataError, match="no such file"):
        APP.predict(run, [str(tmp_path / "missing.wav")])


def test_the_serving_graph_computes_the_features_itself(trained):
    run, _, loaded = trained
    serving = APP.serving(loaded)
    words = generate(3, seed=12, rate=RATE)
    lengths = np.array([u.samples.size for u in words], np.int32)
    padded = np.zeros((3, lengths.max() + 500), np.float32)  # more padding than any row needs
    for i, u in enumerate(words):
        padded[i, :u.samples.size] = u.samples
    got = serving.classify(tf.constant(padded), tf.constant(lengths))["probabilities"].numpy()
    features, _ = loaded.preprocessor.numpy_features([u.samples for u in words])
    np.testing.assert_allclose(got, tf.nn.softmax(loaded.model(features)).numpy(), atol=1e-4)
