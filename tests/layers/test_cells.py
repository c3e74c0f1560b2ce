import functools

import keras
import numpy as np
import pytest

from layers import cells
from layers.recurrent import Recurrent
from layers.recurrent_stack import RecurrentStack
from tests.layers import reference_cells as ref

# registry name, options, reference step (given the built cell, for cell-specific constants)
CASES = {
    "elman": ({}, lambda cell: ref.elman),
    "irnn": ({}, lambda cell: ref.irnn),
    "lstm": ({}, lambda cell: ref.lstm),
    "peephole_lstm": ({}, lambda cell: ref.peephole_lstm),
    "cifg_lstm": ({}, lambda cell: ref.cifg_lstm),
    "gru": ({}, lambda cell: ref.gru),
    "gru_reset_after": ({"reset_after": True}, lambda cell: ref.gru_reset_after),
    "urnn": ({}, lambda cell: functools.partial(ref.urnn, permutation=cell._permutation)),
    "layernorm_lstm": ({}, lambda cell: ref.layernorm_lstm),
    "scrn": ({"context_units": 2, "alpha": 0.9},
             lambda cell: functools.partial(ref.scrn, context_units=2, alpha=0.9)),
}


def make_cell(case, units=3):
    options, _ = CASES[case]
    return cells.get(case.replace("_reset_after", ""), units, **options)


def randomize(layer, seed=0):
    """Random, non-constant weights: a swapped gate order cannot pass."""
    rng = np.random.default_rng(seed)
    layer.set_weights([rng.normal(scale=0.5, size=w.shape).astype("float32") for w in layer.get_weights()])


def weights_of(cell):
    return {w.name: np.asarray(w.numpy(), np.float64) for w in cell.weights}


XS = np.random.default_rng(1).normal(size=(2, 5, 4)).astype("float32")
MASK = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)


@pytest.mark.parametrize("case", CASES)
def test_one_step_matches_numpy_reference(case):
    cell = make_cell(case)
    cell.build((None, 4))
    randomize(cell)
    rng = np.random.default_rng(2)
    states = [rng.normal(size=(2, s)).astype("float32") for s in cell.state_size]
    output, new_states = cell(XS[:, 0], states)
    step = CASES[case][1](cell)
    expected, expected_states = step(XS[:, 0].astype(np.float64), [s.astype(np.float64) for s in states],
                                     weights_of(cell))
    np.testing.assert_allclose(output, expected, atol=1e-5)
    for got, want in zip(new_states, expected_states):
        np.testing.assert_allclose(got, want, atol=1e-5)


@pytest.mark.parametrize("layer_class", [Recurrent, keras.layers.RNN])
@pytest.mark.parametrize("case", CASES)
def test_masked_sequence_matches_numpy_reference(case, layer_class):
    cell = make_cell(case)
    rnn = layer_class(cell, return_sequences=True, return_state=True)
    rnn.build((None, None, 4))
    randomize(rnn)
    outputs, *states = rnn(XS, mask=MASK)
    initial = [np.zeros((2, s)) for s in cell.state_size]
    expected, expected_states = ref.run(functools.partial(CASES[case][1](cell), w=weights_of(cell)),
                                        XS.astype(np.float64), MASK, initial)
    np.testing.assert_allclose(outputs, expected, atol=1e-5)
    for got, want in zip(states, expected_states):
        np.testing.assert_allclose(got, want, atol=1e-5)
    # masked steps carried the state through unchanged
    np.testing.assert_allclose(outputs[0, 3:], np.repeat(outputs[0, 2:3], 2, axis=0), atol=1e-7)


@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("case", ["lstm", "gru", "scrn"])
def test_static_batch_and_dynamic_time_run_every_step(case, training):
    """Traced for (2, None) inputs, as a generator or an export traces a batch of one: every
    step runs (Keras's loop once took its length from the batch dimension and stopped there)."""
    import tensorflow as tf

    cell = make_cell(case)
    rnn = Recurrent(cell, return_sequences=True)
    rnn.build((None, None, 4))
    randomize(rnn)
    traced = tf.function(lambda x, m: rnn(x, mask=m, training=training),
                         input_signature=[tf.TensorSpec((2, None, 4)), tf.TensorSpec((2, None), tf.bool)])
    expected, _ = ref.run(functools.partial(CASES[case][1](cell), w=weights_of(cell)), XS.astype(np.float64), MASK,
                          [np.zeros((2, s)) for s in cell.state_size])
    np.testing.assert_allclose(traced(XS, MASK), expected, atol=1e-5)


def test_urnn_recurrent_matrix_is_unitary_and_preserves_norm():
    cell = cells.get("urnn", 16, permutation_seed=3)
    cell.build((None, 4))
    randomize(cell, seed=5)
    eye, zeros = np.eye(16, dtype="float32"), np.zeros((16, 16), "float32")
    re, im = cell.apply_unitary(eye, zeros)  # row j: W e_j
    w = (np.asarray(re, np.float64) + 1j * np.asarray(im, np.float64)).T  # columns W e_j
    np.testing.assert_allclose(w.conj().T @ w, np.eye(16), atol=1e-5)
    np.testing.assert_allclose(w, ref.urnn_matrix(weights_of(cell), cell._permutation), atol=1e-5)
    # complex linearity: W (i e_j) = i W e_j
    re_i, im_i = cell.apply_unitary(zeros, eye)
    np.testing.assert_allclose(re_i, -np.asarray(im), atol=1e-5)
    np.testing.assert_allclose(im_i, re, atol=1e-5)
    h = np.random.default_rng(0).normal(size=(8, 32)).astype("float32")
    re, im = cell.apply_unitary(h[:, :16], h[:, 16:])
    np.testing.assert_allclose(np.sqrt(np.sum(np.square(re) + np.square(im), -1)), np.linalg.norm(h, axis=-1),
                               rtol=1e-5)


def test_forget_and_update_biases_and_identity_initialisation():
    lstm = cells.get("lstm", 2, forget_bias=2.0)
    lstm.build((None, 3))
    np.testing.assert_array_equal(lstm.bias.numpy(), [0, 0, 2, 2, 0, 0, 0, 0])
    gru = cells.get("gru", 2, update_bias=-1.0)
    gru.build((None, 3))
    np.testing.assert_array_equal(gru.bias.numpy(), [-1, -1, 0, 0, 0, 0])
    irnn = cells.get("irnn", 3, recurrent_scale=0.5)
    irnn.build((None, 3))
    np.testing.assert_array_equal(irnn.recurrent_kernel.numpy(), 0.5 * np.eye(3))
    np.testing.assert_array_equal(irnn.bias.numpy(), np.zeros(3))
    q = cells.get("elman", 8)
    q.build((None, 3))
    np.testing.assert_allclose(q.recurrent_kernel.numpy().T @ q.recurrent_kernel.numpy(), np.eye(8), atol=1e-5)


def test_registry_errors():
    with pytest.raises(ValueError, match="unknown cell 'lstn'"):
        cells.get("lstm".replace("m", "n"), 3)
    with pytest.raises(ValueError, match="cell 'lstm'.*colour"):
        cells.get("lstm", 3, colour="red")
    with pytest.raises(ValueError, match="units must be a positive integer, received units=0"):
        cells.get("gru", 0)


def _model(case, bidirectional=False, layers=1):
    ids = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(12, 4, mask_zero=True)(ids)
    options, _ = CASES[case]
    x = RecurrentStack(case.replace("_reset_after", ""), [3] * layers, bidirectional=bidirectional,
                       cell_options=options)(x)
    return keras.Model(ids, keras.layers.Dense(2)(x))


@pytest.mark.parametrize("case", CASES)
def test_keras_file_round_trip_with_bidirectional_stack(case, tmp_path):
    model = _model(case, bidirectional=True, layers=2)
    batch = np.array([[3, 5, 7, 0, 0], [1, 2, 3, 4, 5]])
    model.save(tmp_path / "m.keras")
    reloaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_allclose(reloaded(batch), model(batch), atol=1e-6)
    # padding does not change the answer, in both directions and through both layers
    np.testing.assert_allclose(model(batch[:1, :3]), model(batch[:1]), atol=1e-5)


@pytest.mark.parametrize("case", ["lstm", "urnn", "scrn"])
def test_stateful_two_halves_equal_one_sequence(case):
    rnn = Recurrent(make_cell(case), stateful=True, return_sequences=True)
    rnn.build((2, None, 4))
    whole = np.asarray(rnn(XS))
    rnn.reset_states()
    first, second = np.asarray(rnn(XS[:, :2])), np.asarray(rnn(XS[:, 2:]))
    np.testing.assert_allclose(np.concatenate([first, second], axis=1), whole, atol=1e-6)


@pytest.mark.parametrize("case", CASES)
def test_trains_under_jit_compile(case):
    model = _model(case)
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=True)
    x = np.array([[3, 5, 7, 0], [1, 2, 3, 4]] * 4)
    before = [w.copy() for w in model.get_weights()]
    history = model.fit(x, np.array([0, 1] * 4), epochs=2, batch_size=8, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert any(not np.allclose(a, b) for a, b in zip(before, model.get_weights()))
    assert model.jit_compile is True
