"""Recurrent layers as one fused op of an export runtime (ONNX's `LSTM` and `GRU`, LiteRT's
`UNIDIRECTIONAL_SEQUENCE_LSTM`).

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

LiteRT (`recurrent_placeholders("litert")`): no placeholder, but the composite function its
converter fuses (`litert_lstm`): an LSTM layer (Keras's, or our plain `lstm`) becomes a call
of a function carrying `api_implements="lstm_<id>"` with Keras-2's `standard_lstm` contract.
The fused op has no mask: the inputs are right-padded, the last output is gathered at each
sequence's length, padded steps of a returned sequence are zeroed, and a backward direction
runs forward over the sequence reversed within its length (`tf.reverse_sequence`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import uuid

import keras
import numpy as np
import tensorflow as tf

from layers.cifg_lstm_cell import CIFGLSTMCell
from layers.gru_cell import GRUCell
from layers.lstm_cell import LSTMCell
from layers.peephole_lstm_cell import PeepholeLSTMCell


@dataclasses.dataclass
class Placeholders:
    runtime: str = "onnx"  # or "litert"
    # onnx: placeholder token -> the op and its weights; litert: layer name -> the op it became
    specs: dict = dataclasses.field(default_factory=dict)
    unfused: dict = dataclasses.field(default_factory=dict)  # layer name -> why it stays a loop


_ACTIVE: list[Placeholders] = []


@contextlib.contextmanager
def recurrent_placeholders(runtime: str = "onnx"):
    """While active, `RecurrentStack` layers traced into a graph emit placeholders for `runtime`
    ("onnx": see above; "litert": LiteRT's composite LSTM function)."""
    if runtime not in ("onnx", "litert"):
        raise ValueError(f"runtime must be 'onnx' or 'litert', received {runtime!r}")
    found = Placeholders(runtime)
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


def _lengths(inputs, mask):
    batch, time = tf.shape(inputs)[0], tf.shape(inputs)[1]
    return tf.reduce_sum(tf.cast(mask, tf.int32), axis=1) if mask is not None else tf.fill([batch], time)  # (batch,)


def placeholder(layer, inputs, mask, found: Placeholders):
    """The placeholder op standing for `layer(inputs, mask=mask)`, or None when the layer has
    no op in `found.runtime` (the reason is kept in `found.unfused`)."""
    if found.runtime == "litert":
        return litert_lstm(layer, inputs, mask, found)
    with tf.init_scope():  # the weights' values, eagerly, from inside the trace
        spec = onnx_weights(layer)
    if isinstance(spec, str):
        found.unfused[layer.name] = spec
        return None
    lengths = _lengths(inputs, mask)
    out = tf.py_function(_never_run, [inputs, lengths], Tout=inputs.dtype, name="rnnapps_recurrent")
    units = spec["hidden_size"] * (2 if spec["direction"] == "bidirectional" else 1)
    out.set_shape([inputs.shape[0], inputs.shape[1], units] if spec["return_sequences"] else [inputs.shape[0], units])
    found.specs[out.op.get_attr("token").decode()] = {**spec, "layer": layer.name}
    return out


def _litert_weights(layer, backward: bool = False):
    """(kernel, recurrent_kernel, bias) in Keras's gate order i, f, c, o, or why there are none."""
    if getattr(layer, "go_backwards", False) and not backward:
        return "go_backwards outside a Bidirectional layer"
    cell = layer.cell
    if isinstance(layer, keras.layers.LSTM):
        why = _keras_activations_plain(cell)
        if why:
            return why
        bias = cell.bias.numpy() if cell.use_bias else np.zeros(cell.kernel.shape[1], "float32")
    elif type(cell) is LSTMCell:
        bias = cell.bias.numpy() if cell.projection_bias else np.zeros(cell.kernel.shape[1], "float32")
    else:
        return f"{type(cell).__name__}: LiteRT fuses only the plain LSTM"
    return cell.kernel.numpy(), cell.recurrent_kernel.numpy(), bias


def _composite_lstm():
    """A function the LiteRT converter replaces by UNIDIRECTIONAL_SEQUENCE_LSTM (Keras 2's
    `standard_lstm` contract: 6 tensor arguments, 5 results, float `runtime` last); its body
    is the same LSTM, for TensorFlow."""
    @tf.function(experimental_attributes={"api_implements": f"lstm_{uuid.uuid4().hex}", "api_preferred_device": "CPU",
                                          "time_major": False, "go_backwards": False}, autograph=False)
    def standard_lstm(inputs, init_h, init_c, kernel, recurrent_kernel, bias):
        projected = tf.einsum("btf,fg->tbg", inputs, kernel) + bias  # (time, batch, 4 * units)

        def step(carry, z):
            h, c = carry
            i, f, g, o = tf.split(z + tf.matmul(h, recurrent_kernel), 4, axis=-1)
            c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
            return tf.sigmoid(o) * tf.tanh(c), c

        hs, cs = tf.scan(step, projected, initializer=(init_h, init_c))  # (time, batch, units)
        outputs = tf.transpose(hs, [1, 0, 2])  # (batch, time, units)
        return outputs[:, -1], outputs, hs[-1], cs[-1], tf.constant(0.0)

    return standard_lstm


def litert_lstm(layer, inputs, mask, found: Placeholders):
    """`layer(inputs, mask=mask)` through LiteRT's composite LSTM function, or None (the
    reason kept in `found.unfused`)."""
    bidirectional = isinstance(layer, keras.layers.Bidirectional)
    parts = [(layer.forward_layer, False), (layer.backward_layer, True)] if bidirectional else [(layer, False)]
    with tf.init_scope():
        weights = [_litert_weights(part, backward) for part, backward in parts]
    why = next((w for w in weights if isinstance(w, str)), None)
    if bidirectional and layer.merge_mode != "concat":
        why = f"Bidirectional merge_mode={layer.merge_mode!r}"
    if why:
        found.unfused[layer.name] = why
        return None
    lengths = _lengths(inputs, mask)
    valid = tf.cast(tf.sequence_mask(lengths, tf.shape(inputs)[1]), inputs.dtype)[..., None]  # (batch, time, 1)
    outputs = []
    for (part, backward), (kernel, recurrent_kernel, bias) in zip(parts, weights):
        units = recurrent_kernel.shape[0]
        batch = inputs.shape[0] if inputs.shape[0] is not None else tf.shape(inputs)[0]  # static: the op needs it
        zeros = tf.zeros([batch, units], inputs.dtype)
        x = tf.reverse_sequence(inputs, lengths, seq_axis=1, batch_axis=0) if backward else inputs
        sequence = _composite_lstm()(x, zeros, zeros, tf.constant(kernel), tf.constant(recurrent_kernel),
                                     tf.constant(bias))[1]  # (batch, time, units)
        if layer.return_sequences:
            if backward:
                sequence = tf.reverse_sequence(sequence, lengths, seq_axis=1, batch_axis=0)
            outputs.append(sequence * valid)  # Keras's masked steps output zeros
        else:  # the output at each sequence's last valid step (zeros for an empty one)
            last = tf.gather(sequence, tf.maximum(lengths - 1, 0), batch_dims=1)  # (batch, units)
            outputs.append(last * tf.cast(lengths > 0, inputs.dtype)[:, None])
    found.specs[layer.name] = "UNIDIRECTIONAL_SEQUENCE_LSTM" + (" (two, one per direction)" if bidirectional else "")
    return tf.concat(outputs, axis=-1) if bidirectional else outputs[0]
