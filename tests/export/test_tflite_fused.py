"""LSTM layers exported as LiteRT's fused UNIDIRECTIONAL_SEQUENCE_LSTM (layers/runtime_recurrent.py
`litert_lstm`), checked against the Keras model on padded batches of mixed lengths."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from export.tflite import export_tflite
from layers.masked_pooling import MaskedPooling
from layers.recurrent_stack import RecurrentStack
from layers.runtime_recurrent import fuse_recurrent

TIME = 12


def _model(cell, prefer_fused, bidirectional, pooling, options=None, units=(6, 5)):
    ids = keras.Input((TIME,), dtype="int32", name="token_ids")
    x = keras.layers.Embedding(30, 4, mask_zero=True)(ids)
    x = RecurrentStack(cell, list(units), bidirectional=bidirectional, return_sequences=pooling != "last",
                       prefer_fused=prefer_fused, cell_options=options)(x)
    if pooling != "last":
        x = MaskedPooling(pooling)(x)
    model = keras.Model(ids, keras.layers.Dense(3)(x))
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(0, 0.5, w.shape).astype("float32") for w in model.get_weights()])
    return model


def _ids(rows=6, seed=1):
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, 30, (rows, TIME)).astype("int32")
    for row, length in enumerate([12, 3, 1, 7, 11, 5][:rows]):
        ids[row, length:] = 0
    return ids


def _export(model, path, fused=True):
    @tf.function
    def numeric(token_ids):
        return {"logits": model(token_ids, training=False)}

    ids = _ids()
    reference = {"logits": model(ids, training=False).numpy()}
    return export_tflite(numeric, [tf.TensorSpec([1, TIME], tf.int32, name="token_ids")], path, {"token_ids": ids},
                         reference, atol=1e-5, trackable_obj=model,
                         fusion=fuse_recurrent if fused else None)


@pytest.mark.parametrize("pooling", ["last", "max"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("prefer_fused", [True, False], ids=["keras", "ours"])
def test_lstm_layers_become_the_fused_op(tmp_path, prefer_fused, bidirectional, pooling):
    report = _export(_model("lstm", prefer_fused, bidirectional, pooling), tmp_path / "m.tflite")
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in report["ops"] and "WHILE" not in report["ops"], report
    assert "fused_fallback" not in report
    assert all(op.startswith("UNIDIRECTIONAL_SEQUENCE_LSTM") for op in report["recurrent_layers"].values())
    assert max(report["max_abs_diff"].values()) < 1e-5  # rows run one at a time: the states restart each time


def test_without_fusion_the_layers_stay_while_loops(tmp_path):
    report = _export(_model("lstm", True, False, "last"), tmp_path / "m.tflite", fused=False)
    assert "WHILE" in report["ops"] and "UNIDIRECTIONAL_SEQUENCE_LSTM" not in report["ops"]


@pytest.mark.parametrize("cell,options,why", [("gru", {"reset_after": True}, "LiteRT fuses only the plain LSTM"),
                                              ("peephole_lstm", None, "LiteRT fuses only the plain LSTM")])
def test_other_cells_stay_loops_and_say_why(tmp_path, cell, options, why):
    report = _export(_model(cell, cell == "gru", False, "last", options), tmp_path / "m.tflite")
    assert "WHILE" in report["ops"] and "UNIDIRECTIONAL_SEQUENCE_LSTM" not in report["ops"]
    assert all(why in reason for reason in report["recurrent_layers"].values()), report


def test_a_non_tanh_lstm_is_not_fused(tmp_path):
    """The fused op hard-codes tanh: a relu LSTM must keep its loop, and say so."""
    ids = keras.Input((TIME,), dtype="int32")
    x = keras.layers.Embedding(30, 4, mask_zero=True)(ids)
    stack = RecurrentStack("lstm", [5], prefer_fused=True)
    x = stack(x)
    model = keras.Model(ids, x)
    stack.recurrent_layers[0].cell.activation = keras.activations.relu
    report = _export(model, tmp_path / "m.tflite")
    assert "WHILE" in report["ops"], report
    assert any("relu" in reason for reason in report["recurrent_layers"].values()), report


def test_a_cell_state_beyond_the_fused_ops_clip_falls_back_to_the_loop(tmp_path):
    """LiteRT's fused LSTM clips its cell state at 10 (the converter's Keras contract), Keras does
    not: 30 steps that add 1 to the state each, then 5 that halve it, tell them apart; the
    parity check catches it and the export keeps its loop, saying why."""
    steps = keras.Input((35, 1), name="x")
    stack = RecurrentStack("lstm", [1], prefer_fused=True)
    model = keras.Model(steps, stack(steps))
    cell = stack.recurrent_layers[0].cell
    # gates i, f, c, o from the input x = +1 (add: i = f = 1, candidate 1) or -1 (halve: i = 0, f = 0.5)
    cell.kernel.assign(np.array([[20.0, 10.0, 0.0, 0.0]], "float32"))
    cell.recurrent_kernel.assign(np.zeros((1, 4), "float32"))
    cell.bias.assign(np.array([0.0, 10.0, 20.0, 0.0], "float32"))
    x = np.concatenate([np.ones((2, 30, 1)), -np.ones((2, 5, 1))], axis=1).astype("float32")

    @tf.function
    def numeric(inputs):
        return {"h": model(inputs, training=False)}

    report = export_tflite(numeric, [tf.TensorSpec([1, 35, 1], tf.float32, name="x")], tmp_path / "m.tflite",
                           {"x": x}, {"h": model(x).numpy()}, atol=1e-5, trackable_obj=model,
                           fusion=fuse_recurrent)
    assert "WHILE" in report["ops"] and "parity" in report["fused_fallback"], report
    assert max(report["max_abs_diff"].values()) < 1e-5
