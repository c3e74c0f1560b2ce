"""Splits a Tatoeba sentence-pair file (`fra.txt` of the manythings.org / Keras seq2seq example:
`English<TAB>French[<TAB>attribution]` per line) into the translation app's `train.tsv`,
`dev.tsv` and `test.tsv`.

Tatoeba gives several translations of one English sentence on adjacent lines: the split keeps all
pairs of one English sentence in the same split (no source seen in train is scored), drawn with
a fixed seed. A last line without a tab (a file cut short) is dropped and counted.

    python -m benchmarks.prepare_tatoeba fra.txt data/enfr --dev 1000 --test 1000
    python -m benchmarks.translation_real data/enfr
"""

from __future__ import annotations

import argparse
import collections

from benchmarks.common import write_grouped_splits


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pairs", help="the sentence-pair file")
    parser.add_argument("out", help="directory for train.tsv, dev.tsv, test.tsv")
    parser.add_argument("--dev", type=int, default=1000, help="English sentences in dev (with all their pairs)")
    parser.add_argument("--test", type=int, default=1000, help="English sentences in test")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    groups, dropped = collections.OrderedDict(), 0
    with open(args.pairs, encoding="utf-8") as f:
        for line in f:
            fields = line.rstrip("\n").split("\t")
            if len(fields) < 2 or not fields[0].strip() or not fields[1].strip():
                dropped += 1
                continue
            groups.setdefault(fields[0].strip(), []).append(fields[1].strip())
    write_grouped_splits(groups, args.out, args.dev, args.test, args.seed, ("English sentences", "pairs"))
    if dropped:
        print(f"dropped {dropped} line(s) without two fields")


if __name__ == "__main__":
    main()
