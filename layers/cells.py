"""The cell registry: `get("peephole_lstm", units=128, **options)` -> a Keras RNN cell.

Example:
>>> get("irnn", units=4).activation.__name__
'relu'
"""

from __future__ import annotations

import keras

from layers.batchnorm_lstm import BatchNormLSTM
from layers.cell_catalog import DESCRIPTIONS
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


_FACTORIES = {"elman": ElmanCell, "lstm": LSTMCell, "peephole_lstm": PeepholeLSTMCell, "cifg_lstm": CIFGLSTMCell,
              "gru": GRUCell, "irnn": _irnn, "urnn": URNNCell, "scrn": SCRNCell, "layernorm_lstm": LayerNormLSTMCell,
              "bn_lstm": BatchNormLSTMCell}
# name -> (factory, one-line description)
CELLS = {name: (_FACTORIES[name], description) for name, description in DESCRIPTIONS.items()}

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
