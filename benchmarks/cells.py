"""Training speed of every cell against the built-in `keras.layers.LSTM`.

Batch 64, length 100 (a quarter of the rows padded to half length, masked), input 128, hidden
256; tokens per second of `Model.fit` steps (the median step after warm-up), as a ratio to
`keras.layers.LSTM` compiled as Keras compiles it by default, measured in the same run (each
variant in its own process, alternating, medians of rounds).

Our cells run in `layers.Recurrent` under `jit_compile=True`, as the project runs custom cells;
`+xla` / `-xla` variants show the built-in with XLA and our LSTM without it, `lstm-autodiff`
our LSTM with the recurrent kernel's gradient left to autodiff (per step) instead of
`layers.batched_gradient` (one matmul per sequence), for comparison; `lstm-native`,
`layernorm_lstm-native` and `bn_lstm-native` those cells with `native=True` (`layers.native_lstm`:
MKL's packed GEMM, outside XLA; where the `native` extra is installed). PyTorch's `nn.LSTM` is added
where torch is installed (an optional extra, not a dependency): `torch.LSTM` on the padded batch
without a mask, `torch.LSTM+packed` with `pack_padded_sequence` (what masking costs there), one
intra-op thread per core as the others.

Each variant also reports GFLOP/s: the matmul work of a training step (forward, and twice that
backward: 6 * batch * length * (features + units) * gates * units multiply-adds counted as 2
FLOPs each, for the recurrent kernels' shapes), and the share of this CPU's float32 matmul
peak, measured in the same run as the best of TensorFlow's and NumPy's 2048 x 2048 matmul.

    python -m benchmarks.cells [--rounds 3] [--steps 20] [--variants lstm torch.LSTM]
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
KERAS_VARIANTS = ["keras.LSTM", "keras.LSTM+xla", "keras.RNN(LSTMCell)", "lstm-xla", "lstm-autodiff", "lstm",
                  "lstm-native", "layernorm_lstm-native", "bn_lstm-native",
                  "peephole_lstm", "cifg_lstm", "layernorm_lstm", "bn_lstm", "gru", "gru+reset_after", "elman", "irnn",
                  "urnn", "scrn"]
TORCH_VARIANTS = ["torch.LSTM", "torch.LSTM+packed"]
PEAK = "matmul-peak"
# Gate blocks of each variant's recurrent kernel (units x blocks * units): its FLOPs per token.
BLOCKS = {"cifg_lstm": 3, "gru": 3, "gru+reset_after": 3, "elman": 1, "irnn": 1, "urnn": 1, "scrn": 1}


def train_flops_per_token(variant: str) -> float:
    """Matmul FLOPs of one token's forward and backward pass: 3 x 2 x (features + units) x gates."""
    return 6.0 * (FEATURES + UNITS) * BLOCKS.get(variant, 4) * UNITS


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
    elif variant == "gru+reset_after":
        rnn, jit = Recurrent(cells.get("gru", UNITS, reset_after=True)), True
    elif variant.endswith("-native"):
        rnn, jit = Recurrent(cells.get(variant.removesuffix("-native"), UNITS), native=True), False
    else:
        name = variant.removesuffix("-xla").removesuffix("-autodiff")
        rnn = Recurrent(cells.get(name, UNITS), batched_gradient=not variant.endswith("-autodiff"))
        jit = not variant.endswith("-xla")
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


def _torch_tokens_per_second(variant: str, steps: int) -> float:
    import numpy as np
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    x, y = (torch.from_numpy(a) for a in _data(np))
    lengths = torch.full((BATCH,), LENGTH)
    lengths[: BATCH // 4] = LENGTH // 2
    lstm, head = torch.nn.LSTM(FEATURES, UNITS, batch_first=True), torch.nn.Linear(UNITS, 1)
    optimizer = torch.optim.Adam([*lstm.parameters(), *head.parameters()], 1e-3)

    def step():
        packed = (torch.nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
                  if variant.endswith("+packed") else x)
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


def _matmul_peak_gflops() -> float:
    """float32 GFLOP/s of a 2048 x 2048 matmul, the best of TensorFlow's and NumPy's."""
    import numpy as np
    import tensorflow as tf

    from benchmarks.common import best_time

    n = 2048
    a = np.random.default_rng(0).normal(size=(n, n)).astype("float32")
    best = 0.0
    for matmul in (np.matmul, lambda p, q: tf.matmul(p, q).numpy()):
        p, q = (tf.constant(a), tf.constant(a)) if matmul is not np.matmul else (a, a)
        matmul(p, q)
        best = max(best, 2 * n ** 3 / best_time(lambda: matmul(p, q), 5) / 1e9)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--variants", nargs="*", default=None)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        if args.child == PEAK:
            print(json.dumps({"tokens_per_second": _matmul_peak_gflops()}))  # the key rounds() reads
            return
        speed = (_torch_tokens_per_second(args.child, args.steps) if args.child.startswith("torch.")
                 else _keras_tokens_per_second(args.child, args.steps))
        print(json.dumps({"tokens_per_second": speed}))
        return

    from benchmarks.common import median, rounds

    variants = args.variants or list(KERAS_VARIANTS)
    if REFERENCE not in variants:
        variants.insert(0, REFERENCE)
    if args.variants is None and importlib.util.find_spec("torch") is not None:
        variants.extend(TORCH_VARIANTS)
    native = [v for v in variants if v.endswith("-native")]
    if native:
        from layers import native_lstm

        reason = native_lstm.unavailable_reason()  # builds it once, before the variants' processes
        if reason is not None:
            variants = [v for v in variants if v not in native]
            print(f"{', '.join(native)} left out: {reason}")
    results = rounds("benchmarks.cells", [*variants, PEAK], args.rounds, ["--steps", str(args.steps)],
                     "tokens_per_second")
    reference, peak = median(results[REFERENCE]), max(results[PEAK], default=float("nan"))  # the best: a peak
    lstm, torch_lstm = median(results.get("lstm", [])), median(results.get("torch.LSTM", []))
    print(f"\ntraining tokens/s, batch {BATCH}, length {LENGTH}, input {FEATURES}, hidden {UNITS}, "
          f"masked; medians of {args.rounds} rounds; float32 matmul peak {peak:.0f} GFLOP/s")
    print(f"{'variant':<22} {'tokens/s':>10} {'GFLOP/s':>8} {'of peak':>8} {'vs keras.LSTM':>14} {'vs lstm':>8} "
          f"{'vs torch.LSTM':>14}")
    for variant in variants:
        speed = median(results[variant])
        gflops = speed * train_flops_per_token(variant.removeprefix("torch.").removesuffix("-xla")
                                               .removesuffix("-autodiff").removesuffix("-native")) / 1e9
        print(f"{variant:<22} {speed:>10.0f} {gflops:>8.0f} {gflops / peak:>7.0%} {speed / reference:>13.2f}x "
              f"{speed / lstm:>7.2f}x {speed / torch_lstm:>13.2f}x")


if __name__ == "__main__":
    main()
