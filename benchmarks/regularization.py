"""Dropout and recurrent batch normalization on a character language model.

The same model (embedding 64 -> one recurrent layer -> softmax over characters), trained with
truncated BPTT (`pipelines.streams` + `layers.CarriedState`) for the same number of updates,
with no dropout, naive dropout (Zaremba et al.: a new mask per step on inputs and outputs),
variational dropout (Gal & Ghahramani: one mask per sequence on inputs, outputs and the
recurrent state) and DropConnect (AWD-LSTM: the recurrent matrix), each with `lstm` and
`bn_lstm`. Prints validation bits per character (held-out documents, state carried as in
training) and training speed as a ratio to `lstm` without dropout, measured in the same run
(each variant in its own process); the training BPC (first batches of the training streams,
no dropout) beside it shows how far each variant fits its training text.

    python -m benchmarks.regularization [--text FILE] [--updates 600] [--units 256]

Without `--text` it uses the built-in corpus (Python's standard-library documentation,
`pipelines.char_corpus`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from benchmarks.common import run_variant

DROPOUT = {
    "none": {},
    "naive": {"dropout": 0.25, "output_dropout": 0.25, "dropout_mode": "naive"},
    "variational": {"dropout": 0.25, "recurrent_dropout": 0.25, "output_dropout": 0.25},
    "dropconnect": {"dropout": 0.25, "output_dropout": 0.25, "weight_dropout": 0.5},
}
CELLS = ("lstm", "bn_lstm")
REFERENCE = "lstm/none"


def _corpus(text_path: str | None, bptt: int, batch: int):
    from pipelines.char_corpus import builtin_documents, char_vocabulary, encode_documents, read_documents
    from pipelines.streams import stream_layout

    documents = read_documents(text_path) if text_path else builtin_documents()
    if len(documents) >= 10:  # a tenth of the documents for validation
        cut = len(documents) // 10
        train_docs, val_docs = documents[cut:], documents[:cut]
    else:  # few documents: the last tenth of each
        cuts = [len(d) * 9 // 10 for d in documents]
        train_docs, val_docs = [d[:c] for d, c in zip(documents, cuts)], [d[c:] for d, c in zip(documents, cuts)]
    vocab = char_vocabulary(train_docs, min_count=5)

    def layout(docs, seed):
        ids = [d for d in encode_documents(docs, vocab) if len(d) > 1]
        return stream_layout([d[:-1] for d in ids], batch, bptt, targets=[d[1:] for d in ids], seed=seed)

    return vocab, layout(train_docs, 0), layout(val_docs, None)


def _child(variant: str, args) -> dict:
    import keras

    from layers.bits_per_character import BitsPerCharacter
    from layers.char_language_model import char_language_model
    from layers.clipping import ClippedAdam

    keras.utils.set_random_seed(0)
    cell, dropout = variant.split("/")
    vocab, train, val = _corpus(args.text, args.bptt, args.batch)
    options = {"max_steps": args.bptt} if cell == "bn_lstm" else {}
    model = char_language_model(len(vocab), [args.units], args.batch, cell, cell_options=options, seed=0,
                                **DROPOUT[dropout])
    model.compile(ClippedAdam(2e-3, clipping="global_norm", clip_threshold=1.0),  # skips non-finite steps
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=True)

    times = []

    class Clock(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            times.append(time.perf_counter())

    model.fit(train.dataset().repeat(), steps_per_epoch=args.updates, epochs=1, verbose=0, callbacks=[Clock()])
    warm = 10  # compilation and warm-up
    tokens_per_batch = float(train.weights.mean()) * args.batch * args.bptt
    speed = tokens_per_batch * (len(times) - 1 - warm) / (times[-1] - times[warm])

    def bits_per_character(layout, batches):
        """In stream order from a batch where every row starts a document, state carried."""
        metric = BitsPerCharacter()
        for k in range(batches):
            logits = model({"tokens": layout.inputs[k], "reset": layout.reset[k]}, training=False)
            metric.update_state(layout.targets[k], logits, layout.weights[k])
        return float(metric.result()), float(metric.count.numpy())

    bpc, total = bits_per_character(val, len(val.inputs))
    train_bpc, _ = bits_per_character(train, min(len(train.inputs), len(val.inputs)))  # as many batches
    return {"bpc": bpc, "train_bpc": train_bpc, "tokens_per_second": speed,
            "skipped_steps": int(model.optimizer.skipped_steps.numpy()),
            "train_chars": int(train.weights.sum()), "val_chars": int(total), "vocab": len(vocab)}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--text", help="a UTF-8 text file (paragraphs are documents); default: built-in corpus")
    parser.add_argument("--updates", type=int, default=600, help="training steps per variant")
    parser.add_argument("--units", type=int, default=256)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--bptt", type=int, default=64, help="truncated BPTT length (characters)")
    parser.add_argument("--variants", nargs="*", default=[f"{c}/{d}" for c in CELLS for d in DROPOUT])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    shared = ["--updates", str(args.updates), "--units", str(args.units), "--batch", str(args.batch),
              "--bptt", str(args.bptt)] + (["--text", args.text] if args.text else [])
    if args.child:
        print(json.dumps(_child(args.child, args)))
        return
    results = {}
    for variant in args.variants:
        results[variant] = run_variant("benchmarks.regularization", variant, shared)
        print(f"  {variant}: {results[variant]}", file=sys.stderr, flush=True)
    first = next((r for r in results.values() if "error" not in r), None)
    if first is None:
        raise SystemExit("every variant failed (their errors are above)")
    print(f"\n{args.updates} updates of batch {args.batch} x {args.bptt} characters, hidden {args.units}; "
          f"{first['train_chars']} training / {first['val_chars']} validation characters, {first['vocab']} symbols\n")
    reference = results.get(REFERENCE, {}).get("tokens_per_second", float("nan"))
    print("| cell | dropout | val BPC | train BPC | train chars/s | speed vs lstm/none | skipped steps |")
    print("|---|---|---|---|---|---|---|")
    for variant, r in results.items():
        cell, dropout = variant.split("/")
        if "error" in r:
            print(f"| {cell} | {dropout} | failed: {r['error']} | | | | |")
            continue
        print(f"| {cell} | {dropout} | {r['bpc']:.3f} | {r['train_bpc']:.3f} | {r['tokens_per_second']:.0f} | "
              f"{r['tokens_per_second'] / reference:.2f}x | {r['skipped_steps']} |")


if __name__ == "__main__":
    main()
