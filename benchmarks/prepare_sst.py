"""Makes SST-2 from the Stanford Sentiment Treebank's PTB trees (`trees/train.txt`, `dev.txt`,
`test.txt`: a sentiment label 0-4 on every node) in the sentiment app's `text<TAB>label` format,
as GLUE's SST-2 is made: train holds every distinct phrase of the training trees (whole
sentences included), dev and test the whole sentences; neutral (2) is dropped, 0-1 are `negative`
and 3-4 `positive`.

    python -m benchmarks.prepare_sst path/to/trees data/sst2
    python -m benchmarks.sentiment_real data/sst2
"""

from __future__ import annotations

import argparse
import pathlib

BRACKETS = {"-LRB-": "(", "-RRB-": ")"}


def parse(line: str):
    """A tree as (label, words, children): `(3 (2 It) (4 ...))`."""
    tokens = line.replace("(", " ( ").replace(")", " ) ").split()
    position = 0

    def node():
        nonlocal position
        assert tokens[position] == "("
        label = int(tokens[position + 1])
        position += 2
        if tokens[position] != "(":
            word = BRACKETS.get(tokens[position], tokens[position])
            position += 2  # the word and ")"
            return label, [word], []
        children = []
        while tokens[position] == "(":
            children.append(node())
        position += 1  # ")"
        return label, [w for child in children for w in child[1]], children

    return node()


def phrases(tree):
    label, words, children = tree
    yield label, " ".join(words)
    for child in children:
        yield from phrases(child)


def polarity(label: int) -> str | None:
    return None if label == 2 else "negative" if label < 2 else "positive"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("trees", help="directory with train.txt, dev.txt, test.txt of PTB trees")
    parser.add_argument("out", help="directory for train.tsv, dev.tsv, test.tsv")
    args = parser.parse_args(argv)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    trees = {split: [parse(line) for line in (pathlib.Path(args.trees) / f"{split}.txt").read_text(
        encoding="utf-8").splitlines() if line.strip()] for split in ("train", "dev", "test")}
    # Some copies' train.txt holds the dev trees too (9,645 trees = 8,544 + 1,101): a tree whose
    # sentence is in dev or test is dropped from train.
    held_out = {" ".join(tree[1]) for split in ("dev", "test") for tree in trees[split]}
    kept = [tree for tree in trees["train"] if " ".join(tree[1]) not in held_out]
    if len(kept) != len(trees["train"]):
        print(f"train: dropped {len(trees['train']) - len(kept)} trees whose sentence is in dev or test")
    trees["train"] = kept
    for split, chosen in trees.items():
        if split == "train":
            rows = {}
            for tree in chosen:
                for label, text in phrases(tree):
                    rows.setdefault(text, label)
            pairs = list(rows.items())
        else:
            pairs = [(" ".join(tree[1]), tree[0]) for tree in chosen]
        lines = [f"{text}\t{polarity(label)}\n" for text, label in pairs if polarity(label) is not None]
        (out / f"{split}.tsv").write_text("".join(lines), encoding="utf-8")
        print(f"{split}: {len(lines)} {'phrases' if split == 'train' else 'sentences'} ({len(chosen)} trees)")


if __name__ == "__main__":
    main()
