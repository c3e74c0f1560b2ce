"""Assembles UD English-GUM's train split from its per-document sources, for snapshots of the
repository whose `en_gum-ud-train.conllu` is missing (too large for the snapshot).

The released dev and test files name their documents (`# newdoc id = ...`); train is every other
document of `not-to-release/sources/` (the released train file is their concatenation; the
documents of dev were checked to match their sources sentence by sentence).

    python -m benchmarks.prepare_gum path/to/UD_English-GUM data/gum
    python -m benchmarks.tagging_real data/gum
"""

from __future__ import annotations

import argparse
import pathlib
import re
import shutil


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("repo", help="a checkout of UD_English-GUM")
    parser.add_argument("out", help="directory for en_gum-ud-{train,dev,test}.conllu")
    args = parser.parse_args(argv)
    repo, out = pathlib.Path(args.repo), pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    held_out = set()
    for split in ("dev", "test"):
        path = repo / f"en_gum-ud-{split}.conllu"
        held_out |= set(re.findall(r"^# newdoc id = (\S+)", path.read_text(encoding="utf-8"), re.M))
        shutil.copy(path, out / path.name)
    sources = sorted((repo / "not-to-release" / "sources").glob("*.conllu"))
    train = [p for p in sources if p.stem not in held_out]
    text = "".join(p.read_text(encoding="utf-8").rstrip("\n") + "\n\n" for p in train)
    (out / "en_gum-ud-train.conllu").write_text(text, encoding="utf-8")
    print(f"train: {len(train)} documents; dev and test: {len(held_out)} documents -> {out}")


if __name__ == "__main__":
    main()
