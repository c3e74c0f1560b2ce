"""bn_lstm (recurrent batch normalization) against a NumPy loop over the paper's equations, in
training and inference mode, with masked sequences and per-timestep population statistics."""

import keras
import numpy as np
import pytest

from layers import cells
from layers.recurrent import Recurrent
from layers.recurrent_stack import RecurrentStack
from tests.layers.reference_cells import sigmoid

EPS, MOMENTUM = 1e-3, 0.99
XS = np.random.default_rng(1).normal(size=(3, 5, 4)).astype("float32")
MASK = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 0], [1, 1, 0, 0, 0]], bool)  # nobody reaches t = 4


def moments(x, m):
    """Mean and biased variance over the rows where m is True."""
    rows = x[m]
    return rows.mean(0), rows.var(0)


def reference(xs, mask, w, training, max_steps):
    """Returns outputs (batch, time, units), final [h, c] and, in training, the moved
    population statistics {name: (mean (max_steps, size), variance)}."""
    batch, steps, _ = xs.shape
    n = w["recurrent_kernel"].shape[0]
    h, c = np.zeros((batch, n)), np.zeros((batch, n))
    output = np.zeros((batch, n))
    outputs = []
    moving = {name: (w[f"{name}_moving_mean"].copy(), w[f"{name}_moving_variance"].copy())
              for name in ("input", "recurrent", "cell")}

    def bn(name, x, t, m):
        if training:
            mean, var = moments(x, m)
            if t < max_steps:  # move the population statistics of timestep t
                old_mean, old_var = moving[name]
                old_mean[t] = MOMENTUM * old_mean[t] + (1 - MOMENTUM) * mean
                old_var[t] = MOMENTUM * old_var[t] + (1 - MOMENTUM) * var
        else:
            k = min(t, max_steps - 1)
            mean, var = w[f"{name}_moving_mean"][k], w[f"{name}_moving_variance"][k]
        return (x - mean) / np.sqrt(var + EPS) * w[f"{name}_gamma"] + w[f"{name}_beta"]

    for t in range(steps):
        m = mask[:, t]
        if not m.any():  # nobody is here: every state and output carries over, nothing moves
            outputs.append(output)
            continue
        z = bn("recurrent", h @ w["recurrent_kernel"], t, m) + bn("input", xs[:, t] @ w["kernel"], t, m) + w["bias"]
        i, f, g, o = np.split(z, 4, axis=-1)
        c_new = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        h_new = sigmoid(o) * np.tanh(bn("cell", c_new, t, m))
        keep = m[:, None]
        h, c, output = np.where(keep, h_new, h), np.where(keep, c_new, c), np.where(keep, h_new, output)
        outputs.append(output)
    return np.stack(outputs, 1), [h, c], moving


def make(max_steps, units=3):
    rnn = Recurrent(cells.get("bn_lstm", units, max_steps=max_steps), return_sequences=True, return_state=True)
    rnn.build((None, None, 4))
    rng = np.random.default_rng(0)
    for v in rnn.weights:
        values = rng.normal(scale=0.5, size=v.shape)
        if "variance" in v.name:
            values = rng.uniform(0.5, 2.0, size=v.shape)
        v.assign(values.astype("float32"))
    return rnn


def weights(rnn):
    return {v.name: np.asarray(v.numpy(), np.float64) for v in rnn.cell.weights}


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("max_steps", [3, 8])  # later steps reuse the last statistics / room to spare
def test_matches_numpy_reference_with_masks(training, max_steps):
    rnn = make(max_steps)
    before = weights(rnn)
    outputs, h, c = rnn(XS, mask=MASK, training=training)
    expected, (want_h, want_c), moved = reference(XS.astype(np.float64), MASK, before, training, max_steps)
    np.testing.assert_allclose(outputs, expected, atol=1e-5)
    np.testing.assert_allclose(h, want_h, atol=1e-5)
    np.testing.assert_allclose(c, want_c, atol=1e-5)
    after = weights(rnn)
    for name, (mean, variance) in moved.items():
        np.testing.assert_allclose(after[f"{name}_moving_mean"], mean if training else before[f"{name}_moving_mean"],
                                   atol=1e-6)
        np.testing.assert_allclose(after[f"{name}_moving_variance"], variance, atol=1e-6)
    if training:  # timesteps at or past max_steps, and t = 4 which nobody reached, did not move
        for t in range(min(4, max_steps), max_steps):
            np.testing.assert_array_equal(after["input_moving_mean"][t], before["input_moving_mean"][t])
        assert not np.allclose(after["cell_moving_mean"][0], before["cell_moving_mean"][0])


def test_population_statistics_converge_to_the_data_and_gammas_start_at_one_tenth():
    rnn = Recurrent(cells.get("bn_lstm", 4, max_steps=2, momentum=0.5))
    rnn.build((None, None, 3))
    assert np.allclose(rnn.cell.input_gamma.numpy(), 0.1) and np.allclose(rnn.cell.cell_gamma.numpy(), 0.1)
    x = np.random.default_rng(0).normal(loc=2.0, size=(256, 2, 3)).astype("float32")
    for _ in range(20):
        rnn(x, training=True)
    projected = x @ rnn.cell.kernel.numpy()  # (batch, time, 16)
    np.testing.assert_allclose(rnn.cell.input_moving_mean.numpy(), projected.mean(0), atol=1e-4)
    np.testing.assert_allclose(rnn.cell.input_moving_variance.numpy(), projected.var(0), rtol=1e-3)
    # so inference on the same batch now reproduces training's normalisation
    np.testing.assert_allclose(rnn(x), rnn(x, training=True), atol=2e-3)


def test_round_trip_bidirectional_stack_and_plain_rnn_refused(tmp_path):
    ids = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(12, 4, mask_zero=True)(ids)
    x = RecurrentStack("bn_lstm", [3, 3], bidirectional=True, cell_options={"max_steps": 4})(x)
    model = keras.Model(ids, keras.layers.Dense(2)(x))
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=True)
    batch = np.array([[3, 5, 7, 0, 0], [1, 2, 3, 4, 5]] * 4)
    model.fit(batch, np.array([0, 1] * 4), epochs=2, batch_size=8, verbose=0)
    model.save(tmp_path / "m.keras")
    reloaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_allclose(reloaded(batch), model(batch), atol=1e-6)
    moving = [w for w in model.weights if "moving_mean" in w.path]
    assert len(moving) == 12 and all(np.abs(w.numpy()).sum() > 0 for w in moving)  # training moved them
    with pytest.raises(ValueError, match="not a Keras RNN cell: run it as layers.BatchNormLSTM"):
        keras.layers.RNN(cells.get("bn_lstm", 3))(np.ones((1, 2, 3)))


def test_the_layer_runs_the_cell_and_round_trips():
    from layers.batchnorm_lstm import BatchNormLSTM
    from layers.recurrent_stack import RecurrentStack

    layer = BatchNormLSTM(4, max_steps=3, momentum=0.5, epsilon=1e-2, return_sequences=True, go_backwards=True)
    x = np.random.default_rng(0).normal(size=(2, 5, 3)).astype("float32")
    layer(x)
    clone = BatchNormLSTM.from_config(layer.get_config())
    clone(x)
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(clone(x), layer(x), atol=1e-6)
    assert (clone.cell.max_steps, clone.cell.momentum, clone.cell.epsilon, clone.go_backwards) == (3, 0.5, 1e-2, True)
    stack = RecurrentStack("bn_lstm", [4], cell_options={"max_steps": 3})
    assert isinstance(stack.recurrent_layers[0], BatchNormLSTM)


@pytest.mark.parametrize("go_backwards", [False, True])
def test_statistics_are_kept_per_position_in_either_direction(go_backwards):
    """The first step a layer runs sees h = 0, so U h has zero variance there: that step is
    position 0 going forwards and position T - 1 going backwards."""
    steps = 4
    rnn = Recurrent(cells.get("bn_lstm", 3, max_steps=steps), go_backwards=go_backwards)
    rnn(np.random.default_rng(0).normal(size=(8, steps, 2)).astype("float32"), training=True)
    variance = rnn.cell.recurrent_moving_variance.numpy()  # started at 1
    first = steps - 1 if go_backwards else 0
    np.testing.assert_allclose(variance[first], MOMENTUM, rtol=1e-6)  # moved towards a variance of 0
    assert all(not np.allclose(variance[t], MOMENTUM) for t in range(steps) if t != first)
