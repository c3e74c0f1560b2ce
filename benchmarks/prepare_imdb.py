"""Sentences of labeled movie reviews for pretraining the sentiment app (`train.init_from`).

    python -m benchmarks.prepare_imdb ACLIMDB_DIR OUT_DIR [--train-sentences 150000] [--dev-sentences 10000]

Reads the labeled reviews of the Large Movie Review Dataset (aclImdb, Maas et al. 2011: `train/pos`,
`train/neg`, `test/pos`, `test/neg`, one review per `.txt` file, the rating in the file name),
splits each review into sentences (a full stop, `!` or `?` followed by a space and a capital
letter or quote; `<br />` line breaks are boundaries too) and writes `train.tsv` (sentences of
the train reviews) and `dev.tsv` (of the test reviews) in the app's local format
(`text<TAB>label`), each sentence labeled with its review's polarity. Only reviews rated 1-2 or
9-10 of 10 are used (the clearest verdicts) and sentences of 4 to 50 words; a seeded sample of
each split is kept. The sentence labels are noisy (a positive review also describes the plot):
the set teaches a model what words and phrases of movie reviews lean which way, for a run that
another sentiment run starts from, not a benchmark of its own.
"""

from __future__ import annotations

import argparse
import pathlib
import random
import re

from benchmarks.common import write_tsv

_BOUNDARY = re.compile(r"<br\s*/?>|(?<=[.!?])\s+(?=[A-Z\"'(])")


def review_sentences(text: str, min_words: int = 4, max_words: int = 50) -> list[str]:
    """The sentences of one review with `min_words` to `max_words` words, whitespace normalised."""
    sentences = (" ".join(part.split()) for part in _BOUNDARY.split(text))
    return [s for s in sentences if min_words <= len(s.split()) <= max_words]


def labeled_sentences(split_dir: pathlib.Path) -> list[tuple[str, str]]:
    rows = []
    for label, folder in (("positive", "pos"), ("negative", "neg")):
        paths = sorted((split_dir / folder).glob("*.txt"))
        if not paths:
            raise SystemExit(f"{split_dir / folder}: no .txt reviews")
        for path in paths:
            rating = int(path.stem.rsplit("_", 1)[1])
            if rating in (3, 4, 7, 8):
                continue
            text = path.read_text(encoding="utf-8", errors="replace")
            rows.extend((sentence, label) for sentence in review_sentences(text))
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("aclimdb", help="the aclImdb directory (with train/ and test/)")
    parser.add_argument("out")
    parser.add_argument("--train-sentences", type=int, default=150000)
    parser.add_argument("--dev-sentences", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    root, out = pathlib.Path(args.aclimdb), pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)
    for split, source, size in (("train", "train", args.train_sentences), ("dev", "test", args.dev_sentences)):
        rows = labeled_sentences(root / source)
        kept = rng.sample(rows, min(size, len(rows)))
        write_tsv(out / f"{split}.tsv", kept)
        positive = sum(label == "positive" for _, label in kept)
        print(f"{out / split}.tsv: {len(kept)} of {len(rows)} sentences, {positive / len(kept):.1%} positive")


if __name__ == "__main__":
    main()
