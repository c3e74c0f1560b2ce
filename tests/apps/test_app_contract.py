"""The contract every registered app keeps, on its smoke config: train (interrupted, then
resumed), evaluate, predict, export every format, predict through each runtime, padding
invariance. A new app gets these tests by registering."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from apps.registry import APPS, get_app
from export import ExportError


class InterruptAfterFirstEpoch(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        raise KeyboardInterrupt


@pytest.fixture(scope="module", params=list(APPS))
def trained(request, tmp_path_factory):
    app = get_app(request.param)
    config = app.config_class.smoke()
    run = tmp_path_factory.mktemp(app.name) / "run"
    with pytest.raises(KeyboardInterrupt):
        app.train(config, run, callbacks=[InterruptAfterFirstEpoch()])
    assert not (run / "model.keras").exists()  # an interrupted run does not look finished
    metrics = app.train(config, run)  # the same call resumes it
    return app, run, metrics


def test_resumed_training_continues_where_it_stopped(trained):
    app, run, metrics = trained
    epochs = [line.split(",")[0] for line in (run / "history.csv").read_text().splitlines()[1:]]
    assert epochs == [str(e) for e in range(app.config_class.smoke().train.epochs)]
    assert json.loads((run / "metrics-test.json").read_text()) == metrics
    for name in ("config.yaml", "model.keras", "checkpoints/best.keras", "plots/training.png"):
        assert (run / name).exists(), name


def test_evaluate_gives_the_test_metrics_of_training(trained):
    app, run, metrics = trained
    again = app.evaluate(run, split="test")
    assert set(again) == set(metrics)
    for key, value in metrics.items():
        assert again[key] == (pytest.approx(value, abs=1e-5) if isinstance(value, float) else value), key
    with pytest.raises(Exception, match="--split must be one of"):
        app.evaluate(run, split="nope")


def _same_predictions(got, expected, where):
    assert len(got) == len(expected), where
    for g, e in zip(got, expected):
        assert set(g) >= set(e) - {"plot"}, where
        # Two labels at probability 0.5 are a tie any rounding can break: compare decided rows.
        undecided = abs(e.get("probability", 1.0) - 0.5) < 1e-3
        for key, value in e.items():
            if isinstance(value, float):
                assert g[key] == pytest.approx(value, abs=1e-4), (where, key)
            elif not undecided:
                assert g[key] == value, (where, key)


def test_predict_export_and_runtimes_agree(trained, tmp_path):
    app, run, _ = trained
    inputs = list(app.demo_inputs[:2])
    rows = app.predict(run, inputs)
    assert [next(iter(r.values())) for r in rows] == inputs  # the input first
    lines = [app.format_prediction(r) for r in rows]
    assert all(isinstance(line, str) and line.strip() and (app.multiline_predictions or "\n" not in line)
               for line in lines), lines
    out = tmp_path / "export"
    report = app.export(run, out, list(app.formats))
    assert {name.split("_")[0] for name in report} == set(app.formats)
    assert json.loads((out / "parity.json").read_text()).keys() == report.keys()
    for name, result in report.items():  # the runtime's fused recurrent ops held parity where used
        assert "fused_fallback" not in result, (name, result["fused_fallback"])
    assets = json.loads((out / "assets.json").read_text())
    assert assets["app"] == app.name and assets["schema_version"] == 1
    for runtime in app.formats:
        _same_predictions(app.predict_export(out, runtime, inputs), rows, runtime)


def test_export_directory_holds_one_export_of_one_run(trained, tmp_path):
    app, run, _ = trained
    if app.name != "sentiment":
        pytest.skip("App.export's staging and run check are the same for every app: checked on sentiment")
    out = tmp_path / "export"
    app.export(run, out, ["onnx"])
    app.export(run, out, ["savedmodel"])  # the same run: replaced whole, never mixed
    assert (out / "savedmodel").is_dir() and not (out / "model.onnx").exists()
    (out / "assets.json").write_text(json.dumps({**json.loads((out / "assets.json").read_text()),
                                                 "run": {"path": "elsewhere", "model_sha256": "0"}}))
    with pytest.raises(ExportError, match="holds an export of another run"):
        app.export(run, out, ["onnx"])
    assert not (out / "model.onnx").exists()


def test_padding_does_not_change_the_outputs(trained):
    app, run, _ = trained
    loaded = app.load(run)
    splits, _ = app.load_splits(loaded.config)
    inputs = next(iter(loaded.preprocessor.dataset(splits["test"], training=False)))[0]
    flat = tf.nest.flatten(inputs)
    expected = loaded.model(inputs, training=False).numpy()
    # three more padding steps on the time axis of every input that has one (not a per-row flag,
    # nor an image: rank 4)
    def timed(x):
        return 2 <= x.shape.rank <= 3

    padded = tf.nest.pack_sequence_as(inputs, [tf.pad(x, [[0, 0], [0, 3]] + [[0, 0]] * (x.shape.rank - 2))
                                               if timed(x) else x for x in flat])
    got = loaded.model(padded, training=False).numpy()
    np.testing.assert_allclose(got[tuple(slice(0, n) for n in expected.shape)], expected, atol=1e-5)
    # and not vacuous: other ids change the outputs
    changed = tf.nest.pack_sequence_as(inputs, [tf.where(x > 0, 3, 0) if x.shape.rank >= 2 else x for x in flat])
    assert np.abs(loaded.model(changed, training=False).numpy() - expected).max() > 1e-4
