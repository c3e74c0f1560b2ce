"""Variational, naive, embedding and DropConnect dropout: where the masks are, how often they
change, and that inference is untouched."""

import keras
import numpy as np
import pytest

import layers.fused
from layers import cells
from layers.elman_cell import ElmanCell
from layers.embedding_dropout import DropoutEmbedding
from layers.fused import FusedGRU, FusedLSTM
from layers.recurrent import Recurrent
from layers.recurrent_stack import RecurrentStack
from layers.sequence_dropout import dropout_mask
from tests.layers import reference_cells as ref
from tests.layers.test_cells import CASES, MASK, XS, make_cell, randomize, weights_of

BATCH, STEPS, WIDTH, RATE = 64, 12, 32, 0.4


def identity_elman(**dropout):
    """h_t = x_t W + h_{t-1} U with W = I and U = 0: the outputs show the dropout masks."""
    rnn = Recurrent(ElmanCell(WIDTH, activation="linear"), return_sequences=True, **dropout)
    rnn.build((None, None, WIDTH))
    rnn.set_weights([np.eye(WIDTH), np.zeros(WIDTH), np.zeros((WIDTH, WIDTH))])
    return rnn


def kept(masks):
    return np.asarray(masks) != 0


@pytest.mark.parametrize("where", ["dropout", "output_dropout"])
def test_variational_masks_fixed_over_time_and_differ_across_sequences(where):
    out = np.asarray(identity_elman(**{where: RATE, "seed": 3})(np.ones((BATCH, STEPS, WIDTH)), training=True))
    # one mask per sequence, the same at every step
    np.testing.assert_array_equal(kept(out), np.repeat(kept(out[:, :1]), STEPS, axis=1))
    assert len({kept(out[b, 0]).tobytes() for b in range(BATCH)}) == BATCH  # differ across sequences
    np.testing.assert_allclose(np.unique(out), [0.0, 1 / (1 - RATE)], rtol=1e-6)  # inverted dropout
    assert abs(kept(out[:, 0]).mean() - (1 - RATE)) < 0.04
    assert abs(out[:, 0].mean() - 1.0) < 0.08  # the expected activation is preserved


@pytest.mark.parametrize("where", ["dropout", "output_dropout"])
def test_naive_masks_change_every_step(where):
    out = np.asarray(identity_elman(**{where: RATE, "dropout_mode": "naive", "seed": 3})(
        np.ones((BATCH, STEPS, WIDTH)), training=True))
    same_as_first = (kept(out) == kept(out[:, :1])).all(axis=-1)[:, 1:]  # (batch, steps - 1)
    assert not same_as_first.any()
    assert abs(out.mean() - 1.0) < 0.03


def test_inference_is_deterministic_and_equals_no_dropout():
    x = np.random.default_rng(0).normal(size=(4, STEPS, WIDTH)).astype("float32")
    rnn = Recurrent(cells.get("lstm", 8), dropout=0.3, recurrent_dropout=0.3, output_dropout=0.3,
                    weight_dropout=0.3, seed=1)
    plain = Recurrent(cells.get("lstm", 8))
    rnn.build(x.shape)
    plain.build(x.shape)
    plain.set_weights(rnn.get_weights())
    np.testing.assert_array_equal(rnn(x), rnn(x))
    np.testing.assert_allclose(rnn(x), plain(x), atol=1e-6)
    assert not np.allclose(rnn(x, training=True), rnn(x, training=True))  # new masks each call


def test_naive_mode_refuses_recurrent_dropout():
    with pytest.raises(ValueError, match="naive dropout acts on non-recurrent connections only"):
        Recurrent(cells.get("lstm", 4), recurrent_dropout=0.2, dropout_mode="naive")
    with pytest.raises(ValueError, match="dropout_mode must be one of"):
        Recurrent(cells.get("lstm", 4), dropout_mode="gaussian")
    with pytest.raises(ValueError, match=r"recurrent_dropout must be in \[0, 1\)"):
        Recurrent(cells.get("lstm", 4), recurrent_dropout=1.0)
    with pytest.raises(ValueError, match="URNNCell has none"):
        Recurrent(cells.get("urnn", 4), weight_dropout=0.2)(np.ones((1, 2, 3)), training=True)


@pytest.mark.parametrize("case", [c for c in CASES if c != "urnn"])
def test_recurrent_dropout_masks_h_in_the_matmul_only(case):
    """Against the NumPy step with U replaced by diag(m) U, i.e. (h * m) U: the mask multiplies
    h_{t-1} where it enters the recurrent matmul, and nothing else (an LSTM's c, a GRU's update
    h = (1 - z) h_{t-1} + z h~ and an SCRN's context keep their unmasked values)."""
    rate, seed = 0.5, 7
    cell = make_cell(case)
    rnn = Recurrent(cell, return_sequences=True, return_state=True, recurrent_dropout=rate, seed=seed)
    rnn.build((None, None, 4))
    randomize(rnn)
    outputs, *states = rnn(XS, mask=MASK, training=True)
    # The same mask as the layer's first draw from a generator with the same seed.
    mask = np.asarray(dropout_mask((2, cell.state_size[0]), rate, keras.random.SeedGenerator(seed)), np.float64)
    assert 0 < (mask == 0).sum() < mask.size

    weights = weights_of(cell)

    def step(x, states):
        h = states[0]
        w = dict(weights)
        # (h * m) U row by row: a different mask per sequence.
        out_rows, state_rows = [], []
        for b in range(h.shape[0]):
            w["recurrent_kernel"] = mask[b][:, None] * weights["recurrent_kernel"]
            out, new = CASES[case][1](cell)(x[b:b + 1], [s[b:b + 1] for s in states], w)
            out_rows.append(out)
            state_rows.append(new)
        return np.concatenate(out_rows), [np.concatenate(parts) for parts in zip(*state_rows)]

    initial = [np.zeros((2, s)) for s in cell.state_size]
    expected, expected_states = ref.run(step, XS.astype(np.float64), MASK, initial)
    np.testing.assert_allclose(outputs, expected, atol=1e-5)
    for got, want in zip(states, expected_states):
        np.testing.assert_allclose(got, want, atol=1e-5)


def test_bidirectional_directions_draw_separate_masks():
    stack = RecurrentStack("elman", [WIDTH], bidirectional=True, return_sequences=True, dropout=RATE, seed=5,
                           cell_options={"activation": "linear"})
    stack.build((None, None, WIDTH))
    stack.set_weights([np.eye(WIDTH), np.zeros(WIDTH), np.zeros((WIDTH, WIDTH))] * 2)
    out = np.asarray(stack(np.ones((BATCH, STEPS, WIDTH)), training=True))
    forward, backward = kept(out[..., :WIDTH]), kept(out[..., WIDTH:])
    for direction in (forward, backward):
        np.testing.assert_array_equal(direction, np.repeat(direction[:, :1], STEPS, axis=1))
    assert (forward[:, 0] != backward[:, 0]).mean() > 0.3  # independent masks disagree often


def test_dropconnect_masks_the_recurrent_matrix_once_per_batch():
    rate = 0.3
    rnn = Recurrent(ElmanCell(WIDTH, activation="linear"), return_sequences=True, weight_dropout=rate, seed=2)
    rnn.build((None, None, WIDTH))
    big = Recurrent(cells.get("lstm", 128), weight_dropout=rate, seed=2)
    big.build((None, None, 16))
    with big.dropped_weights(training=True):
        dropped = np.asarray(big.cell.recurrent_kernel)
    original = big.cell.recurrent_kernel.numpy()
    assert isinstance(big.cell.recurrent_kernel, keras.Variable)  # restored afterwards
    assert abs((dropped == 0).mean() - rate) < 0.01
    np.testing.assert_allclose(dropped[dropped != 0], original[dropped != 0] / (1 - rate), rtol=1e-6)

    # U = I, input only at step 0: h_t = (M o I)^t x_0. One mask for the batch and every step:
    # a unit dropped at step 1 stays dropped, in every sequence, and kept ones grow as 1/(1-p)^t.
    rnn.set_weights([np.eye(WIDTH), np.zeros(WIDTH), np.eye(WIDTH)])
    x = np.zeros((8, STEPS, WIDTH), "float32")
    x[:, 0] = 1.0
    out = np.asarray(rnn(x, training=True))
    diagonal_kept = out[0, 1] != 0
    assert 0 < diagonal_kept.sum() < WIDTH
    for t in range(1, STEPS):
        np.testing.assert_allclose(out[:, t], np.broadcast_to(diagonal_kept / (1 - rate) ** t, (8, WIDTH)),
                                   rtol=1e-4)


@pytest.mark.parametrize("layer_class, backend_name", [(FusedLSTM, "lstm"), (FusedGRU, "gru")])
def test_fused_layers_hand_the_dropped_matrix_to_the_fused_kernel(layer_class, backend_name, monkeypatch):
    """On a GPU Keras runs `backend.lstm` / `backend.gru` (cuDNN); on this CPU that function
    declines (NotImplementedError) and the generic loop runs. Spy on what it is handed."""
    handed = []
    real = getattr(layers.fused.keras.src.backend, backend_name)

    def spy(*args, **kwargs):
        handed.append(kwargs["recurrent_kernel"])
        return real(*args, **kwargs)

    monkeypatch.setattr(keras.src.backend, backend_name, spy)
    rate = 0.5
    options = {"reset_after": True} if layer_class is FusedGRU else {}
    layer = layer_class(64, weight_dropout=rate, seed=0, **options)
    x = np.random.default_rng(0).normal(size=(3, 5, 8)).astype("float32")
    layer.build(x.shape)
    layer(x, training=True)
    assert not isinstance(handed[-1], keras.Variable)
    assert abs((np.asarray(handed[-1]) == 0).mean() - rate) < 0.03
    assert isinstance(layer.cell.recurrent_kernel, keras.Variable)
    layer(x)
    assert handed[-1] is layer.cell.recurrent_kernel  # inference: the variable itself

    builtin = (keras.layers.GRU if layer_class is FusedGRU else keras.layers.LSTM)(64, **options)
    builtin.build(x.shape)
    builtin.set_weights(layer.get_weights())
    np.testing.assert_allclose(layer(x), builtin(x), atol=1e-6)
    assert not np.allclose(layer(x, training=True), builtin(x), atol=1e-3)


def test_fused_layer_refuses_recurrent_dropout_and_stack_falls_back():
    with pytest.raises(ValueError, match="use layers.Recurrent for recurrent_dropout"):
        FusedLSTM(4, recurrent_dropout=0.2)
    fused = RecurrentStack("lstm", [4], prefer_fused=True, weight_dropout=0.2, dropout=0.1)
    unfused = RecurrentStack("lstm", [4], prefer_fused=True, recurrent_dropout=0.2)
    assert isinstance(fused.recurrent_layers[0], FusedLSTM)
    assert type(unfused.recurrent_layers[0]) is Recurrent


def test_embedding_dropout_drops_whole_words_per_sequence():
    rate, vocab = 0.5, 10
    embedding = DropoutEmbedding(vocab, 6, embedding_dropout=rate, seed=4, embeddings_initializer="ones")
    ids = np.tile(np.arange(vocab), (BATCH, 4))  # every word four times per sequence
    out = np.asarray(embedding(ids, training=True))
    word_kept = out[..., 0] != 0  # (batch, time)
    for b in range(BATCH):
        per_word = word_kept[b].reshape(4, vocab)
        np.testing.assert_array_equal(per_word, np.repeat(per_word[:1], 4, axis=0))  # same word, same fate
    assert len({word_kept[b].tobytes() for b in range(BATCH)}) > BATCH // 2  # differs across sequences
    assert abs(out.mean() - 1.0) < 0.1
    np.testing.assert_array_equal(embedding(ids), np.ones((BATCH, 4 * vocab, 6)))  # off at inference


def test_regularized_stack_round_trips_and_trains_under_jit(tmp_path):
    ids = keras.Input((None,), dtype="int32")
    x = DropoutEmbedding(12, 4, mask_zero=True, embedding_dropout=0.1, seed=1)(ids)
    x = RecurrentStack("lstm", [6, 6], bidirectional=True, prefer_fused=True, dropout=0.2, output_dropout=0.2,
                       weight_dropout=0.3, seed=3)(x)
    y = RecurrentStack("gru", [5], recurrent_dropout=0.3, cell_options={"update_bias": 1.0}, seed=3)(
        keras.layers.RepeatVector(3)(x))
    model = keras.Model(ids, keras.layers.Dense(2)(y))
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=True)
    batch = np.array([[3, 5, 7, 0], [1, 2, 3, 4]] * 4)
    history = model.fit(batch, np.array([0, 1] * 4), epochs=2, batch_size=8, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    model.save(tmp_path / "m.keras")
    reloaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_allclose(reloaded(batch), model(batch), atol=1e-6)
    stack = reloaded.layers[2]
    assert stack.dropout_options["weight_dropout"] == 0.3 and stack.recurrent_layers[0].forward_layer.weight_dropout
