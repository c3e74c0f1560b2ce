"""A deep and/or bidirectional stack of recurrent layers, from a cell name and a list of sizes."""

from __future__ import annotations

from collections.abc import Sequence

import keras

from layers import PACKAGE, cells
from layers.fused import FusedGRU, FusedLSTM
from layers.recurrent import Recurrent
from layers.runtime_recurrent import active_fusion, fused_call


def fused_layer(cell: str, options: dict, recurrent_dropout: float = 0.0):
    """The built-in (cuDNN-capable) layer equivalent to `cell` with `options`, or None.

    `lstm` with the default forget bias is `keras.layers.LSTM`; `gru` with `reset_after=True`
    and no update bias is `keras.layers.GRU` (whose z gate keeps, where ours updates: the same
    family of functions, with z and 1 - z swapped). Both come as `layers.fused` subclasses that
    add our dropout options; recurrent dropout (which the fused kernel lacks) rules them out.
    """
    if recurrent_dropout:
        return None
    if cell == "lstm" and options.get("forget_bias", 1.0) == 1.0 and set(options) <= {"forget_bias"}:
        return FusedLSTM
    if cell == "gru" and options.get("reset_after") is True and not options.get("update_bias") \
            and set(options) <= {"reset_after", "update_bias"}:
        return FusedGRU
    return None


def fusable_options(cell: str) -> dict:
    """Options that make a plain cell match its fused built-in: GRU's cuDNN (reset-after)
    variant; nothing for the others."""
    return {"reset_after": True} if cell == "gru" else {}


def describe_implementation(cell: str, options: dict, prefer_fused: bool, recurrent_dropout: float = 0.0,
                            native: bool = False) -> str:
    fused = fused_layer(cell, options, recurrent_dropout) if prefer_fused and not native else None
    if fused is not None:
        return f"layers.{fused.__name__} (keras.layers.{fused.__bases__[-1].__name__}, fused on GPU)"
    trained = ", native=True (layers.native_lstm in training)" if native else ""
    if cell in cells.LAYERS:
        return f"layers.{cells.LAYERS[cell].__name__}{trained}"
    return f"layers.Recurrent({type(cells.get(cell, 1, **options)).__name__}){trained}"


@keras.saving.register_keras_serializable(package=PACKAGE)
class RecurrentStack(keras.layers.Layer):
    """Recurrent layers of sizes `units`, each fed the previous one's sequence.

    Args:
        cell: a name of `layers.cells`.  units: one size per layer.
        bidirectional: wrap each layer in `keras.layers.Bidirectional` (outputs concatenated).
        return_sequences: the last layer returns every step (inner layers always do).
        return_state: also return the final states of every layer, flattened in layer order
            (forward then backward states for bidirectional layers).
        prefer_fused: use the built-in `keras.layers.LSTM` / `GRU` where the cell and options
            are plain (see `fused_layer`): cuDNN on a GPU.
        native: train every layer through `layers.native_lstm` (lstm, layernorm_lstm, bn_lstm;
            see `layers.Recurrent`'s `native`: a CPU op outside XLA, compile with
            `jit_compile=False`); takes precedence over `prefer_fused`.
        cell_options: extra keyword arguments of the cell.
        dropout, recurrent_dropout, output_dropout, dropout_mode, weight_dropout: of every
            layer, as in `layers.sequence_dropout.SequenceDropout` (each layer and direction
            samples its own masks).
        seed: seed of the masks; layer i's forward direction uses seed + 2i, backward seed + 2i + 1.

    Call arguments: inputs (batch, time, features), mask (batch, time), training,
        initial_state (optional: every layer's states, flattened as `return_state` returns them).
    Returns: (batch, [time,] last_units * directions), then the states if `return_state`.
    Masking: the mask reaches every layer; the output keeps it when `return_sequences`.

    Example:
    >>> tuple(RecurrentStack("gru", [8, 4], bidirectional=True)(keras.ops.ones((2, 5, 3))).shape)
    (2, 8)
    """

    def __init__(self, cell: str, units: Sequence[int], bidirectional: bool = False, return_sequences: bool = False,
                 return_state: bool = False, prefer_fused: bool = False, cell_options: dict | None = None,
                 dropout: float = 0.0, recurrent_dropout: float = 0.0, output_dropout: float = 0.0,
                 dropout_mode: str = "variational", weight_dropout: float = 0.0, seed: int | None = None,
                 native: bool = False, **kwargs):
        super().__init__(**kwargs)
        units = list(units)
        if not units:
            raise ValueError("units must list at least one layer size, received units=[]")
        self.cell, self.units, self.bidirectional = cell, units, bidirectional
        self.return_sequences, self.return_state, self.prefer_fused = return_sequences, return_state, prefer_fused
        self.cell_options = dict(cell_options or {})
        self.dropout_options = {"dropout": dropout, "recurrent_dropout": recurrent_dropout,
                                "output_dropout": output_dropout, "dropout_mode": dropout_mode,
                                "weight_dropout": weight_dropout}
        self.seed, self.native = seed, bool(native)
        self.supports_masking = True
        fused = fused_layer(cell, self.cell_options, recurrent_dropout) if prefer_fused and not native else None

        def make(size, sequences, name, go_backwards=False):
            index = 2 * len(self.recurrent_layers) + int(go_backwards)
            common = dict(return_sequences=sequences, return_state=return_state, go_backwards=go_backwards,
                          name=name, seed=None if seed is None else seed + index, **self.dropout_options,
                          **({"native": True} if native else {}))
            if fused is not None:
                return fused(size, **common, **self.cell_options)
            if cell in cells.LAYERS:  # a cell with a loop of its own
                return cells.LAYERS[cell](size, **common, **self.cell_options)
            return Recurrent(cells.get(cell, size, **self.cell_options), **common)

        self.recurrent_layers = []
        for i, size in enumerate(units):
            sequences = return_sequences or i < len(units) - 1
            layer = make(size, sequences, f"{cell}_{i}")
            if bidirectional:
                # The backward layer is given, not left to Bidirectional: Bidirectional would
                # serialize `layer` twice, and during `load_model` Keras 3's shared-object
                # tracking can then match the second config, by id(), to an unrelated object
                # from the file (seen as an intermittent "'GRUCell' object has no attribute
                # 'go_backwards'").
                layer = keras.layers.Bidirectional(
                    layer, backward_layer=make(size, sequences, f"backward_{cell}_{i}", go_backwards=True),
                    name=f"bidirectional_{cell}_{i}")
            self.recurrent_layers.append(layer)

    def build(self, input_shape):
        shape = tuple(input_shape)
        for layer in self.recurrent_layers:
            layer.build(shape)
            out = layer.compute_output_shape(shape)
            shape = tuple(out[0] if self.return_state else out)
        self.built = True

    def call(self, inputs, mask=None, training=None, initial_state=None):
        x, states = inputs, []
        per_layer = 0 if initial_state is None else self.num_states // len(self.recurrent_layers)
        fusion = active_fusion()  # an exporter tracing for a runtime's fused ops
        for i, layer in enumerate(self.recurrent_layers):
            if fusion is not None and initial_state is None and not self.return_state and not training:
                fused = fused_call(layer, x, mask, fusion)
                if fused is not None:
                    x = fused
                    continue
            start = None if initial_state is None else list(initial_state[i * per_layer:(i + 1) * per_layer])
            out = layer(x, mask=mask, training=training, initial_state=start)
            if self.return_state:
                x, *layer_states = out
                states.extend(layer_states)
            else:
                x = out
        return (x, *states) if self.return_state else x

    def compute_mask(self, inputs, mask=None):
        if not self.return_sequences:
            return None
        return [mask] + [None] * (self.num_states) if self.return_state else mask

    @property
    def num_states(self) -> int:
        sizes = (self.recurrent_layers[0].forward_layer.cell.state_size if self.bidirectional
                 else self.recurrent_layers[0].cell.state_size)
        per_layer = len(sizes) if isinstance(sizes, (list, tuple)) else 1  # Keras's GRUCell: an int
        return per_layer * len(self.units) * (2 if self.bidirectional else 1)

    def compute_output_shape(self, input_shape):
        shape = tuple(input_shape)
        states = []
        for layer in self.recurrent_layers:
            out = layer.compute_output_shape(shape)
            if self.return_state:
                shape, *layer_states = out
                shape = tuple(shape)
                states.extend(tuple(s) for s in layer_states)
            else:
                shape = tuple(out)
        return (shape, *states) if self.return_state else shape

    def get_config(self):
        return {**super().get_config(), "cell": self.cell, "units": self.units, "bidirectional": self.bidirectional,
                "return_sequences": self.return_sequences, "return_state": self.return_state,
                "prefer_fused": self.prefer_fused, "cell_options": self.cell_options, **self.dropout_options,
                "seed": self.seed, "native": self.native}
