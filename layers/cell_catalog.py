"""The cells of `layers.cells` by name, with a line on each: plain data, no TensorFlow, so that
`rnnapps list` and `--help` can show them without loading TensorFlow (the CLI reads this file
alone; `layers.cells` pairs each name with its class)."""

DESCRIPTIONS = {
    "elman": "Elman RNN: h = tanh(W x + U h + b)",
    "lstm": "LSTM, gates [i, f, g, o], forget-gate bias 1 (forget_bias=)",
    "peephole_lstm": "LSTM with diagonal peepholes from c to i, f, o (Gers & Schmidhuber)",
    "cifg_lstm": "LSTM with coupled input-forget gate: c = f*c + (1-f)*g",
    "gru": "GRU (Cho et al.); reset_after= for the cuDNN variant, update_bias=",
    "irnn": "ReLU Elman cell, identity recurrent matrix, zero bias (Le et al.); recurrent_scale=",
    "urnn": "unitary evolution RNN: complex state, W = D3 R2 F^-1 D2 Pi R1 F D1, modReLU",
    "scrn": "structurally constrained RNN: slow context units s beside a fast layer (alpha=)",
    "layernorm_lstm": "LSTM with layer-normalised gate pre-activations and cell state (Ba et al.)",
    "bn_lstm": "LSTM with recurrent batch normalization, statistics per timestep up to max_steps (Cooijmans et "
               "al.); a layer with its own loop, not a Keras RNN cell",
}
