"""Word vectors learned from a folder of unlabeled text, for `--set model.embeddings=PATH`.

    python -m benchmarks.word_vectors TEXT_DIR OUT.vec.gz [--dim 100] [--epochs 5]

Reads every `.txt` file under TEXT_DIR (one document each, `<br />` line breaks of HTML-scraped
reviews taken as spaces), tokenizes it with the app's own word tokenizer (`pipelines/tokenization`,
case-folded: the tokens the sentiment vocabulary is made of), trains gensim's skip-gram word2vec and
writes a gzip-compressed word2vec text file, most frequent words first (what `model.embeddings_words`
takes). For the README's sentiment row: the 100,000 reviews of the Large Movie Review Dataset
(aclImdb, Maas et al. 2011: train, test and unsup, labels unused), a review corpus that is not the
development data, as GloVe or fastText would be if this machine could download them.

gensim is a benchmark extra (`pip install -e ".[bench]"`), never a dependency of the apps.
"""

from __future__ import annotations

import argparse
import gzip
import os
import pathlib
import time

import numpy as np


def read_documents(root: str) -> list[str]:
    """The text of every `.txt` file under `root`, sorted by path, HTML line breaks as spaces."""
    paths = sorted(pathlib.Path(root).rglob("*.txt"))
    if not paths:
        raise SystemExit(f"{root}: no .txt files")
    return [p.read_text(encoding="utf-8", errors="replace").replace("<br />", " ") for p in paths]


def write_vectors(path: str, words: list[str], vectors: np.ndarray) -> None:
    """word2vec text format (`count dim` header), gzip-compressed, written atomically."""
    partial = f"{path}.partial"
    with gzip.open(partial, "wt", encoding="utf-8") as f:
        f.write(f"{len(words)} {vectors.shape[1]}\n")
        for word, vector in zip(words, vectors):
            f.write(word + " " + " ".join(f"{x:.5f}" for x in vector) + "\n")
    os.replace(partial, path)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("text_dir")
    parser.add_argument("out", help="the vectors file to write (.vec.gz)")
    parser.add_argument("--dim", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--min-count", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from gensim.models import Word2Vec

    from pipelines.tokenization import tokenize_texts

    start = time.perf_counter()
    documents = read_documents(args.text_dir)
    sentences = tokenize_texts(documents)
    tokens = sum(len(s) for s in sentences)
    print(f"{args.text_dir}: {len(documents)} documents, {tokens} tokens "
          f"({time.perf_counter() - start:.0f} s to read and tokenize)", flush=True)
    start = time.perf_counter()
    model = Word2Vec(sentences, vector_size=args.dim, window=5, min_count=args.min_count, sg=1, negative=5,
                     epochs=args.epochs, workers=os.cpu_count() or 1, seed=args.seed)
    words = list(model.wv.index_to_key)  # by frequency, most frequent first
    write_vectors(args.out, words, model.wv.vectors)
    print(f"{args.out}: {len(words)} words of dimension {args.dim} "
          f"({time.perf_counter() - start:.0f} s of skip-gram training)", flush=True)


if __name__ == "__main__":
    main()
