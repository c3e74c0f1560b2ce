"""Lays out the Lithuanian Speech Commands dataset (kolesov93/lt_speech_commands on GitHub: 20
words, about 28 speakers, one recording of each word per speaker, 16 kHz) as the speech app's
`train/`, `dev/`, `test/` folders, split by speaker so that no voice is in two splits.

    python -m benchmarks.prepare_lt_commands REPO_DIR DATA_DIR

REPO_DIR is a checkout (or `git archive`) of the repository, holding `dataset/<word>/<speaker>_nohash_0.wav`;
`_background_noise_` is left out. Speakers are shuffled with a fixed seed: 6 for test, 5 for dev,
the rest for train. Files are linked (hard links where the file system allows, else copied).
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import shutil

SEED, TEST_SPEAKERS, DEV_SPEAKERS = 0, 6, 5


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("repo")
    parser.add_argument("out")
    args = parser.parse_args(argv)
    root = os.path.join(args.repo, "dataset")
    words = sorted(d for d in os.listdir(root) if not d.startswith(("_", ".")) and os.path.isdir(os.path.join(root, d)))
    files = [(w, f) for w in words for f in sorted(os.listdir(os.path.join(root, w))) if f.endswith(".wav")]
    speakers = sorted({f.split("_nohash_")[0] for _, f in files})
    random.Random(SEED).shuffle(speakers)
    split_of = {s: "test" for s in speakers[:TEST_SPEAKERS]}
    split_of.update({s: "dev" for s in speakers[TEST_SPEAKERS:TEST_SPEAKERS + DEV_SPEAKERS]})
    counts = collections.Counter()
    for word, name in files:
        split = split_of.get(name.split("_nohash_")[0], "train")
        folder = os.path.join(args.out, split, word)
        os.makedirs(folder, exist_ok=True)
        target = os.path.join(folder, name)
        if not os.path.exists(target):
            try:
                os.link(os.path.join(root, word, name), target)
            except OSError:
                shutil.copyfile(os.path.join(root, word, name), target)
        counts[split] += 1
    print(f"{len(words)} words, {len(speakers)} speakers; utterances: "
          + ", ".join(f"{k} {counts[k]}" for k in ("train", "dev", "test")))


if __name__ == "__main__":
    main()
