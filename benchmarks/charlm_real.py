"""The character language model on a real text, trained within a time budget, next to interpolated
modified Kneser-Ney n-gram models on the same split.

    python -m benchmarks.charlm_real FILE_OR_DIR [--minutes 30] [--orders 5,6,7] [--split test|dev]
                                     [--set model.units=256 ...]

FILE_OR_DIR is one UTF-8 text file (dev and test are its last 5% each, cut from the end: the
app's default `data.dev_fraction` / `data.test_fraction`) or a directory with `train.txt`,
`valid.txt` and `test.txt`. Trains the app with its defaults (and `--set` overrides: tune them
with `--split dev`, never on test) until the budget would be passed at the end of the next epoch,
and prints bits per character of:

- the unigram model (train's character frequencies);
- Kneser-Ney n-gram models of each order in --orders (`benchmarks/kneser_ney.py`), the best order
  on dev marked;
- our model (`apps/charlm.py`), over the whole text with carried state.
"""

from __future__ import annotations

import math
import time

import keras

from apps.charlm import CharLM
from benchmarks.kneser_ney import KneserNey
from benchmarks.real_data import config_and_splits, parse_args, print_table, train_ours
from pipelines.char_preprocessor import unigram_entropy


class TimeBudget(keras.callbacks.Callback):
    """Stops training at the end of an epoch when one more epoch (as long as the last one) would
    pass `minutes`, counted from the start of training."""

    def __init__(self, minutes: float):
        super().__init__()
        self.budget = 60.0 * minutes

    def on_train_begin(self, logs=None):
        self.started = self.epoch_started = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
        if now - self.started + (now - self.epoch_started) > self.budget:
            print(f"time budget: stopping after epoch {epoch + 1} ({(now - self.started) / 60:.1f} of "
                  f"{self.budget / 60:.0f} minutes)", flush=True)
            self.model.stop_training = True


def _baselines(train: str, dev: str, scored: str, orders: list[int]) -> dict[str, dict]:
    results = {}
    start = time.perf_counter()
    counts = {c: train.count(c) for c in set(train)}
    total = len(train)
    unseen = 1.0 / (total + len(counts) + 1)
    bits = -sum(math.log2(counts[c] / total * (1 - unseen) if c in counts else unseen) for c in scored) / len(scored)
    results["unigram (train frequencies)"] = {"bpc": bits, "seconds": time.perf_counter() - start}
    best = None
    for order in orders:
        start = time.perf_counter()
        model = KneserNey(train, order)
        dev_bits = model.bits(dev, history=train[-order:])
        history = train[-order:] if scored is dev else dev[-order:]
        bpc = dev_bits if scored is dev else model.bits(scored, history=history)
        results[f"Kneser-Ney {order}-gram"] = {"bpc": bpc, "dev_bpc": dev_bits, "seconds": time.perf_counter() - start}
        print(f"Kneser-Ney {order}-gram: dev {dev_bits:.4f} bpc", flush=True)
        if best is None or dev_bits < results[best]["dev_bpc"]:
            best = f"Kneser-Ney {order}-gram"
    results[best + " (best on dev)"] = results.pop(best)
    return results


def main(argv=None) -> None:
    def extra(parser):
        parser.add_argument("--minutes", type=float, default=30.0, help="training time budget (default: 30)")
        parser.add_argument("--orders", default="5,6,7", help="Kneser-Ney orders (default: 5,6,7)")

    args = parse_args(__doc__, "a UTF-8 text file, or a directory with train.txt, valid.txt, test.txt", argv, extra)
    app = CharLM()
    config, splits = config_and_splits(app, args)
    train, dev, scored = ("".join(d.text for d in splits[s]) for s in ("train", "dev", args.split))
    print(f"{args.data}: train {len(train):,}, dev {len(dev):,}, {args.split} {len(scored):,} characters; "
          f"unigram entropy of train {unigram_entropy([train]):.3f} bits", flush=True)
    results = {} if args.no_baselines else _baselines(train, dev, scored if args.split == "test" else dev,
                                                       [int(o) for o in args.orders.split(",")])
    name, ours = train_ours(app, config, args, callbacks=[TimeBudget(args.minutes)])
    results[f"{name}, {args.minutes:g} min budget"] = ours
    print(f"\n{args.split} split of {args.data}:")
    print_table(results, {"bpc": "bpc", "perplexity": "perplexity per character"})


if __name__ == "__main__":
    main()
