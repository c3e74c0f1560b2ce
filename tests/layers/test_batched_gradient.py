"""`layers.batched_gradient`: the training loop whose backward pass computes the recurrent
kernel's gradient once per sequence gives autodiff's gradients of the plain loop."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from layers import cells
from layers.recurrent import Recurrent

TEMPLATE = [("lstm", {}), ("peephole_lstm", {}), ("cifg_lstm", {}), ("gru", {"reset_after": True}), ("elman", {}),
            ("irnn", {}), ("layernorm_lstm", {}), ("scrn", {})]
LENGTHS = np.array([7, 3, 5, 1])  # mixed lengths, right-padded and masked


def gradients(name, options, batched, jit=False, dropout=False, carried=False, go_backwards=False,
              return_sequences=True, mask=None, **layer_options):
    """Gradients of a fixed random projection of the layer's outputs with respect to the
    inputs, every weight and (carried) initial states, with random weights of scale 0.5.
    mask: (4, 7) bool, by default right padding to LENGTHS; layer_options: more of Recurrent's."""
    cell = cells.get(name, 5, **options)
    drop = {"dropout": 0.2, "recurrent_dropout": 0.3, "weight_dropout": 0.2} if dropout else {}
    layer = Recurrent(cell, return_sequences=return_sequences, go_backwards=go_backwards, batched_gradient=batched,
                      seed=3, **{**drop, **layer_options})
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(4, 7, 3)), tf.float32)
    mask = tf.constant(np.arange(7)[None] < LENGTHS[:, None] if mask is None else mask)
    initial = [tf.constant(rng.normal(size=(4, s)), tf.float32) for s in cell.state_size] if carried else None
    layer(x, mask=mask, initial_state=initial)
    for v in layer.weights:
        v.assign(rng.normal(size=v.shape) * 0.5)
    shape = (4, 7, cell.output_size) if return_sequences else (4, cell.output_size)
    projection = tf.constant(rng.normal(size=shape), tf.float32)

    def run(x, initial):
        with tf.GradientTape() as tape:
            tape.watch([x, *(initial or [])])
            y = layer(x, mask=mask, initial_state=initial, training=True)
            loss = tf.reduce_sum(y * projection)
        return tape.gradient(loss, [x, *layer.trainable_variables, *(initial or [])])

    return [g.numpy() for g in tf.function(run, jit_compile=jit)(x, initial)]


def assert_same_gradients(**kwargs):
    plain, batched = gradients(batched=False, **kwargs), gradients(batched=True, **kwargs)
    assert len(plain) == len(batched)
    for p, b in zip(plain, batched):
        np.testing.assert_allclose(b, p, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name,options", TEMPLATE, ids=[n + ("+reset_after" if o else "") for n, o in TEMPLATE])
def test_gradients_equal_autodiff_of_the_plain_loop(name, options):
    """Masked, with input / recurrent dropout and DropConnect drawn from the same seed, and
    carried initial states (truncated BPTT)."""
    assert cells.get(name, 5, **options).fits_template
    assert_same_gradients(name=name, options=options, dropout=True, carried=True)


def test_gradients_equal_under_xla_backwards_and_last_output():
    assert_same_gradients(name="lstm", options={}, jit=True, dropout=True, carried=True)
    assert_same_gradients(name="gru", options={"reset_after": True}, jit=True, go_backwards=True,
                          return_sequences=False)


def test_cells_outside_the_template_keep_autodiff():
    """The GRU without reset_after needs r before its candidate's matmul; uRNN and bn_lstm are
    not `h U` cells: they never enter the batched loop."""
    assert not cells.get("gru", 3).fits_template
    assert not cells.get("urnn", 3).fits_template
    assert not cells.get("bn_lstm", 3).fits_template


def test_the_training_path_does_not_leak_into_inference_graphs():
    """At inference `Recurrent` traces the plain loop: no gradient function in the graph."""
    layer = Recurrent(cells.get("lstm", 4))
    x = tf.zeros((2, 3, 2))
    layer(x)
    ops = {op.type for op in tf.function(lambda x: layer(x, training=False)).get_concrete_function(x).graph
           .get_operations()}
    trained = {op.type for op in tf.function(lambda x: layer(x, training=True)).get_concrete_function(x).graph
               .get_operations()}
    assert "IdentityN" not in ops and "IdentityN" in trained  # tf.custom_gradient's mark


def test_round_trip_keeps_the_option(tmp_path):
    model = keras.Sequential([keras.Input((3, 2)), Recurrent(cells.get("lstm", 4), batched_gradient=False)])
    model.save(tmp_path / "m.keras")
    assert keras.saving.load_model(tmp_path / "m.keras").layers[0].batched_gradient is False


def test_half_precision_policy_runs_our_cells_in_float32_on_cpu():
    """XLA emulates bfloat16 on CPUs (4x slower): the cell runs in float32 and says so; the
    layers around it keep the policy."""
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        with pytest.warns(UserWarning, match="runs in float32 on this CPU under the 'mixed_bfloat16' policy"):
            layer = Recurrent(cells.get("lstm", 4))
        dense = keras.layers.Dense(2)
    finally:
        keras.config.set_dtype_policy("float32")
    y = layer(tf.ones((2, 3, 5), tf.bfloat16))
    assert layer.compute_dtype == layer.cell.compute_dtype == "float32" and y.dtype == tf.float32
    assert dense.compute_dtype == "bfloat16"
