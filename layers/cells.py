"""The cell registry: `get("peephole_lstm", units=128, **options)` -> a Keras RNN cell.

Example:
>>> get("irnn", units=4).activation.__name__
'relu'
"""

from __future__ import annotations

import keras

from layers.batchnorm_lstm import BatchNormLSTM
from layers.batchnorm_lstm_cell import BatchNormLSTMCell
from layers.cifg_lstm_cell import CIFGLSTMCell
from layers.elman_cell import ElmanCell
from layers.gru_cell import GRUCell
from layers.layernorm_lstm_cell import LayerNormLSTMCell
from layers.lstm_cell import LSTMCell
from layers.peephole_lstm_cell import PeepholeLSTMCell
from layers.scrn_cell import SCRNCell
from layers.urnn_cell import URNNCell


def _irnn(units: int, recurrent_scale: float = 1.0, **options) -> ElmanCell:
    options.setdefault("recurrent_initializer", keras.initializers.Identity(gain=recurrent_scale))
    options.setdefault("kernel_initializer", keras.initializers.RandomNormal(stddev=0.001))
    return ElmanCell(units, activation="relu", bias_initializer="zeros", **options)


# name -> (factory, one-line description)
CELLS = {
    "elman": (ElmanCell, "Elman RNN: h = tanh(W x + U h + b)"),
    "lstm": (LSTMCell, "LSTM, gates [i, f, g, o], forget-gate bias 1 (forget_bias=)"),
    "peephole_lstm": (PeepholeLSTMCell, "LSTM with diagonal peepholes from c to i, f, o (Gers & Schmidhuber)"),
    "cifg_lstm": (CIFGLSTMCell, "LSTM with coupled input-forget gate: c = f*c + (1-f)*g"),
    "gru": (GRUCell, "GRU (Cho et al.); reset_after= for the cuDNN variant, update_bias="),
    "irnn": (_irnn, "ReLU Elman cell, identity recurrent matrix, zero bias (Le et al.); recurrent_scale="),
    "urnn": (URNNCell, "unitary evolution RNN: complex state, W = D3 R2 F^-1 D2 Pi R1 F D1, modReLU"),
    "scrn": (SCRNCell, "structurally constrained RNN: slow context units s beside a fast layer (alpha=)"),
    "layernorm_lstm": (LayerNormLSTMCell, "LSTM with layer-normalised gate pre-activations and cell state (Ba et al.)"),
    "bn_lstm": (BatchNormLSTMCell, "LSTM with recurrent batch normalization, statistics per timestep up to "
                                   "max_steps (Cooijmans et al.); a layer with its own loop, not a Keras RNN cell"),
}

# Cells that are not Keras RNN cells (their steps need the mask and the timestep): the layer that
# runs each. `RecurrentStack` builds these instead of `Recurrent(cell)`.
LAYERS = {"bn_lstm": BatchNormLSTM}


def names() -> list[str]:
    return list(CELLS)


def step_names() -> list[str]:
    """Cells that can also run one step at a time outside `layers.Recurrent` (in a decoder's
    own loop or a streaming step): all but those keeping statistics per timestep (bn_lstm)."""
    return [n for n in CELLS if not getattr(CELLS[n][0], "collects_statistics", False)]


def get(name: str, units: int, **options) -> keras.layers.Layer:
    """A new cell `name` with `units` and the cell's own options."""
    if name not in CELLS:
        raise ValueError(f"unknown cell {name!r} (available: {', '.join(CELLS)})")
    factory = CELLS[name][0]
    try:
        return factory(units, **options)
    except (TypeError, ValueError) as e:
        raise ValueError(f"cell {name!r}: {e}") from None
