"""The captioning app on a real captioned-image corpus, next to a classical baseline on the same split.

    python -m benchmarks.captioning_real DATA_DIR [--set train.epochs=10 ...] [--split test|dev] [--beam 3]

DATA_DIR holds `images/` and `train.tsv`, `dev.tsv`, `test.tsv` (`image_file<TAB>caption`, the
app's local format; `python -m benchmarks.prepare_captions captions.txt images/ DATA_DIR` makes them
from a Flickr8k-style captions file). Trains the app with its defaults (and `--set` overrides:
tune them with `--split dev`, never on test) and prints sacreBLEU's BLEU-4 (every caption of an
image a reference) of:

- the nearest training image's caption: the training image closest in 16 x 16 RGB thumbnails
  (Euclidean), and of its captions the one that agrees most with the others (sentence BLEU):
  caption retrieval, the classical baseline (Ordonez et al., 2011, "Im2Text");
- our model (`apps/captioning.py`).
"""

from __future__ import annotations

import time

import numpy as np

from apps.captioning import Captioning
from apps.seq2seq import caption_scores
from benchmarks.real_data import config_and_splits, parse_args, print_table, train_ours
from pipelines.caption_preprocessor import image_dataset


def thumbnails(examples, size: int = 16) -> np.ndarray:
    """(n, size * size * 3) float thumbnails, decoded by the app's own pipeline."""
    return np.concatenate([batch.numpy().reshape(len(batch), -1) for batch in image_dataset(examples, size).batch(256)])


def consensus(captions: tuple[str, ...]) -> str:
    """The caption with the highest sentence BLEU against the image's other captions."""
    import sacrebleu

    if len(captions) == 1:
        return captions[0]
    return max(captions, key=lambda c: sacrebleu.sentence_bleu(c, [o for o in captions if o is not c]).score)


def main(argv=None) -> None:
    args = parse_args(__doc__, "directory with images/ and train.tsv, dev.tsv, test.tsv", argv,
                      extra=lambda p: p.add_argument("--beam", type=int, default=0, help="beam width (0: greedy)"))
    app = Captioning()
    config, splits = config_and_splits(app, args)
    print(f"{args.data}: " + ", ".join(f"{name} {len(splits[name])} images, "
                                       f"{sum(len(e.captions) for e in splits[name])} captions"
                                       for name in ("train", "dev", "test")), flush=True)
    scored = splits[args.split]
    results = {}
    if not args.no_baselines:
        start = time.perf_counter()
        train = splits["train"]
        known, queries = thumbnails(train), thumbnails(scored)
        nearest = [int(((known - q) ** 2).sum(1).argmin()) for q in queries]
        hypotheses = [consensus(train[j].captions) for j in nearest]
        results["nearest training image's caption (16x16 thumbnails)"] = {
            **caption_scores(hypotheses, [e.captions for e in scored]), "seconds": time.perf_counter() - start}
        print(f"baseline done: {results}", flush=True)
    name, ours = train_ours(app, config, args, beam=args.beam)
    results[name + (f" beam {args.beam}" if args.beam else "")] = ours
    print(f"\n{args.split} split, {ours['examples']} images:\n")
    print_table(results, {"bleu4": "BLEU-4"})


if __name__ == "__main__":
    main()
