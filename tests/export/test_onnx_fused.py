"""Recurrent layers exported as onnxruntime's own LSTM / GRU nodes (export/onnx_recurrent.py),
checked against the Keras model on padded batches of mixed lengths."""

import keras
import numpy as np
import onnx
import pytest
import tensorflow as tf

from export.onnx import export_onnx
from layers.recurrent_stack import RecurrentStack
from layers.runtime_recurrent import fuse_recurrent

pytestmark = pytest.mark.filterwarnings("ignore:Layer .lambda")  # the test model flattens a masked sequence

CASES = [  # (cell, cell_options, prefer_fused, the ONNX op)
    ("lstm", {}, True, "LSTM"),  # keras.layers.LSTM (layers.FusedLSTM)
    ("gru", {"reset_after": True}, True, "GRU"),  # keras.layers.GRU
    ("lstm", {}, False, "LSTM"),  # ours in layers.Recurrent
    ("peephole_lstm", {}, False, "LSTM"),
    ("cifg_lstm", {}, False, "LSTM"),
    ("gru", {"reset_after": True}, False, "GRU"),
    ("gru", {"reset_after": False}, False, "GRU"),
]


def _model(cell, options, prefer_fused, bidirectional, sequences, seed=0):
    ids = keras.Input((7,), dtype="int32", name="token_ids")
    x = keras.layers.Embedding(20, 6, mask_zero=True)(ids)
    x = RecurrentStack(cell, [5, 4], bidirectional=bidirectional, return_sequences=sequences, cell_options=options,
                       prefer_fused=prefer_fused)(x)
    if sequences:  # the padded steps' outputs count too: Keras gives zeros there
        x = keras.layers.Lambda(lambda s: keras.ops.reshape(s, (-1, 7 * s.shape[-1])))(x)
    model = keras.Model(ids, keras.layers.Dense(3)(x))
    rng = np.random.default_rng(seed)  # every weight random, peepholes and biases included
    model.set_weights([rng.normal(0, 0.5, w.shape).astype("float32") for w in model.get_weights()])
    return model


def _ids(batch=5, time=7, seed=1):
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, 20, (batch, time)).astype("int32")
    for row, length in enumerate([7, 3, 1, 5, 6][:batch]):
        ids[row, length:] = 0  # right padding
    return ids


def _export(model, path, ids, fused=True):
    @tf.function
    def numeric(token_ids):
        return {"logits": model(token_ids, training=False)}

    signature = [tf.TensorSpec([None, ids.shape[1]], tf.int32, name="token_ids")]
    reference = {"logits": model(ids, training=False).numpy()}
    return export_onnx(numeric, signature, path, {"token_ids": ids}, reference, atol=1e-5,
                       fusion=fuse_recurrent if fused else None)


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("cell,options,prefer_fused,op", CASES,
                         ids=[f"{c[0]}-{'keras' if c[2] else 'ours'}-{c[1].get('reset_after', '')}" for c in CASES])
def test_recurrent_layers_become_one_onnx_node_each(tmp_path, cell, options, prefer_fused, op, bidirectional):
    model = _model(cell, options, prefer_fused, bidirectional, sequences=bidirectional)
    ids = _ids()
    report = _export(model, tmp_path / "m.onnx", ids)
    graph = onnx.load(str(tmp_path / "m.onnx")).graph
    ops = [n.op_type for n in graph.node]
    assert ops.count(op) == 2 and "Loop" not in ops and "fused_fallback" not in report, (ops, report)
    assert all(v.startswith(op) for v in report["recurrent_layers"].values()), report
    assert max(report["max_abs_diff"].values()) < 1e-5


def test_a_cell_without_an_onnx_op_stays_a_loop_and_says_why(tmp_path):
    model = _model("elman", {}, False, False, sequences=False)
    report = _export(model, tmp_path / "m.onnx", _ids())
    assert report["recurrent_ops"] == ["Loop"]
    assert all("ElmanCell has no ONNX op" in why for why in report["recurrent_layers"].values()), report


def test_without_fusion_the_graph_keeps_tf2onnx_loops(tmp_path):
    model = _model("lstm", {}, True, True, sequences=False)
    report = _export(model, tmp_path / "m.onnx", _ids(), fused=False)
    assert "Loop" in report["recurrent_ops"] and "recurrent_layers" not in report


def test_the_keras_model_keeps_running_after_a_fused_export(tmp_path):
    """The stand-in ops live only in the export's own trace, never in the model's functions."""
    model = _model("gru", {"reset_after": True}, True, False, sequences=False)
    ids = _ids()
    before = model(ids).numpy()
    _export(model, tmp_path / "m.onnx", ids)
    np.testing.assert_allclose(model(ids).numpy(), before)
    np.testing.assert_allclose(model.predict(ids, verbose=0), before, atol=1e-6)
