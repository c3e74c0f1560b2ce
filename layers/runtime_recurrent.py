"""Recurrent layers as one fused op of an export runtime (ONNX's `LSTM` and `GRU`, LiteRT's
`UNIDIRECTIONAL_SEQUENCE_LSTM`).

Inside `fuse_recurrent(runtime)`, each layer of a `RecurrentStack` traced into a graph runs in a
form its runtime's converter turns into the fused op, and the layers that have none are named
with the reason (`Fusion.unfused`); the Keras model's own traces are never touched:

    with fuse_recurrent("onnx") as fusion:
        graph = tf.function(model_fn).get_concrete_function(spec)
    fusion.specs     # ONNX: stand-in op token -> {"op": "LSTM", "W", "R", "B", ...}
    fusion.unfused   # layer name -> why it stays a loop

ONNX: the layer becomes a stand-in `tf.py_function` op (never run) taking its inputs (batch,
time, features) and the valid lengths (batch,) from its mask; `export/onnx_recurrent.py` puts an
ONNX node built from the recorded weights in its place. ONNX layouts (opset 7+): W (directions,
gates * hidden, input), R (directions, gates * hidden, hidden), B (directions, 2 * gates * hidden:
input then recurrent biases); LSTM gates i, o, f, c (Keras: i, f, c, o), peepholes P (directions,
3 * hidden: i, o, f); GRU gates z, r, h with `linear_before_reset` for cuDNN's reset-after GRU.

LiteRT: a plain LSTM layer (Keras's, or our `lstm`) becomes a call of the composite function its
converter fuses (`api_implements="lstm_<id>"`, Keras-2's `standard_lstm` contract). The fused op
has no mask: the last output is gathered at each sequence's length, padded steps of a returned
sequence are zeroed, and a backward direction runs forward over the sequence reversed within its
length (`tf.reverse_sequence`).

The lengths stand for the mask, so the mask must be a padding mask (every step valid up to a
length, as `mask_zero` embeddings and `Masking` over right-padded batches give).
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

RUNTIMES = ("onnx", "litert")


@dataclasses.dataclass
class Fusion:
    runtime: str
    # onnx: stand-in op token -> the op and its weights; litert: layer name -> the op it became
    specs: dict = dataclasses.field(default_factory=dict)
    unfused: dict = dataclasses.field(default_factory=dict)  # layer name -> why it stays a loop
    names: dict = dataclasses.field(default_factory=dict)  # id(layer) -> its name in the report

    def name(self, layer) -> str:
        """`layer.name`, numbered when another layer had it (the stacks of an ensemble's members
        name their inner layers alike): "bidirectional_lstm_0 (2)"."""
        if id(layer) not in self.names:
            taken, name, k = set(self.names.values()), layer.name, 2
            while name in taken:
                name, k = f"{layer.name} ({k})", k + 1
            self.names[id(layer)] = name
        return self.names[id(layer)]


_ACTIVE: list[Fusion] = []


@contextlib.contextmanager
def fuse_recurrent(runtime: str):
    """While active, `RecurrentStack` layers traced into a graph take the fusable form of
    `runtime` ("onnx" or "litert", see above)."""
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime must be one of {RUNTIMES}, received {runtime!r}")
    fusion = Fusion(runtime)
    _ACTIVE.append(fusion)
    try:
        yield fusion
    finally:
        _ACTIVE.pop()


def active_fusion() -> Fusion | None:
    return _ACTIVE[-1] if _ACTIVE else None


def fused_call(layer, inputs, mask, fusion: Fusion):
    """`layer(inputs, mask=mask)` in the fusable form of `fusion.runtime`, or None when the
    layer has no fused op there (the reason is kept in `fusion.unfused`)."""
    directions = [(layer.forward_layer, False), (layer.backward_layer, True)] \
        if isinstance(layer, keras.layers.Bidirectional) else [(layer, False)]
    with tf.init_scope():  # the weights' values, eagerly, from inside the trace
        weights = [(_onnx_direction if fusion.runtime == "onnx" else _litert_direction)(part, backward)
                   for part, backward in directions]
    why = next((w for w in weights if isinstance(w, str)), None)
    if len(directions) == 2 and layer.merge_mode != "concat":
        why = f"Bidirectional merge_mode={layer.merge_mode!r}"
    if why:
        fusion.unfused[fusion.name(layer)] = why
        return None
    if fusion.runtime == "onnx":
        return _onnx_stand_in(layer, inputs, mask, weights, fusion)
    return _litert_lstm(layer, inputs, mask, directions, weights, fusion)


# --- the weights of one direction --------------------------------------------------------------

def _blocks(matrix: np.ndarray, count: int) -> list[np.ndarray]:
    return np.split(matrix, count, axis=-1)


def _refusal(layer, backward: bool) -> str | None:
    """Why no fused op can stand for this direction whatever the cell."""
    if getattr(layer, "go_backwards", False) and not backward:
        return "go_backwards outside a Bidirectional layer"
    if isinstance(layer, (keras.layers.LSTM, keras.layers.GRU)):
        names = []
        for activation in (layer.cell.activation, layer.cell.recurrent_activation):
            name = keras.activations.serialize(activation)
            names.append(name if isinstance(name, str) else name.get("config", name))
        if names != ["tanh", "sigmoid"]:
            return f"activations {names[0]}/{names[1]}: the fused ops run tanh/sigmoid"
    return None


def _kernels(cell, has_bias: bool, bias_shape) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(kernel, recurrent_kernel, bias) as NumPy copies, zeros for a missing bias."""
    w, r = cell.kernel.numpy().copy(), cell.recurrent_kernel.numpy().copy()
    return w, r, cell.bias.numpy().copy() if has_bias else np.zeros(bias_shape, w.dtype)


def _plain_lstm(layer):
    """Keras-order (i, f, c, o) kernels of Keras's LSTM or of our plain `lstm` cell, else None."""
    cell = layer.cell
    if isinstance(layer, keras.layers.LSTM):
        return _kernels(cell, cell.use_bias, cell.kernel.shape[1])
    if type(cell) is LSTMCell:
        return _kernels(cell, cell.projection_bias, cell.kernel.shape[1])
    return None


def _onnx_direction(layer, backward: bool = False) -> dict | str:
    """One direction's ONNX weights (without the directions axis), or why there are none;
    `backward`: a Bidirectional's backward layer (the op's reverse direction reverses)."""
    why = _refusal(layer, backward)
    if why:
        return why
    cell, kind = layer.cell, type(layer.cell)
    lstm = _plain_lstm(layer)
    if lstm is not None:
        return _onnx_lstm(*lstm, units=cell.units)
    if isinstance(layer, keras.layers.GRU):
        if not cell.reset_after:
            return "keras GRU with reset_after=False"
        w, r, b = _kernels(cell, cell.use_bias, (2, cell.kernel.shape[1]))
        return {"op": "GRU", "W": w.T, "R": r.T, "B": np.concatenate([b[0], b[1]]), "linear_before_reset": 1,
                "hidden_size": cell.units}
    if kind is PeepholeLSTMCell:
        spec = _onnx_lstm(*_kernels(cell, cell.projection_bias, cell.kernel.shape[1]), units=cell.units)
        p_i, p_f, p_o = cell.peephole_kernel.numpy()
        return {**spec, "P": np.concatenate([p_i, p_o, p_f])}
    if kind is CIFGLSTMCell:
        # ONNX's input_forget couples f = 1 - i; ours is i = 1 - f: its input gate is our
        # forget gate negated (sigma(-a) = 1 - sigma(a)), and its own forget weights are unused.
        def four_gates(m):
            f, g, o = _blocks(m, 3)
            return np.concatenate([-f, np.zeros_like(f), g, o], axis=-1)

        kernels = _kernels(cell, cell.projection_bias, cell.kernel.shape[1])
        return {**_onnx_lstm(*map(four_gates, kernels), units=cell.units), "input_forget": 1}
    if kind is GRUCell:
        w, r, b = _kernels(cell, cell.projection_bias, cell.kernel.shape[1])
        rb = cell.recurrent_bias.numpy().copy() if cell.reset_after else np.zeros_like(b)
        # Ours updates with z where ONNX keeps with it: negating z's pre-activation gives 1 - z.
        for array in (w, r, b, rb):
            array[..., :cell.units] *= -1.0
        return {"op": "GRU", "W": w.T, "R": r.T, "B": np.concatenate([b, rb]),
                "linear_before_reset": int(cell.reset_after), "hidden_size": cell.units}
    return f"{kind.__name__} has no ONNX op"


def _onnx_lstm(w: np.ndarray, r: np.ndarray, b: np.ndarray, units: int) -> dict:
    """Keras-order (i, f, c, o) kernels (features, 4 * units) -> ONNX order (i, o, f, c), transposed."""
    def reorder(m):
        i, f, c, o = _blocks(m, 4)
        return np.concatenate([i, o, f, c], axis=-1)

    return {"op": "LSTM", "W": reorder(w).T, "R": reorder(r).T,
            "B": np.concatenate([reorder(b), np.zeros_like(b)]), "hidden_size": units}


def _litert_direction(layer, backward: bool = False):
    """(kernel, recurrent_kernel, bias) in Keras's gate order, or why there are none."""
    why = _refusal(layer, backward)
    if why:
        return why
    lstm = _plain_lstm(layer)
    return lstm if lstm is not None else f"{type(layer.cell).__name__}: LiteRT fuses only the plain LSTM"


# --- the fusable forms --------------------------------------------------------------------------

def _lengths(inputs, mask):
    batch, time = tf.shape(inputs)[0], tf.shape(inputs)[1]
    return tf.reduce_sum(tf.cast(mask, tf.int32), axis=1) if mask is not None else tf.fill([batch], time)  # (batch,)


def _never_run(*_):
    raise RuntimeError("a recurrent stand-in op ran: it exists only for an exporter to replace")


def _onnx_stand_in(layer, inputs, mask, weights: list[dict], fusion: Fusion):
    """The stand-in op for `layer`, its spec (directions stacked) recorded under its token."""
    spec = {**weights[0], "direction": "bidirectional" if len(weights) == 2 else "forward",
            "return_sequences": layer.return_sequences, "layer": fusion.name(layer)}
    for key in ("W", "R", "B", "P"):
        if key in spec:
            spec[key] = np.stack([w[key] for w in weights])
    out = tf.py_function(_never_run, [inputs, _lengths(inputs, mask)], Tout=inputs.dtype, name="rnnapps_recurrent")
    units = spec["hidden_size"] * len(weights)
    out.set_shape([inputs.shape[0], inputs.shape[1], units] if spec["return_sequences"] else [inputs.shape[0], units])
    fusion.specs[out.op.get_attr("token").decode()] = spec
    return out


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


def _litert_lstm(layer, inputs, mask, directions, weights, fusion: Fusion):
    """`layer(inputs, mask=mask)` through LiteRT's composite LSTM function, one per direction."""
    lengths = _lengths(inputs, mask)
    valid = tf.cast(tf.sequence_mask(lengths, tf.shape(inputs)[1]), inputs.dtype)[..., None]  # (batch, time, 1)
    outputs = []
    for (_, backward), (kernel, recurrent_kernel, bias) in zip(directions, weights):
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
    fusion.specs[fusion.name(layer)] = "UNIDIRECTIONAL_SEQUENCE_LSTM" + (" (two, one per direction)"
                                                                         if len(outputs) == 2 else "")
    return tf.concat(outputs, axis=-1)
