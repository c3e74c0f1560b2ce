"""Recurrent layers as one fused op of an export runtime (ONNX's `LSTM` and `GRU`).

An exporter converts a graph in which each fusable layer of a `RecurrentStack` is a placeholder
op, then puts the runtime's op in its place from the layer's weights, which this module gives in
the ONNX layout (`onnx_weights`). Inside `recurrent_placeholders()`, a `RecurrentStack` traced
into a graph emits, for each layer that has an ONNX op, a `tf.py_function` placeholder (never
run) taking the layer's inputs (batch, time, features) and the valid lengths (batch,) from its
mask, and records the layer's weights under the placeholder's `token` attribute:

    with recurrent_placeholders() as found:
        graph = tf.function(model_fn).get_concrete_function(spec)   # placeholders in `graph`
    found.specs   # token -> {"op": "LSTM", "W", "R", "B", ...}
    found.unfused # layer name -> why it stays a loop

The lengths stand for the mask, so the mask must be a padding mask (every step valid up to a
length, as `mask_zero` embeddings and `Masking` over right-padded batches give).

ONNX layouts (opset 7+): W (directions, gates * hidden, input), R (directions, gates * hidden,
hidden), B (directions, 2 * gates * hidden: input then recurrent biases); LSTM gates i, o, f, c
(Keras: i, f, c, o), peepholes P (directions, 3 * hidden: i, o, f); GRU gates z, r, h with
`linear_before_reset` for cuDNN's reset-after GRU.
"""

from __future__ import annotations

import contextlib
import dataclasses

import keras
import numpy as np
import tensorflow as tf

from layers.cifg_lstm_cell import CIFGLSTMCell
from layers.gru_cell import GRUCell
from layers.lstm_cell import LSTMCell
from layers.peephole_lstm_cell import PeepholeLSTMCell


@dataclasses.dataclass
class Placeholders:
    specs: dict = dataclasses.field(default_factory=dict)  # placeholder token -> ONNX op and weights
    unfused: dict = dataclasses.field(default_factory=dict)  # layer name -> why it stays a loop


_ACTIVE: list[Placeholders] = []


@contextlib.contextmanager
def recurrent_placeholders():
    """While active, `RecurrentStack` layers traced into a graph emit placeholders (see above)."""
    found = Placeholders()
    _ACTIVE.append(found)
    try:
        yield found
    finally:
        _ACTIVE.pop()


def active_placeholders() -> Placeholders | None:
    return _ACTIVE[-1] if _ACTIVE else None


def _blocks(matrix: np.ndarray, count: int) -> list[np.ndarray]:
    return np.split(matrix, count, axis=-1)


def _keras_activations_plain(cell) -> str | None:
    activation = keras.activations.serialize(cell.activation)
    recurrent = keras.activations.serialize(cell.recurrent_activation)
    names = (activation if isinstance(activation, str) else activation.get("config", activation),
             recurrent if isinstance(recurrent, str) else recurrent.get("config", recurrent))
    if names != ("tanh", "sigmoid"):
        return f"activations {names[0]}/{names[1]}: the ONNX ops here run tanh/sigmoid"
    return None


def _direction(layer, backward: bool = False) -> dict | str:
    """One direction's ONNX weights (without the directions axis), or why there are none;
    `backward`: a Bidirectional's backward layer (the op's reverse direction reverses)."""
    cell = layer.cell
    if getattr(layer, "go_backwards", False) and not backward:
        return "go_backwards outside a Bidirectional layer"
    if isinstance(layer, keras.layers.LSTM):
        why = _keras_activations_plain(cell)
        if why:
            return why
        w, r = cell.kernel.numpy(), cell.recurrent_kernel.numpy()
        b = cell.bias.numpy() if cell.use_bias else np.zeros(w.shape[1], w.dtype)
        return _lstm(w, r, b, units=cell.units)
    if isinstance(layer, keras.layers.GRU):
        why = _keras_activations_plain(cell)
        if why:
            return why
        if not cell.reset_after:
            return "keras GRU with reset_after=False"
        w, r = cell.kernel.numpy(), cell.recurrent_kernel.numpy()
        b = cell.bias.numpy() if cell.use_bias else np.zeros((2, w.shape[1]), w.dtype)
        return {"op": "GRU", "W": w.T, "R": r.T, "B": np.concatenate([b[0], b[1]]), "linear_before_reset": 1,
                "hidden_size": cell.units}
    kind = type(cell)
    if kind in (LSTMCell, PeepholeLSTMCell, CIFGLSTMCell):
        w, r = cell.kernel.numpy(), cell.recurrent_kernel.numpy()
        b = cell.bias.numpy() if cell.projection_bias else np.zeros(w.shape[1], w.dtype)
        if kind is CIFGLSTMCell:
            # ONNX's input_forget couples f = 1 - i; ours is i = 1 - f: its input gate is our
            # forget gate negated (sigma(-a) = 1 - sigma(a)), and its own forget weights are unused.
            f_w, g_w, o_w = _blocks(w, 3)
            f_r, g_r, o_r = _blocks(r, 3)
            f_b, g_b, o_b = _blocks(b, 3)
            w = np.concatenate([-f_w, np.zeros_like(f_w), g_w, o_w], axis=-1)
            r = np.concatenate([-f_r, np.zeros_like(f_r), g_r, o_r], axis=-1)
            b = np.concatenate([-f_b, np.zeros_like(f_b), g_b, o_b], axis=-1)
        spec = _lstm(w, r, b, units=cell.units)
        if kind is PeepholeLSTMCell:
            p_i, p_f, p_o = cell.peephole_kernel.numpy()
            spec["P"] = np.concatenate([p_i, p_o, p_f])
        if kind is CIFGLSTMCell:
            spec["input_forget"] = 1
        return spec
    if kind is GRUCell:
        w, r = cell.kernel.numpy().copy(), cell.recurrent_kernel.numpy().copy()
        b = cell.bias.numpy().copy() if cell.projection_bias else np.zeros(w.shape[1], w.dtype)
        rb = cell.recurrent_bias.numpy().copy() if cell.reset_after else np.zeros_like(b)
        # Ours updates with z where ONNX keeps with it: negating z's pre-activation gives 1 - z.
        units = cell.units
        for array in (w, r, b, rb):
            array[..., :units] *= -1.0
        return {"op": "GRU", "W": w.T, "R": r.T, "B": np.concatenate([b, rb]),
                "linear_before_reset": int(cell.reset_after), "hidden_size": units}
    return f"{kind.__name__} has no ONNX op"


def _lstm(w: np.ndarray, r: np.ndarray, b: np.ndarray, units: int) -> dict:
    """Keras-order (i, f, c, o) kernels (features, 4 * units) -> ONNX order (i, o, f, c), transposed."""
    def reorder(m):
        i, f, c, o = _blocks(m, 4)
        return np.concatenate([i, o, f, c], axis=-1)

    return {"op": "LSTM", "W": reorder(w).T, "R": reorder(r).T,
            "B": np.concatenate([reorder(b), np.zeros_like(b)]), "hidden_size": units}


def onnx_weights(layer) -> dict | str:
    """The ONNX op and weights of a recurrent layer (a `Bidirectional` one included: both
    directions stacked), or a sentence saying why it has none."""
    if isinstance(layer, keras.layers.Bidirectional):
        if layer.merge_mode != "concat":
            return f"Bidirectional merge_mode={layer.merge_mode!r}"
        parts = [_direction(layer.forward_layer), _direction(layer.backward_layer, backward=True)]
        why = next((p for p in parts if isinstance(p, str)), None)
        if why:
            return why
        spec = {k: v for k, v in parts[0].items()}
        for key in ("W", "R", "B", "P"):
            if key in spec:
                spec[key] = np.stack([parts[0][key], parts[1][key]])
        return {**spec, "direction": "bidirectional", "return_sequences": layer.return_sequences}
    spec = _direction(layer)
    if isinstance(spec, str):
        return spec
    for key in ("W", "R", "B", "P"):
        if key in spec:
            spec[key] = spec[key][None]
    return {**spec, "direction": "forward", "return_sequences": layer.return_sequences}


def _never_run(*_):
    raise RuntimeError("a recurrent placeholder ran: it exists only to be replaced by an exporter")


def placeholder(layer, inputs, mask, found: Placeholders):
    """The placeholder op standing for `layer(inputs, mask=mask)`, or None when the layer has
    no ONNX op (the reason is kept in `found.unfused`)."""
    with tf.init_scope():  # the weights' values, eagerly, from inside the trace
        spec = onnx_weights(layer)
    if isinstance(spec, str):
        found.unfused[layer.name] = spec
        return None
    batch, time = tf.shape(inputs)[0], tf.shape(inputs)[1]
    lengths = (tf.reduce_sum(tf.cast(mask, tf.int32), axis=1) if mask is not None
               else tf.fill([batch], time))  # (batch,)
    out = tf.py_function(_never_run, [inputs, lengths], Tout=inputs.dtype, name="rnnapps_recurrent")
    units = spec["hidden_size"] * (2 if spec["direction"] == "bidirectional" else 1)
    out.set_shape([inputs.shape[0], inputs.shape[1], units] if spec["return_sequences"] else [inputs.shape[0], units])
    found.specs[out.op.get_attr("token").decode()] = {**spec, "layer": layer.name}
    return out
