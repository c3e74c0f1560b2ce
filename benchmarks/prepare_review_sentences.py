"""The UCI "Sentiment Labelled Sentences" set as the sentiment app's local format.

    python -m benchmarks.prepare_review_sentences RAW_DIR OUT_DIR [--dev 500] [--test 500] [--seed 0]

RAW_DIR holds the three files of the set (Kotzias et al., KDD 2015): `amazon_cells_labelled.txt`,
`imdb_labelled.txt`, `yelp_labelled.txt`, 1,000 sentences each (`sentence<TAB>0|1`, 500 of each
label) from product, movie and restaurant reviews. Writes `train.tsv`, `dev.tsv`, `test.tsv`
(`text<TAB>negative|positive`) with each file's sentences shuffled (seeded) and split in the
same proportions, so that every split has the three sources and both labels in equal shares:
2,004 / 498 / 498 by default (83 sentences of each file and label in dev, and in test). A small review set of 3,000 sentences, where what a model brings
from elsewhere (word vectors, a run on a larger set: `train.init_from`) matters most.
"""

from __future__ import annotations

import argparse
import pathlib
import random

from benchmarks.common import write_tsv

FILES = ("amazon_cells_labelled.txt", "imdb_labelled.txt", "yelp_labelled.txt")
LABELS = {"0": "negative", "1": "positive"}


def read_file(path: pathlib.Path) -> list[tuple[str, str]]:
    """The (sentence, label) rows of one file. The set's own files are Windows-1252 (copies are
    often re-encoded as UTF-8): both are read. Lines end at newlines only: str.splitlines would
    also break at U+0085, the "..." of Windows-1252 that some sentences hold."""
    raw = path.read_bytes()
    try:
        content = raw.decode("utf-8")
    except UnicodeDecodeError:
        content = raw.decode("cp1252", errors="replace")
    content = content.replace("\x85", "\u2026")  # a copy that decoded Windows-1252's "..." as Latin-1
    rows = []
    for number, line in enumerate(content.replace("\r\n", "\n").split("\n"), 1):
        if not line.strip():
            continue
        text, sep, label = line.rpartition("\t")
        if not sep or label.strip() not in LABELS or not text.strip():
            raise SystemExit(f"{path}:{number}: expected 'sentence<TAB>0|1', got {line[:60]!r}")
        rows.append((" ".join(text.split()), LABELS[label.strip()]))
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("raw")
    parser.add_argument("out")
    parser.add_argument("--dev", type=int, default=500, help="dev sentences (all files together)")
    parser.add_argument("--test", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    files = {name: read_file(pathlib.Path(args.raw) / name) for name in FILES}
    total = sum(len(rows) for rows in files.values())
    splits = {"train": [], "dev": [], "test": []}
    for name, file_rows in files.items():
        for label in LABELS.values():  # the same share of each file and label in every split
            rows = [row for row in file_rows if row[1] == label]
            rng.shuffle(rows)
            dev, test = (round(n * len(rows) / total) for n in (args.dev, args.test))
            splits["dev"] += rows[:dev]
            splits["test"] += rows[dev:dev + test]
            splits["train"] += rows[dev + test:]
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for split, rows in splits.items():
        rng.shuffle(rows)
        write_tsv(out / f"{split}.tsv", rows)
        print(f"{out / split}.tsv: {len(rows)} sentences")


if __name__ == "__main__":
    main()
