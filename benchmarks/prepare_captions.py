"""Splits a captions file of the Flickr8k Kaggle layout (`captions.txt`: `image,caption` per line,
an optional `image,caption` header, several lines per image) into the captioning app's
`train.tsv`, `dev.tsv` and `test.tsv`, by image (every caption of an image in one split), drawn
with a fixed seed; `images/` becomes a link to the images folder. Images that the file names
but the folder lacks are left out (and counted).

    python -m benchmarks.prepare_captions RAW/captions.txt RAW/images data/captions --dev 300 --test 300
    python -m benchmarks.captioning_real data/captions
"""

from __future__ import annotations

import argparse
import collections
import os
import pathlib

from benchmarks.common import write_grouped_splits


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("captions", help="the captions file (image,caption per line)")
    parser.add_argument("images", help="the folder of the images it names")
    parser.add_argument("out", help="directory for images/, train.tsv, dev.tsv, test.tsv")
    parser.add_argument("--dev", type=int, default=300, help="images in dev")
    parser.add_argument("--test", type=int, default=300, help="images in test")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    groups, dropped = collections.OrderedDict(), 0
    with open(args.captions, encoding="utf-8-sig") as f:
        for number, line in enumerate(f, 1):
            image, _, caption = line.rstrip("\r\n").partition(",")
            caption = " ".join(caption.split())  # no tabs or runs of spaces in a TSV field
            if number == 1 and (image.strip(), caption) == ("image", "caption"):
                continue
            if not image.strip() or not caption:
                dropped += 1
                continue
            groups.setdefault(image.strip(), []).append(caption)
    missing = [image for image in groups if not os.path.isfile(os.path.join(args.images, image))]
    for image in missing:
        del groups[image]
    if missing:
        print(f"left out {len(missing)} image(s) the captions name but the folder lacks: {', '.join(missing[:5])}")
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if not (out / "images").exists():
        os.symlink(os.path.abspath(args.images), out / "images")
    write_grouped_splits(groups, out, args.dev, args.test, args.seed, ("images", "captions"))
    if dropped:
        print(f"dropped {dropped} line(s) without an image and a caption")


if __name__ == "__main__":
    main()
