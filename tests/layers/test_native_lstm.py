"""`layers.native_lstm`: the LSTM recurrence over MKL's packed GEMM gives the plain loop's outputs
and gradients (masks with holes, go_backwards, zeroed outputs, carried states, DropConnect), for
`LSTMCell`, `LayerNormLSTMCell` and `BatchNormLSTMCell` (and the latter's population statistics),
and stays out of inference graphs. Built on first use; in CI (the test extra installs MKL) it must build."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from layers import cells, native_lstm
from layers.batchnorm_lstm import BatchNormLSTM
from layers.recurrent import Recurrent
from layers.recurrent_stack import RecurrentStack, describe_implementation
from tests.layers.test_batched_gradient import gradients

REASON = native_lstm.unavailable_reason()
if REASON is not None and os.environ.get("CI"):
    raise RuntimeError(f"the native LSTM must build in CI: {REASON}")
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"native LSTM unavailable: {REASON}")

# Rows: right padding, left padding, a hole, nothing but padding after the first step.
MASK = np.array([[1, 1, 1, 1, 1, 0, 0], [0, 0, 1, 1, 1, 1, 1], [1, 1, 0, 0, 1, 1, 0], [1, 0, 0, 0, 0, 0, 0]], bool)


@pytest.mark.parametrize("cell", ["lstm", "layernorm_lstm", "bn_lstm"])
@pytest.mark.parametrize("options", [
    {},
    {"go_backwards": True},
    {"zero_output_for_mask": True, "carried": True},
    {"return_sequences": False, "carried": True, "go_backwards": True},
], ids=["masked", "backwards", "zero-output+carried", "last-output+carried+backwards"])
def test_outputs_and_gradients_equal_the_plain_loop(cell, options):
    """Gradients of the inputs, every weight (the norms' gammas and betas too) and the carried
    states."""
    plain = gradients(cell, {}, batched=False, mask=MASK, **options)
    native = gradients(cell, {}, batched=False, mask=MASK, native=True, **options)
    assert len(native) == len(plain) >= (4 if cell == "lstm" else 10)
    for p, n in zip(plain, native):
        np.testing.assert_allclose(n, p, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cell", ["lstm", "layernorm_lstm", "bn_lstm"])
def test_input_dropout_and_dropconnect_draw_the_same_masks(cell):
    """Dropout of the inputs and DropConnect of U come before the op: the same seed, the same masks."""
    plain = gradients(cell, {}, batched=True, carried=True, dropout=True, recurrent_dropout=0.0)
    native = gradients(cell, {}, batched=True, carried=True, dropout=True, recurrent_dropout=0.0, native=True)
    for p, n in zip(plain, native):
        np.testing.assert_allclose(n, p, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("go_backwards", [False, True])
def test_batch_norm_moves_the_population_statistics_as_the_plain_loop(go_backwards):
    """Each position's statistics move towards that step's batch statistics over the rows that run
    it; a step no row runs (the first, here) and positions past the sequence keep theirs."""
    mask = np.concatenate([np.zeros((4, 1), bool), MASK[:, :6]], axis=1)  # (4, 7): step 0 is all padding
    x = tf.constant(np.random.default_rng(1).normal(size=(4, 7, 3)), tf.float32)
    moved = []
    for native in (False, True):
        layer = BatchNormLSTM(5, max_steps=9, momentum=0.5, go_backwards=go_backwards, native=native)
        layer(x, mask=tf.constant(mask))
        for v in layer.trainable_weights:
            v.assign(np.random.default_rng(2).normal(size=v.shape) * 0.5)
        run = tf.function(lambda v: layer(v, mask=tf.constant(mask), training=True))
        assert ("RnnappsLstm" in {op.type for op in run.get_concrete_function(x).graph.get_operations()}) == native
        run(x)
        moved.append({v.path.split("/")[-1]: v.numpy() for v in layer.non_trainable_weights})
    plain, native = moved
    assert len(plain) == 6
    for name, value in plain.items():
        np.testing.assert_allclose(native[name], value, rtol=1e-5, atol=1e-6, err_msg=name)
        initial = 0.0 if "mean" in name else 1.0
        assert np.all(value[0] == initial) and np.all(value[7:] == initial)  # no row at step 0; past the length
        assert not np.allclose(value[2:7], initial)


def test_trains_in_fit_round_trips_and_stays_out_of_inference_graphs(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 9, 3)).astype("float32")
    y = (x[:, :, 0].sum(1) > 0).astype("float32")  # the sign of a sum over time
    layer = Recurrent(cells.get("lstm", 8), native=True)
    model = keras.Sequential([keras.Input((9, 3)), keras.layers.Masking(0.0), layer, keras.layers.Dense(1)])
    model.compile(keras.optimizers.Adam(0.02), keras.losses.BinaryCrossentropy(from_logits=True), jit_compile=False)
    history = model.fit(x, y, epochs=15, batch_size=16, verbose=0).history["loss"]
    assert history[-1] < 0.5 * history[0]
    inference = {op.type for op in tf.function(lambda v: layer(v, training=False)).get_concrete_function(
        tf.TensorSpec((None, 9, 3))).graph.get_operations()}
    training = {op.type for op in tf.function(lambda v: layer(v, training=True)).get_concrete_function(
        tf.TensorSpec((None, 9, 3))).graph.get_operations()}
    assert "RnnappsLstm" in training and "RnnappsLstm" not in inference
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert loaded.layers[1].native is True
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cell, options, message", [
    ("peephole_lstm", {}, "runs layers.LSTMCell, .*received PeepholeLSTMCell"),
    ("lstm", {"recurrent_dropout": 0.1}, "recurrent_dropout=0.1"),
])
def test_what_it_does_not_run_is_refused(cell, options, message):
    with pytest.raises(ValueError, match=message):
        Recurrent(cells.get(cell, 4), native=True, **options)


def test_a_machine_without_it_says_why_when_training(monkeypatch):
    layer = Recurrent(cells.get("lstm", 4), native=True, name="rnn")
    x = tf.ones((2, 3, 2))
    layer(x)  # inference runs the plain loop anywhere
    monkeypatch.setattr(native_lstm, "unavailable_reason", lambda: "MKL's headers are not in /x")
    with pytest.raises(native_lstm.NativeUnavailable, match="rnn: native=True, but .* unavailable: MKL's headers"):
        layer(x, training=True)


def test_a_stack_trains_every_layer_natively_and_round_trips():
    """RecurrentStack(native=True): each layer and direction has it (bn_lstm's own layer too),
    and it outranks prefer_fused, whose built-in LSTM has no native path."""
    stack = RecurrentStack("bn_lstm", [4, 3], bidirectional=True, native=True)
    layers = [d for layer in stack.recurrent_layers for d in (layer.forward_layer, layer.backward_layer)]
    assert len(layers) == 4 and all(isinstance(d, BatchNormLSTM) and d.native for d in layers)
    fused = RecurrentStack("lstm", [4], prefer_fused=True, native=True)
    assert type(fused.recurrent_layers[0]) is Recurrent and fused.recurrent_layers[0].native
    assert "native=True" in describe_implementation("lstm", {}, prefer_fused=True, native=True)
    x = tf.constant(np.random.default_rng(0).normal(size=(4, 7, 3)), tf.float32)
    graph = tf.function(lambda v: stack(v, mask=tf.constant(MASK), training=True)).get_concrete_function(x).graph
    assert sum(op.type == "RnnappsLstm" for op in graph.get_operations()) == 4
    restored = RecurrentStack.from_config(stack.get_config())
    assert restored.native and all(d.native for layer in restored.recurrent_layers
                                   for d in (layer.forward_layer, layer.backward_layer))
