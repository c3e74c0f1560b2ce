"""Inference speed of one app (sentiment) in each runtime, against the Keras model.

Latency at batch 1 and throughput at batch 64 (sequences of the run's max_length), for the
Keras model (a `tf.function` call, the reference; and `model.predict`), the SavedModel,
onnxruntime with the recurrent layers as its fused `LSTM` nodes (`onnx`, the default export) and
as tf2onnx's `Loop`s (`onnx.loop`, `export --no-fused`), and the LiteRT interpreter with the fused
sequence-LSTM op (`tflite`) and with `WHILE` loops (`tflite.loop`) (fixed batch 1: 64 calls for a
batch of 64). Each
runtime runs in its own process, alternating, medians of rounds; sizes from `parity.json`.

    python -m benchmarks.runtimes [--run RUN] [--rounds 3]

Without --run, a sentiment model with the default config is trained on synthetic data first.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import tempfile
import time

RUNTIMES = ["keras", "keras.predict", "savedmodel", "onnx.loop", "onnx", "tflite.loop", "tflite"]
REFERENCE = "keras"


def _measure(runtime: str, run: str, export_dir: str, repeats: int) -> dict:
    import numpy as np

    assets = json.loads((pathlib.Path(export_dir) / "assets.json").read_text())
    length = assets["max_length"]
    rng = np.random.default_rng(0)
    batches = {size: rng.integers(2, len(assets["vocabulary"]), size=(size, length)).astype("int32")
               for size in (1, 64)}
    if runtime.startswith("keras"):
        import tensorflow as tf

        from apps.sentiment import Sentiment

        app = Sentiment()
        loaded = app.load(run)
        model = loaded.model
        if runtime == "keras":
            classifier = app.serving(loaded)
            call = lambda ids: classifier.numeric(tf.constant(ids))["probabilities"].numpy()  # noqa: E731
        else:
            call = lambda ids: model.predict(ids, verbose=0)  # noqa: E731
    else:
        from export.runtimes import load_runner

        runner = load_runner(export_dir, runtime.split(".")[0])
        call = lambda ids: runner(token_ids=ids)["probabilities"]  # noqa: E731
    result = {}
    for size, ids in batches.items():
        for _ in range(3):
            call(ids)  # warm up
        times = []
        for _ in range(repeats if size == 1 else max(repeats // 10, 3)):
            start = time.perf_counter()
            call(ids)
            times.append(time.perf_counter() - start)
        result[f"batch{size}"] = statistics.median(times)
    return {"latency_ms": 1000 * result["batch1"], "throughput": 64 / result["batch64"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", help="a finished sentiment run (default: train one)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=100, help="batch-1 calls timed per round")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        runtime, run, export_dir = args.child
        print(json.dumps(_measure(runtime, run, export_dir, args.repeats)))
        return

    from apps.sentiment import Sentiment, SentimentConfig
    from benchmarks.common import median, run_variant

    work = pathlib.Path(tempfile.mkdtemp(prefix="rnnapps-runtimes-"))
    run = args.run
    if run is None:
        run = str(work / "run")
        Sentiment().train(SentimentConfig(), run)
    export_dir = str(work / "export")
    Sentiment().export(run, export_dir, ["savedmodel", "onnx", "tflite"])
    loop_dir = str(work / "export_loop")
    Sentiment().export(run, loop_dir, ["onnx", "tflite"], fused=False)
    sizes = {k: v["bytes"] for k, v in json.loads((pathlib.Path(export_dir) / "parity.json").read_text()).items()}
    loops = json.loads((pathlib.Path(loop_dir) / "parity.json").read_text())
    sizes.update({"onnx.loop": loops["onnx"]["bytes"], "tflite.loop": loops["tflite"]["bytes"]})
    sizes["keras"] = sizes["keras.predict"] = (pathlib.Path(run) / "model.keras").stat().st_size

    results = {r: {"latency_ms": [], "throughput": []} for r in RUNTIMES}
    for round_ in range(args.rounds):
        order = RUNTIMES[round_ % len(RUNTIMES):] + RUNTIMES[: round_ % len(RUNTIMES)]
        for runtime in order:
            directory = loop_dir if runtime.endswith(".loop") else export_dir
            out = run_variant("benchmarks.runtimes", runtime, [run, directory, "--repeats", str(args.repeats)])
            if "error" in out:
                print(f"  {runtime}: {out['error']}")
                continue
            for key in out:
                results[runtime][key].append(out[key])
    ref = {k: median(v) for k, v in results[REFERENCE].items()}
    length = json.loads((pathlib.Path(export_dir) / "assets.json").read_text())["max_length"]
    print(f"\nsentiment model, inputs of length {length}; medians of {args.rounds} rounds; "
          "ratios: speed relative to the Keras tf.function call")
    print(f"{'runtime':<14} {'batch-1 ms':>10} {'speed':>7} {'batch-64 seq/s':>15} {'speed':>7} {'size MB':>8}")
    for runtime in RUNTIMES:
        latency, throughput = median(results[runtime]["latency_ms"]), median(results[runtime]["throughput"])
        print(f"{runtime:<14} {latency:>10.2f} {ref['latency_ms'] / latency:>6.2f}x {throughput:>15.0f} "
              f"{throughput / ref['throughput']:>6.2f}x {sizes.get(runtime, 0) / 1e6:>8.2f}")


if __name__ == "__main__":
    main()
