"""`fit_run`'s plateau handling, on a dev metric scripted epoch by epoch: the learning rate is cut
and training stops when the script says so, the model keeps the best epoch's weights, and a run
interrupted and resumed decides as an uninterrupted one."""

import csv
import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from apps.callbacks import plateau
from apps.config import ConfigError, TrainConfig
from apps.rundir import RunDir
from apps.training import check_schedule, fit_run, make_optimizer

SCRIPT = [0.50, 0.70, 0.65, 0.72, 0.60, 0.61, 0.62, 0.90]  # val_scripted per epoch; best 0.72 at epoch 4


@keras.saving.register_keras_serializable(package="tests")
class Scripted(keras.metrics.Metric):
    """A metric whose value the `Script` callback sets before each evaluation."""

    def __init__(self, name="scripted", **kwargs):
        super().__init__(name=name, **kwargs)
        self.value = self.add_variable(shape=(), initializer="zeros", name="value")

    def update_state(self, y_true, y_pred, sample_weight=None):
        pass

    def result(self):
        return self.value

    def reset_state(self):
        pass  # the script's value stays through the evaluation


class Script(keras.callbacks.Callback):
    """Sets the dev metric of each epoch from SCRIPT and records the weights after it."""

    def __init__(self, metric, stop_after=None):
        super().__init__()
        self.metric, self.stop_after, self.weights = metric, stop_after, {}
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_test_begin(self, logs=None):
        self.metric.value.assign(SCRIPT[self.epoch])

    def on_epoch_end(self, epoch, logs=None):
        self.weights[epoch] = [w.copy() for w in self.model.get_weights()]
        if self.stop_after is not None and epoch == self.stop_after:
            raise KeyboardInterrupt  # an interrupted run


def _model(metric, train=None):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    optimizer = keras.optimizers.Adam(0.1) if train is None else make_optimizer(train)
    model.compile(optimizer=optimizer, loss="mse", metrics=[metric])
    return model


def _data():
    x = np.random.default_rng(0).normal(size=(32, 3)).astype("float32")
    return tf.data.Dataset.from_tensor_slices((x, x.sum(axis=1, keepdims=True))).batch(8)


def _history(run):
    with open(run.history, newline="") as f:
        return list(csv.DictReader(f))


TRAIN = TrainConfig(epochs=len(SCRIPT), early_stopping_patience=3, lr_patience=2, lr_factor=0.5)


def _fit(tmp_path, stop_after=None, train=TRAIN, own_optimizer=False, callbacks=()):
    metric = Scripted()
    model, run = _model(metric, train if own_optimizer else None), RunDir(tmp_path / "run")
    run.start(train)
    script = Script(metric, stop_after)
    try:
        fit_run(model, run, _data(), _data(), train, monitor="val_scripted", mode="max",
                callbacks=[script, *callbacks])
    except KeyboardInterrupt:
        return None
    return model, run, script


def test_early_stop_keeps_the_best_epochs_weights_and_cuts_the_learning_rate(tmp_path):
    model, run, script = _fit(tmp_path)
    rows = _history(run)
    # best at epoch 4 (index 3), then 3 epochs without improvement: stops after epoch 7, never sees 0.90
    assert [float(r["val_scripted"]) for r in rows] == pytest.approx(SCRIPT[:7])
    assert [float(r["learning_rate"]) for r in rows] == pytest.approx([0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.05])
    for restored, best in zip(model.get_weights(), script.weights[3]):
        np.testing.assert_array_equal(restored, best)
    assert not np.allclose(script.weights[3][0], script.weights[6][0])  # the last epoch's weights differ


def test_a_run_of_an_older_version_resumes_where_a_new_key_has_its_default(tmp_path):
    run = RunDir(tmp_path / "run")
    run.start(TRAIN)
    run.release()
    older = "".join(line for line in run.config.read_text().splitlines(True) if not line.startswith("ema:"))
    run.config.write_text(older)
    assert RunDir(tmp_path / "run").start(TRAIN)  # the key it lacks is this version's default: resumes
    run.release()
    run.config.write_text(older)  # `start` rewrote it with the key
    with pytest.raises(ConfigError, match=r"ema: None -> 0.5"):
        RunDir(tmp_path / "run").start(dataclasses.replace(TRAIN, ema=0.5))


def test_a_resumed_run_stops_and_cuts_as_an_uninterrupted_one(tmp_path):
    assert _fit(tmp_path, stop_after=4) is None  # interrupted after epoch 5, one epoch into the plateau
    model, run, script = _fit(tmp_path)
    rows = _history(run)
    assert [int(r["epoch"]) for r in rows] == list(range(7))
    assert [float(r["learning_rate"]) for r in rows] == pytest.approx([0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.05])
    assert sorted(script.weights) == [5, 6]
    # a third call finds the run stopped: it trains nothing more
    metric = Scripted()
    again = _model(metric)
    fit_run(again, run, _data(), _data(), TRAIN, monitor="val_scripted", mode="max", callbacks=[Script(metric)])
    assert len(_history(run)) == 7
    for restored, best in zip(again.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(restored, best)


class Steps(keras.callbacks.Callback):
    """The training weights after each step."""

    def __init__(self):
        super().__init__()
        self.weights = []

    def on_train_batch_end(self, batch, logs=None):
        self.weights.append([w.copy() for w in self.model.get_weights()])


EMA = dataclasses.replace(TRAIN, ema=0.6, optimizer="sgd", learning_rate=0.05, clipping="none")


def test_with_ema_the_best_epoch_keeps_the_moving_average_of_the_weights(tmp_path):
    steps = Steps()
    model, run, script = _fit(tmp_path, train=EMA, own_optimizer=True, callbacks=[steps])
    assert len(_history(run)) == 7  # the same plateau decisions: best at epoch 4
    # NumPy: the average starts at the weights after the first step, then a <- m a + (1 - m) w
    average = steps.weights[0]
    for weights in steps.weights[1:16]:  # 4 steps an epoch: the end of epoch 4 is step 16
        average = [EMA.ema * a + (1 - EMA.ema) * w for a, w in zip(average, weights)]
    for restored, expected, raw in zip(model.get_weights(), average, script.weights[3]):
        np.testing.assert_allclose(restored, expected, rtol=1e-5, atol=1e-6)
        assert not np.allclose(restored, raw, atol=1e-4)  # not the training weights of that epoch


def test_with_ema_a_resumed_run_ends_as_an_uninterrupted_one(tmp_path):
    whole, _, _ = _fit(tmp_path / "a", train=EMA, own_optimizer=True)
    assert _fit(tmp_path / "b", stop_after=4, train=EMA, own_optimizer=True) is None
    resumed, _, script = _fit(tmp_path / "b", train=EMA, own_optimizer=True)
    assert sorted(script.weights) == [5, 6]
    for a, b in zip(resumed.get_weights(), whole.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_learning_rate_decays_from_its_start_and_plateau_cuts_multiply(tmp_path):
    train = dataclasses.replace(TRAIN, lr_decay=0.8, lr_decay_start=2)
    _, run, _ = _fit(tmp_path, train=train)
    rates = [float(r["learning_rate"]) for r in _history(run)]
    # decay after epochs 2..6; the plateau's cut (x 0.5, 2 epochs without improvement) after epoch 6
    assert rates == pytest.approx([0.1, 0.1, 0.08, 0.064, 0.0512, 0.04096, 0.016384])


def test_plateau_counts_epochs_since_the_best():
    state = plateau([3.0, 2.0, 2.5, 2.0, 2.1], "min")
    assert (state.best, state.best_epoch, state.wait) == (2.0, 1, 3)
    assert plateau([], "max").best_epoch == -1


@pytest.mark.parametrize("key, value", [("epochs", 0), ("early_stopping_patience", -1), ("lr_patience", -2),
                                        ("lr_factor", 0.0), ("lr_factor", 1.5), ("lr_decay", 0.0),
                                        ("lr_decay", 1.2), ("ema", 1.0), ("ema", -0.1)])
def test_bad_schedule_settings_are_refused_by_name(key, value):
    with pytest.raises(ConfigError, match=f"train.{key}"):
        check_schedule(dataclasses.replace(TrainConfig(), **{key: value}))


MEMBER_SCRIPTS = [[0.50, 0.80, 0.60, 0.70, 0.60, 0.61, 0.62], [0.70, 0.60, 0.65, 0.75, 0.74, 0.60, 0.60]]


class MemberScript(Script):
    """SCRIPT for the ensemble's metric, MEMBER_SCRIPTS for each member's."""

    def __init__(self, metrics, stop_after=None):
        super().__init__(metrics[0], stop_after)
        self.members = metrics[1:]

    def on_test_begin(self, logs=None):
        super().on_test_begin(logs)
        for metric, script in zip(self.members, MEMBER_SCRIPTS):
            metric.value.assign(script[self.epoch])


def _fit_members(tmp_path, stop_after=None):
    metrics = [Scripted(), Scripted("member0_accuracy"), Scripted("member1_accuracy")]
    keras.utils.set_random_seed(0)
    x = keras.Input((3,))
    model = keras.Model(x, keras.layers.Add()([keras.layers.Dense(1, name="head")(x),
                                               keras.layers.Dense(1, name="head_member1")(x)]))
    model.compile(optimizer=keras.optimizers.Adam(0.1), loss="mse", metrics=metrics)
    run = RunDir(tmp_path / "run")
    run.start(TRAIN)
    script = MemberScript(metrics, stop_after)
    try:
        fit_run(model, run, _data(), _data(), TRAIN, monitor="val_scripted", mode="max", callbacks=[script],
                members=2)
    except KeyboardInterrupt:
        return None
    return model, run, script


def test_each_member_of_an_ensemble_keeps_its_own_best_epoch(tmp_path):
    model, run, script = _fit_members(tmp_path)
    assert len(_history(run)) == 7  # early stopping follows the ensemble's metric (best at epoch 4)
    names = [layer.name for layer in model.layers if layer.weights]
    weights = {epoch: dict(zip(names, [w[:2], w[2:]])) for epoch, w in script.weights.items()}  # (kernel, bias)
    for layer, best_epoch in (("head", 1), ("head_member1", 3)):  # 0.80 at epoch 2, 0.75 at epoch 4
        for restored, best in zip(model.get_layer(layer).get_weights(), weights[best_epoch][layer]):
            np.testing.assert_array_equal(restored, best)
    assert not np.allclose(weights[1]["head"][0], weights[3]["head"][0])  # the epochs' weights do differ


def test_an_interrupted_ensemble_resumes_with_each_members_best(tmp_path):
    assert _fit_members(tmp_path, stop_after=2) is None  # interrupted after epoch 3
    model, run, _ = _fit_members(tmp_path)
    uninterrupted, _, _ = _fit_members(tmp_path / "whole")
    for a, b in zip(model.get_weights(), uninterrupted.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-6)
