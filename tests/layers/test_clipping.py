"""Gradient clipping: fixed and adaptive thresholds, spikes bounded, non-finite steps skipped."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from layers.clipping import ClippedAdam, ClippedSGD, GradientStatistics


def sgd_step(optimizer, variable, grad):
    """Applies `grad`; returns the update (new - old) of the variable."""
    before = variable.numpy().copy()
    optimizer.apply([tf.constant(grad, tf.float32)], [variable])
    return variable.numpy() - before


def test_adaptive_threshold_bounds_a_spike_by_the_running_average():
    rng = np.random.default_rng(0)
    variable = keras.Variable(np.zeros(10, "float32"))
    optimizer = ClippedSGD(learning_rate=1.0, clipping="adaptive", clip_threshold=None, clip_warmup=5,
                           clip_decay=0.9)
    norms = []
    for _ in range(30):  # ordinary steps with norms around 1
        grad = rng.normal(size=10)
        grad *= rng.uniform(0.8, 1.2) / np.linalg.norm(grad)
        norms.append(np.linalg.norm(grad))
        np.testing.assert_allclose(np.linalg.norm(sgd_step(optimizer, variable, grad)),
                                   min(norms[-1], float(optimizer.threshold.numpy())), rtol=1e-5)
    # the NumPy running average (bias-corrected EMA) of those norms
    average = 0.0
    for n in norms:
        average = 0.9 * average + 0.1 * n
    average /= 1 - 0.9 ** len(norms)
    spike = rng.normal(size=10) * 1e4
    update = sgd_step(optimizer, variable, spike)
    np.testing.assert_allclose(float(optimizer.threshold.numpy()), average, rtol=1e-5)
    assert np.linalg.norm(update) <= average * (1 + 1e-5)
    np.testing.assert_allclose(update / np.linalg.norm(update), -spike / np.linalg.norm(spike), atol=1e-6)
    # the spike entered the average capped at twice the threshold: the next threshold is
    # about 1.1 x the old one, not 1000 x
    biased = average * (1 - 0.9 ** 30)
    expected_next = (0.9 * biased + 0.1 * 2 * average) / (1 - 0.9 ** 31)
    np.testing.assert_allclose(float(optimizer.current_threshold()), expected_next, rtol=1e-5)
    assert float(optimizer.last_norm.numpy()) == pytest.approx(np.linalg.norm(spike), rel=1e-5)
    assert float(optimizer.skipped_steps.numpy()) == 0


def test_warmup_uses_the_fixed_threshold_and_global_norm_mode_clips():
    variable = keras.Variable(np.zeros(4, "float32"))
    optimizer = ClippedSGD(learning_rate=1.0, clipping="adaptive", clip_threshold=2.0, clip_warmup=3)
    assert np.linalg.norm(sgd_step(optimizer, variable, [30.0, 40.0, 0, 0])) == pytest.approx(2.0, rel=1e-5)
    fixed = ClippedSGD(learning_rate=1.0, clipping="global_norm", clip_threshold=1.0)
    assert np.linalg.norm(sgd_step(fixed, keras.Variable(np.zeros(4, "float32")), [3.0, 4.0, 0, 0])) == \
        pytest.approx(1.0, rel=1e-5)
    off = ClippedSGD(learning_rate=1.0, clipping="none")
    assert np.linalg.norm(sgd_step(off, keras.Variable(np.zeros(4, "float32")), [3.0, 4.0, 0, 0])) == \
        pytest.approx(5.0, rel=1e-5)
    with pytest.raises(ValueError, match="clipping must be one of"):
        ClippedSGD(clipping="sometimes")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_gradient_is_skipped_and_counted(bad):
    variable = keras.Variable(np.ones(3, "float32"))
    optimizer = ClippedAdam(learning_rate=0.1)
    sgd_step(optimizer, variable, [1.0, 1.0, 1.0])
    state = [v.numpy().copy() for v in optimizer.variables if "skipped" not in v.name and "norm" not in v.name
             and "threshold" not in v.name]
    before = variable.numpy().copy()
    sgd_step(optimizer, variable, [1.0, bad, 1.0])
    np.testing.assert_array_equal(variable.numpy(), before)  # not applied
    assert np.isfinite(variable.numpy()).all()
    after = [v.numpy() for v in optimizer.variables if "skipped" not in v.name and "norm" not in v.name
             and "threshold" not in v.name]
    for a, b in zip(state, after):  # Adam's moments and the iteration count untouched
        np.testing.assert_array_equal(a, b)
    assert float(optimizer.skipped_steps.numpy()) == 1.0
    sgd_step(optimizer, variable, [1.0, 1.0, 1.0])
    assert not np.array_equal(variable.numpy(), before)  # and training goes on


def test_fit_logs_the_gradient_norm_and_skips_a_poisoned_batch(tmp_path):
    """A model whose loss is NaN on one batch keeps finite weights and reports the skip."""
    x = np.random.default_rng(0).normal(size=(64, 3)).astype("float32")
    y = x.sum(-1, keepdims=True)
    x[40] = np.nan  # batch 5 of 8 (batch size 8)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=ClippedAdam(learning_rate=0.05, clipping="adaptive", clip_warmup=2), loss="mse",
                  jit_compile=True)
    history = model.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0,
                        callbacks=[GradientStatistics(), keras.callbacks.CSVLogger(str(tmp_path / "h.csv"))])
    assert all(np.isfinite(w).all() for w in model.get_weights())
    assert history.history["skipped_steps"] == [1.0, 2.0, 3.0]
    assert all(n > 0 and np.isfinite(n) for n in history.history["grad_norm"])
    assert "grad_norm" in (tmp_path / "h.csv").read_text().splitlines()[0]
    assert float(model.optimizer.iterations.numpy()) == 3 * 7  # skipped steps are not iterations
    model.save(tmp_path / "m.keras")  # the optimizer serializes
    assert keras.saving.load_model(tmp_path / "m.keras").optimizer.clipping == "adaptive"


def test_works_under_mirrored_strategy():
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        model.compile(optimizer=ClippedSGD(learning_rate=0.1, clipping="adaptive"), loss="mse")
    x = np.ones((16, 3), "float32")
    model.fit(x, np.ones((16, 1)), batch_size=4, epochs=1, verbose=0)
    assert float(model.optimizer.norm_updates.numpy()) == 4


def test_the_norm_of_an_embeddings_sparse_gradient_is_the_dense_gradients():
    model = keras.Sequential([keras.Input((4,), dtype="int32"), keras.layers.Embedding(5, 3),
                              keras.layers.Flatten(), keras.layers.Dense(1)])
    model.compile(optimizer=ClippedSGD(learning_rate=0.0, clipping="none"), loss="mse")
    x, y = np.array([[1, 1, 1, 2]], "int32"), np.ones((1, 1), "float32")  # a repeated token
    with tf.GradientTape() as tape:
        loss = keras.losses.mean_squared_error(y, model(x))
    grads = tape.gradient(loss, model.trainable_variables)
    assert isinstance(grads[0], tf.IndexedSlices)
    dense = np.sqrt(sum(float(tf.reduce_sum(tf.square(tf.convert_to_tensor(g)))) for g in grads))
    model.fit(x, y, epochs=1, verbose=0)
    assert float(model.optimizer.last_norm.numpy()) == pytest.approx(dense, rel=1e-5)
