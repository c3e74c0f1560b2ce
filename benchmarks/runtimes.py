"""Inference speed of a sentiment classifier in each runtime, against the Keras model.

Latency at batch 1 and throughput at batch 64 (sequences of full length, no padding) for the
Keras model (a `tf.function` call, the reference; and `model.predict`), the SavedModel,
onnxruntime with the recurrent layers as its fused `LSTM` nodes (`onnx`, the default export) and
as tf2onnx's `Loop`s (`onnx.loop`, `export --no-fused`), and the LiteRT interpreter with the fused
sequence-LSTM op (`tflite`) and with `WHILE` loops (`tflite.loop`) (fixed batch 1: 64 calls for a
batch of 64). For a unidirectional and a bidirectional LSTM classifier (`--units`, `--length`),
with one thread and with all (`--threads`). Each runtime runs in its own process, alternating,
medians of rounds; sizes from `parity.json`.

    python -m benchmarks.runtimes [--units 128] [--length 50] [--rounds 3] [--models uni,bi] [--threads 1,0]

The models are trained for one epoch on synthetic data first: speed does not depend on the weights.
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


def _measure(runtime: str, run: str, export_dir: str, repeats: int, threads: int) -> dict:
    import numpy as np
    import tensorflow as tf

    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    assets = json.loads((pathlib.Path(export_dir) / "assets.json").read_text())
    length = assets["max_length"]
    rng = np.random.default_rng(0)
    batches = {size: rng.integers(2, len(assets["vocabulary"]), size=(size, length)).astype("int32")
               for size in (1, 64)}
    if runtime.startswith("keras"):
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

        runner = load_runner(export_dir, runtime.split(".")[0], threads=threads or None)
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


def _prepare(work: pathlib.Path, name: str, bidirectional: bool, units: int, length: int) -> tuple[str, str, str]:
    """A trained run and its fused and loop exports."""
    from apps.config import replace
    from apps.sentiment import Sentiment, SentimentConfig

    app = Sentiment()
    run, fused, loops = (str(work / f"{name}_{part}") for part in ("run", "export", "export_loop"))
    config = replace(SentimentConfig(), **{"data.source": "synthetic?size=2000", "train.epochs": 1,
                                           "model.units": units, "model.bidirectional": bidirectional,
                                           # the recurrent layer and its frame only
                                           "model.char_features": False, "model.ngrams": 0,
                                           "data.max_length": length})
    app.train(config, run)
    app.export(run, fused, ["savedmodel", "onnx", "tflite"])
    app.export(run, loops, ["onnx", "tflite"], fused=False)
    return run, fused, loops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--units", type=int, default=128)
    parser.add_argument("--length", type=int, default=50, help="tokens per input (the export's max_length)")
    parser.add_argument("--models", default="uni,bi", help="uni and/or bi(directional)")
    parser.add_argument("--threads", default="1,0", help="thread counts to measure (0: the runtime's default, all)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=100, help="batch-1 calls timed per round")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        runtime, run, export_dir, threads = args.child
        print(json.dumps(_measure(runtime, run, export_dir, args.repeats, int(threads))))
        return

    from benchmarks.common import median, run_variant

    work = pathlib.Path(tempfile.mkdtemp(prefix="rnnapps-runtimes-"))
    for name in args.models.split(","):
        run, export_dir, loop_dir = _prepare(work, name, name == "bi", args.units, args.length)
        sizes = {k: v["bytes"] for k, v in json.loads((pathlib.Path(export_dir) / "parity.json").read_text()).items()}
        loops = json.loads((pathlib.Path(loop_dir) / "parity.json").read_text())
        sizes.update({"onnx.loop": loops["onnx"]["bytes"], "tflite.loop": loops["tflite"]["bytes"]})
        sizes["keras"] = sizes["keras.predict"] = (pathlib.Path(run) / "model.keras").stat().st_size
        for threads in (int(t) for t in args.threads.split(",")):
            results = {r: {"latency_ms": [], "throughput": []} for r in RUNTIMES}
            for round_ in range(args.rounds):
                order = RUNTIMES[round_ % len(RUNTIMES):] + RUNTIMES[: round_ % len(RUNTIMES)]
                for runtime in order:
                    directory = loop_dir if runtime.endswith(".loop") else export_dir
                    out = run_variant("benchmarks.runtimes", runtime,
                                      [run, directory, str(threads), "--repeats", str(args.repeats)])
                    if "error" in out:
                        print(f"  {runtime}: {out['error']}")
                        continue
                    for key in out:
                        results[runtime][key].append(out[key])
            ref = {k: median(v) for k, v in results[REFERENCE].items()}
            print(f"\n{'bidirectional' if name == 'bi' else 'unidirectional'} LSTM({args.units}) classifier, inputs "
                  f"of length {args.length}, {threads or 'all'} thread(s); medians of {args.rounds} rounds; "
                  "ratios: speed relative to the Keras tf.function call")
            print(f"{'runtime':<14} {'batch-1 ms':>10} {'speed':>7} {'batch-64 seq/s':>15} {'speed':>7} {'size MB':>8}")
            for runtime in RUNTIMES:
                latency, throughput = median(results[runtime]["latency_ms"]), median(results[runtime]["throughput"])
                print(f"{runtime:<14} {latency:>10.2f} {ref['latency_ms'] / latency:>6.2f}x {throughput:>15.0f} "
                      f"{throughput / ref['throughput']:>6.2f}x {sizes.get(runtime, 0) / 1e6:>8.2f}", flush=True)


if __name__ == "__main__":
    main()
