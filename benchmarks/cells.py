"""Training speed of every cell against the built-in `keras.layers.LSTM`.

Batch 64, length 100 (a quarter of the rows padded to half length, masked), input 128, hidden
256; tokens per second of `Model.fit` steps (the median step after warm-up), as a ratio to
`keras.layers.LSTM` compiled as Keras compiles it by default, measured in the same run (each
variant in its own process, alternating, medians of rounds).

Our cells run in `layers.Recurrent` under `jit_compile=True`, as the project runs custom cells;
`+xla` / `-xla` variants show the built-in with XLA and our LSTM without it, for comparison.
PyTorch's `nn.LSTM` is added where torch is installed.

    python -m benchmarks.cells [--rounds 3] [--steps 20]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import time

BATCH, LENGTH, FEATURES, UNITS = 64, 100, 128, 256
REFERENCE = "keras.LSTM"
KERAS_VARIANTS = ["keras.LSTM", "keras.LSTM+xla", "keras.RNN(LSTMCell)", "lstm-xla", "lstm", "peephole_lstm",
                  "cifg_lstm", "gru", "elman", "irnn", "urnn", "scrn"]


def _data(np):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(BATCH, LENGTH, FEATURES)).astype("float32")
    x[: BATCH // 4, LENGTH // 2:] = 0.0  # padding, masked by Masking
    return x, rng.normal(size=(BATCH, 1)).astype("float32")


def _keras_tokens_per_second(variant: str, steps: int) -> float:
    import keras
    import numpy as np
    import tensorflow as tf

    from layers import cells
    from layers.recurrent import Recurrent

    jit = "auto"
    if variant.startswith("keras.LSTM"):
        rnn, jit = keras.layers.LSTM(UNITS), variant.endswith("+xla") or "auto"
    elif variant == "keras.RNN(LSTMCell)":
        rnn = keras.layers.RNN(keras.layers.LSTMCell(UNITS))
    else:
        rnn, jit = Recurrent(cells.get(variant.removesuffix("-xla"), UNITS)), not variant.endswith("-xla")
    model = keras.Sequential([keras.Input((LENGTH, FEATURES)), keras.layers.Masking(0.0), rnn, keras.layers.Dense(1)])
    model.compile(keras.optimizers.Adam(1e-3), "mse", jit_compile=jit)
    x, y = _data(np)
    ds = tf.data.Dataset.from_tensors((x, y)).repeat().prefetch(2)
    model.fit(ds, steps_per_epoch=3, epochs=1, verbose=0)  # trace and warm up
    durations = []

    class StepTimes(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            self.start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            durations.append(time.perf_counter() - self.start)

    model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0, callbacks=[StepTimes()])
    return BATCH * LENGTH / statistics.median(durations)


def _torch_tokens_per_second(steps: int) -> float:
    import numpy as np
    import torch

    x, y = (torch.from_numpy(a) for a in _data(np))
    lengths = torch.full((BATCH,), LENGTH)
    lengths[: BATCH // 4] = LENGTH // 2
    lstm, head = torch.nn.LSTM(FEATURES, UNITS, batch_first=True), torch.nn.Linear(UNITS, 1)
    optimizer = torch.optim.Adam([*lstm.parameters(), *head.parameters()], 1e-3)

    def step():
        packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        _, (h, _) = lstm(packed)
        loss = torch.nn.functional.mse_loss(head(h[-1]), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    for _ in range(3):
        step()
    durations = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        durations.append(time.perf_counter() - start)
    return BATCH * LENGTH / statistics.median(durations)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--variants", nargs="*", default=None)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        speed = (_torch_tokens_per_second(args.steps) if args.child == "torch.nn.LSTM"
                 else _keras_tokens_per_second(args.child, args.steps))
        print(json.dumps({"tokens_per_second": speed}))
        return

    from benchmarks.common import median, rounds

    variants = args.variants or list(KERAS_VARIANTS)
    if REFERENCE not in variants:
        variants.insert(0, REFERENCE)
    if args.variants is None and importlib.util.find_spec("torch") is not None:
        variants.append("torch.nn.LSTM")
    results = rounds("benchmarks.cells", variants, args.rounds, ["--steps", str(args.steps)], "tokens_per_second")
    reference = median(results[REFERENCE])
    lstm = median(results.get("lstm", []))
    print(f"\ntraining tokens/s, batch {BATCH}, length {LENGTH}, input {FEATURES}, hidden {UNITS}, "
          f"masked; medians of {args.rounds} rounds")
    print(f"{'variant':<22} {'tokens/s':>10} {'vs keras.LSTM':>14} {'vs lstm':>8}")
    for variant in variants:
        speed = median(results[variant])
        print(f"{variant:<22} {speed:>10.0f} {speed / reference:>13.2f}x {speed / lstm:>7.2f}x")


if __name__ == "__main__":
    main()
