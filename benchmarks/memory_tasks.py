"""Cells x memory tasks: how well each cell learns each task within a fixed budget of updates.

Tasks (generators in `pipelines/memory_tasks.py`):
- adding problem at length 200 (MSE; predicting 1 scores ~0.167)
- copying memory with a delay of 100 (cross-entropy per step; the memoryless baseline is
  10 log 8 / 120 ~ 0.173)
- binary addition trained on 8-bit numbers, scored on 16-bit ones (share of exact sums)
- parity trained on 10 bits, scored on 40-bit strings (share right at every step)

    python -m benchmarks.memory_tasks [--cells lstm irnn urnn] [--tasks adding copying] [--steps 2000]

Each (cell, task) runs in its own process; the table prints the score and the baseline.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time

TASKS = ("adding", "copying", "binary_addition", "parity")
CELLS = ("lstm", "gru", "irnn", "urnn", "scrn", "elman")
BATCH = 32


def _train(cell: str, task: str, steps: int, seed: int) -> dict:
    import keras
    import numpy as np

    from layers import cells
    from layers.recurrent import Recurrent
    from pipelines import memory_tasks as tasks

    keras.utils.set_random_seed(seed)
    n = steps * BATCH
    units = 128
    optimizer = keras.optimizers.RMSprop(1e-3, global_clipnorm=1.0) if cell in ("irnn", "urnn") \
        else keras.optimizers.Adam(1e-3, global_clipnorm=1.0)
    if task == "adding":
        x, y = tasks.adding_problem(n, 200, seed)
        xt, yt = tasks.adding_problem(1000, 200, seed + 1)
        model = keras.Sequential([keras.Input((None, 2)), Recurrent(cells.get(cell, units)), keras.layers.Dense(1)])
        model.compile(optimizer, "mse")
        model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
        return {"score": model.evaluate(xt, yt, verbose=0), "baseline": float(np.mean((yt - 1) ** 2)),
                "metric": "MSE"}
    if task == "copying":
        x, y = tasks.copying_memory(n, 100, seed)
        xt, yt = tasks.copying_memory(500, 100, seed + 1)
        model = keras.Sequential([
            keras.Input((None,), dtype="int32"),
            keras.layers.Embedding(10, 10, embeddings_initializer="identity", trainable=False),  # one-hot
            Recurrent(cells.get(cell, units), return_sequences=True), keras.layers.Dense(9)])
        model.compile(optimizer, keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
        return {"score": model.evaluate(xt, yt, verbose=0), "baseline": 10 * math.log(8) / 120,
                "metric": "cross-entropy"}
    if task == "binary_addition":
        x, y, _, _ = tasks.binary_addition(n, 8, seed)
        xt, _, a, b = tasks.binary_addition(1000, 16, seed + 1)
        model = keras.Sequential([keras.Input((None, 2)), Recurrent(cells.get(cell, 16), return_sequences=True),
                                  keras.layers.Dense(1)])
        model.compile(keras.optimizers.Adam(1e-2, global_clipnorm=1.0), keras.losses.BinaryCrossentropy(from_logits=True))
        model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
        sums = tasks.from_bits((model.predict(xt, verbose=0)[..., 0] > 0).astype("float32"))
        return {"score": float(np.mean(sums == a + b)), "baseline": 0.0, "metric": "exact 16-bit sums"}
    x, y = tasks.parity(n, 10, seed)
    xt, yt = tasks.parity(1000, 40, seed + 1)
    model = keras.Sequential([keras.Input((None, 1)), Recurrent(cells.get(cell, 16), return_sequences=True),
                              keras.layers.Dense(1)])
    model.compile(keras.optimizers.Adam(1e-2, global_clipnorm=1.0), keras.losses.BinaryCrossentropy(from_logits=True))
    model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
    right = ((model.predict(xt, verbose=0)[..., 0] > 0) == yt[..., 0].astype(bool)).all(axis=1)
    return {"score": float(right.mean()), "baseline": 0.5 ** 40, "metric": "40-bit strings right"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", nargs="*", default=list(CELLS))
    parser.add_argument("--tasks", nargs="*", default=list(TASKS), choices=TASKS)
    parser.add_argument("--steps", type=int, default=2000, help="updates of batch 32 per (cell, task)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        start = time.perf_counter()
        result = _train(args.child[0], args.child[1], args.steps, args.seed)
        print(json.dumps({**result, "seconds": time.perf_counter() - start}))
        return
    rows = {}
    for task in args.tasks:
        for cell in args.cells:
            out = subprocess.run([sys.executable, "-m", "benchmarks.memory_tasks", "--child", cell, task,
                                  "--steps", str(args.steps), "--seed", str(args.seed)], capture_output=True, text=True)
            if out.returncode:
                rows[cell, task] = {"error": (out.stderr.strip().splitlines() or ["failed"])[-1]}
            else:
                rows[cell, task] = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"  {cell:<8} {task:<16} {rows[cell, task]}", file=sys.stderr, flush=True)
    print(f"\n{args.steps} updates of batch {BATCH} per cell and task; score (baseline)")
    print(f"{'cell':<8}" + "".join(f"{task:>26}" for task in args.tasks))
    for cell in args.cells:
        cells_text = []
        for task in args.tasks:
            r = rows[cell, task]
            cells_text.append("error" if "error" in r else f"{r['score']:.4f} ({r['baseline']:.3f})")
        print(f"{cell:<8}" + "".join(f"{text:>26}" for text in cells_text))
    metrics = {task: next((r["metric"] for (c, t), r in rows.items() if t == task and "metric" in r), "")
               for task in args.tasks}
    print("metrics: " + "; ".join(f"{t}: {m}" for t, m in metrics.items()))


if __name__ == "__main__":
    main()
