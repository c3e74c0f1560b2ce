"""Export of the sentiment app and of every cell: each runtime against the Keras model."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from apps.sentiment import Sentiment
from apps.cli import main
from apps.config import replace
from apps.sentiment import SentimentConfig
from export import ExportError
from export.onnx import export_onnx
from export.assets import read_assets
from export.runtimes import load_runner
from export.tflite import TFLiteRunner, export_tflite
from layers import cells
from layers.recurrent import Recurrent

APP = Sentiment()
TEXTS = ["the movie was not good", "Great!!", "", "although the plot was boring , the acting was great",
         "ÉCOLE 👍 " * 30]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("sentiment") / "run"
    config = replace(SentimentConfig.smoke(), **{"data.source": "synthetic?size=300", "train.epochs": 1,
                                                 "model.units": 6})
    APP.train(config, run)
    return run


def test_export_all_formats_with_parity_and_runtime_predictions(trained_run, tmp_path, capsys):
    out = tmp_path / "export"
    assert main(["export", str(trained_run), "--format", "all", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "onnx: parity ok" in printed and "tflite: parity ok" in printed
    parity = json.loads((out / "parity.json").read_text())
    assert set(parity) == {"savedmodel", "onnx", "tflite", "tflite_int8"}
    int8 = parity.pop("tflite_int8")
    # The smoke model's weights are below the quantizer's 1024-element minimum: they stay float,
    # and the files differ by metadata only.
    assert int8["accuracy_change"] >= -0.02 and int8["bytes"] <= parity["tflite"]["bytes"] + 1024
    assert "tflite_int8: accuracy" in printed
    for runtime, result in parity.items():
        assert max(result["max_abs_diff"].values()) < 1e-4, runtime
        assert result["bytes"] > 0
    assert not [op for op in parity["tflite"]["ops"] if op.startswith("Flex")]
    # The default bidirectional LSTM runs as the runtimes' fused kernels: one ONNX LSTM node, two
    # LiteRT sequence-LSTM ops (one per direction), no loop.
    assert parity["onnx"]["recurrent_ops"] == ["LSTM"] and "fused_fallback" not in parity["onnx"]
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in parity["tflite"]["ops"] and "WHILE" not in parity["tflite"]["ops"]
    assert read_assets(out)["tflite_input_shape"] == [1, read_assets(out)["max_length"]]

    assert main(["predict", str(trained_run), *TEXTS, "--json"]) == 0
    whole = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    # TFLite's input is fixed at (1, max_length): it reads a text's first max_length tokens, the
    # others read whole texts as `predict` does.
    loaded = APP.load(trained_run)
    cut = tf.nn.softmax(loaded.model(loaded.preprocessor.encode_python(TEXTS, loaded.preprocessor.max_length))).numpy()
    cut = [{"probability": float(p.max()), "label": loaded.preprocessor.labels[p.argmax()]} for p in cut]
    for runtime in ("savedmodel", "onnx", "tflite"):
        expected = cut if runtime == "tflite" else whole
        assert main(["predict", str(out), "--runtime", runtime, *TEXTS, "--json"]) == 0
        got = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        np.testing.assert_allclose([g["probability"] for g in got], [e["probability"] for e in expected], atol=1e-4)
        # A barely trained model can sit at 0.5, where a 1e-7 difference flips the label: compare
        # labels where the Keras model is not on the fence.
        decided = [e["probability"] > 0.5 + 1e-4 for e in expected]
        assert [g["label"] for g, d in zip(got, decided) if d] == [e["label"] for e, d in zip(expected, decided) if d]
        assert any(decided), runtime


def test_no_fused_keeps_the_loops(trained_run, tmp_path):
    parity = APP.export(trained_run, tmp_path, ["onnx", "tflite"], fused=False)
    assert parity["onnx"]["recurrent_ops"] == ["Loop"] and "WHILE" in parity["tflite"]["ops"]


def test_padding_does_not_change_exported_answers(trained_run, tmp_path):
    APP.export(trained_run, tmp_path, ["onnx"])
    runner = load_runner(tmp_path, "onnx")
    ids = np.array([[5, 6, 7]], np.int32)
    padded = np.array([[5, 6, 7, 0, 0, 0, 0, 0]], np.int32)
    np.testing.assert_allclose(runner(token_ids=ids)["probabilities"], runner(token_ids=padded)["probabilities"],
                               atol=1e-6)


def test_missing_or_corrupt_export_gives_a_clear_error(trained_run, tmp_path, capsys):
    with pytest.raises(ExportError, match="does not exist"):
        read_assets(tmp_path / "nowhere")
    with pytest.raises(ExportError, match="not an export directory"):
        read_assets(tmp_path)
    APP.export(trained_run, tmp_path, ["onnx"])
    with pytest.raises(ExportError, match="has no model.tflite: export it with --format tflite"):
        load_runner(tmp_path, "tflite")
    (tmp_path / "model.onnx").write_bytes(b"not a model")
    assert main(["predict", str(tmp_path), "--runtime", "onnx", "hello"]) == 1
    assert "model.onnx cannot be loaded (onnx)" in capsys.readouterr().err
    (tmp_path / "assets.json").write_text("{")
    assert main(["predict", str(tmp_path), "--runtime", "onnx", "hello"]) == 1
    assert "assets.json is corrupt" in capsys.readouterr().err


def _cell_model(name):
    ids = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(20, 8, mask_zero=True)(ids)
    x = keras.layers.Bidirectional(Recurrent(cells.get(name, 6)),
                                   backward_layer=Recurrent(cells.get(name, 6), go_backwards=True))(x)
    return keras.Model(ids, keras.layers.Dense(3)(x))


URNN_REASON = ("uRNN's FFT runs on complex tensors (tf.complex): ONNX Runtime rejects the converted 'Complex' "
               "node, and TFLite has no builtin op for it")


@pytest.mark.parametrize("runtime", ["onnx", "tflite"])
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.xfail(raises=ExportError, strict=True,
                                                                           reason=URNN_REASON))
                                  if n == "urnn" else n for n in cells.names()])
def test_every_cell_exports_with_parity(name, runtime, tmp_path):
    model = _cell_model(name)
    fn = tf.function(lambda token_ids: {"logits": model(token_ids)})
    ids = np.array([[3, 4, 5, 0, 0, 0], [1, 2, 3, 4, 5, 6]], np.int32)
    reference = {"logits": fn(ids)["logits"].numpy()}
    if runtime == "onnx":
        result = export_onnx(fn, [tf.TensorSpec([None, None], tf.int32, name="token_ids")], tmp_path / "m.onnx",
                             {"token_ids": ids}, reference)
        assert result["recurrent_ops"] == ["Loop"]
    else:
        result = export_tflite(fn, [tf.TensorSpec([1, 6], tf.int32, name="token_ids")], tmp_path / "m.tflite",
                               {"token_ids": ids}, reference, trackable_obj=model)
    assert max(result["max_abs_diff"].values()) < 1e-5
    assert os.path.exists(tmp_path / ("m." + runtime))


def test_failed_parity_leaves_nothing_behind(tmp_path):
    model = _cell_model("lstm")
    fn = tf.function(lambda token_ids: {"logits": model(token_ids)})
    ids = np.array([[3, 4, 5]], np.int32)
    wrong = {"logits": fn(ids)["logits"].numpy() + 1.0}
    with pytest.raises(ExportError, match="onnx parity failed"):
        export_onnx(fn, [tf.TensorSpec([None, None], tf.int32, name="token_ids")], tmp_path / "m.onnx",
                    {"token_ids": ids}, wrong)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("cell, pooling, char_features", [("lstm", "last", False), ("gru", "max", True),
                                                          pytest.param("peephole_lstm", "mean", False,
                                                                       marks=pytest.mark.slow)])
def test_streaming_step_matches_the_whole_sequence(tmp_path, cell, pooling, char_features):
    config = replace(SentimentConfig.smoke(), **{"data.source": "synthetic?size=100", "train.epochs": 1,
                                                 "model.bidirectional": False, "model.cell": cell,
                                                 "model.pooling": pooling, "model.num_layers": 2,
                                                 "model.char_features": char_features, "model.char_filters": 8,
                                                 "model.ngrams": 0})
    APP.train(config, tmp_path / "run")
    # with character features, ONNX too: the exports check their parity with the Keras model
    APP.export(tmp_path / "run", tmp_path / "export", ["savedmodel", "tflite"] + ["onnx"] * char_features)
    streaming = read_assets(tmp_path / "export")["streaming"]
    whole = load_runner(tmp_path / "export", "savedmodel")  # the numeric signature
    token_ids = np.array([[5, 9, 3, 7, 4]], np.int32)
    expected = whole(token_ids=token_ids)["probabilities"]
    for runtime in ("savedmodel", "tflite"):
        step = (load_runner(tmp_path / "export", "savedmodel", signature="stream_step") if runtime == "savedmodel"
                else TFLiteRunner(tmp_path / "export" / "stream_step.tflite"))
        states = {name: np.zeros((1, size), np.float32) for name, size in streaming["states"].items()}
        for token in token_ids[0]:
            out = step(token_ids=np.array([token], np.int32), **states)
            states = {name: out[name] for name in states}
        np.testing.assert_allclose(out["probabilities"], expected, atol=1e-5, err_msg=runtime)


def test_bidirectional_models_say_they_cannot_stream(trained_run, tmp_path):
    APP.export(trained_run, tmp_path, ["savedmodel"])
    assert "bidirectional" in read_assets(tmp_path)["streaming"]


def test_a_bag_of_ngrams_exports_with_parity_and_says_it_cannot_stream(tmp_path):
    config = replace(SentimentConfig.smoke(), **{"data.source": "synthetic?size=100", "train.epochs": 1,
                                                 "model.bidirectional": False, "model.ngrams": 2,
                                                 "model.char_features": False})
    APP.train(config, tmp_path / "run")
    bag = APP.load(tmp_path / "run").model.get_layer("ngrams")
    assert np.abs(bag.bigrams.numpy()).max() > 0  # trained: the exports' parity covers its scores
    parity = APP.export(tmp_path / "run", tmp_path / "export", ["savedmodel", "onnx", "tflite"])  # checks parity
    assert parity["onnx"]["recurrent_ops"] == ["LSTM"] and "WHILE" not in parity["tflite"]["ops"]
    assert "n-grams" in read_assets(tmp_path / "export")["streaming"]


def test_cudnn_ops_are_refused():
    from export.graph_checks import check_no_cudnn

    @tf.function
    def cudnn(x):  # traced, never run: the op only has to be in the graph
        return tf.raw_ops.CudnnRNNV3(input=x, input_h=x, input_c=x, params=tf.zeros([1]),
                                     sequence_lengths=tf.zeros([1], tf.int32))[0]

    with pytest.raises(ExportError, match=r"cuDNN-only ops \['CudnnRNNV3'\]"):
        check_no_cudnn(cudnn.get_concrete_function(tf.TensorSpec([2, 1, 3], tf.float32)))
    check_no_cudnn(tf.function(lambda x: x + 1).get_concrete_function(tf.TensorSpec([2], tf.float32)))


def test_int8_model_that_loses_accuracy_is_not_kept(trained_run, tmp_path, monkeypatch):
    import apps.sentiment

    monkeypatch.setattr(apps.sentiment, "MAX_INT8_ACCURACY_DROP", -1.0)  # any result now counts as a loss
    with pytest.raises(ExportError, match="int8 TFLite loses"):
        APP.export(trained_run, tmp_path / "export", ["tflite"])
    assert list(tmp_path.iterdir()) == []  # a failed export leaves nothing, not even a staging folder
    assert not (tmp_path / "model_int8.tflite").exists()
    assert not (tmp_path / "assets.json").exists()  # nothing that looks like a good export


def test_an_ensemble_exports_every_member_fused_with_parity(tmp_path):
    config = replace(SentimentConfig.smoke(), **{"data.source": "synthetic?size=100", "train.epochs": 1,
                                                 "model.bidirectional": False, "model.members": 2, "model.ngrams": 0,
                                                 "model.char_features": False})
    APP.train(config, tmp_path / "run")
    parity = APP.export(tmp_path / "run", tmp_path / "export", ["savedmodel", "onnx", "tflite"])  # checks parity
    for fmt in ("onnx", "tflite"):
        assert sorted(parity[fmt]["recurrent_layers"]) == ["lstm_0", "lstm_0 (2)"], fmt  # one per member
    assert "WHILE" not in parity["tflite"]["ops"] and parity["onnx"]["recurrent_ops"] == ["LSTM"]
    assert "ensemble" in read_assets(tmp_path / "export")["streaming"]
