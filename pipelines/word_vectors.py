"""Pretrained word vectors from a local file, aligned to a vocabulary.

Reads word2vec text, GloVe and fastText `.vec` files, gzip-compressed or not (told by the file's
first bytes), one line at a time: a multi-gigabyte file is never held in memory, only the vectors
of the words asked for. A first line of two integers (`count dimension`: word2vec, fastText) is
a header; GloVe files have none. A line whose number of values differs from the dimension is an
error naming the file and the line.

    vectors = read_vectors("glove.6B.100d.txt.gz", wanted=set(vocabulary.tokens), extra=5000)
    matrix, report = align(vocabulary.tokens, vectors, seed=0)
"""

from __future__ import annotations

import dataclasses
import gzip
import os
from collections.abc import Sequence

import numpy as np

from pipelines.errors import DataError
from pipelines.text_rules import case_fold
from pipelines.vocabulary import PAD_ID


@dataclasses.dataclass
class WordVectors:
    path: str
    dim: int
    vectors: dict[str, np.ndarray]  # the words asked for, as the file writes them
    folded: dict[str, np.ndarray]  # case-folded form -> the vector of its first (most frequent) form
    extra: list[str]  # the file's first words that were not asked for (its most frequent ones)
    lines: int  # vector lines read


def _open(path: str):
    with open(path, "rb") as f:
        compressed = f.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if compressed else open(path, "rb")


def read_vectors(path: str | os.PathLike, wanted: set[str], extra: int = 0) -> WordVectors:
    """The vectors of the words of `wanted` (matched as written, else by their case-folded form),
    and the first `extra` other words of the file with theirs."""
    path = str(path)
    if not os.path.isfile(path):
        raise DataError(f"model.embeddings: no vectors file {path}")
    folded_wanted = {case_fold(w) for w in wanted}
    vectors: dict[str, np.ndarray] = {}
    folded: dict[str, np.ndarray] = {}
    extra_words: list[str] = []
    dim, count = None, 0
    try:
        with _open(path) as f:
            for number, raw in enumerate(f, start=1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    raise DataError(f"{path}:{number}: not UTF-8 text ({e.reason} at byte {e.start} of the line)"
                                    ) from None
                fields = line.rstrip("\r\n").rstrip(" ").split(" ")
                if number == 1 and len(fields) == 2 and all(x.isdigit() for x in fields):
                    dim = int(fields[1])  # a word2vec / fastText header
                    continue
                if len(fields) < 2 or not fields[0]:
                    raise DataError(f"{path}:{number}: expected a word and its vector, found {line[:60]!r}")
                if dim is None:
                    dim = len(fields) - 1
                if len(fields) - 1 > dim:  # a word with spaces in it (a few GloVe entries)
                    fields = [" ".join(fields[: len(fields) - dim]), *fields[len(fields) - dim:]]
                if len(fields) - 1 != dim:
                    raise DataError(f"{path}:{number}: {len(fields) - 1} values for {fields[0]!r}, "
                                    f"but the vectors have dimension {dim}")
                count += 1
                word = fields[0]
                exact, by_fold = word in wanted, case_fold(word) in folded_wanted and case_fold(word) not in folded
                new = not exact and not by_fold and len(extra_words) < extra and word not in vectors
                if exact or by_fold or new:
                    try:
                        vector = np.asarray(fields[1:], dtype=np.float32)
                    except ValueError:
                        raise DataError(f"{path}:{number}: a value of {word!r} is not a number") from None
                    if exact or new:
                        vectors.setdefault(word, vector)
                    folded.setdefault(case_fold(word), vector)  # the first (most frequent) form wins
                    if new:
                        extra_words.append(word)
    except (OSError, EOFError) as e:
        raise DataError(f"{path}: cannot read the vectors: {e}") from None
    if dim is None or count == 0:
        raise DataError(f"{path}: no vectors in the file")
    return WordVectors(path, dim, vectors, folded, extra_words, count)


@dataclasses.dataclass
class Coverage:
    found: int  # vocabulary tokens with a vector (padding and OOV not counted)
    folded: int  # of them, found by their case-folded form
    total: int

    def __str__(self) -> str:
        share = self.found / max(self.total, 1)
        return (f"{self.found} of {self.total} vocabulary tokens have a pretrained vector ({share:.1%}; "
                f"{self.folded} by their case-folded form); the others start random with the vectors' spread")


def align(tokens: Sequence[str], vectors: WordVectors, seed: int = 0, reserved: int = 2) -> tuple[np.ndarray, Coverage]:
    """A (len(tokens), dim) matrix: each token's vector, else its case-folded form's; a token without
    one (and [UNK]) is drawn from a normal with the found vectors' mean and standard deviation per
    dimension, so that it is neither an outlier nor zero; [PAD] is zero. The first `reserved`
    tokens ([PAD], [UNK]) are not counted in the coverage."""
    found_rows, folded = {}, 0
    for i, token in enumerate(tokens):
        if i < reserved:
            continue
        if token in vectors.vectors:
            found_rows[i] = vectors.vectors[token]
        elif case_fold(token) in vectors.folded:
            found_rows[i] = vectors.folded[case_fold(token)]
            folded += 1
    if found_rows:
        stacked = np.stack(list(found_rows.values()))
        mean, std = stacked.mean(axis=0), stacked.std(axis=0) + 1e-6
    else:
        mean, std = np.zeros(vectors.dim, np.float32), np.full(vectors.dim, 0.05, np.float32)
    rng = np.random.default_rng(seed)
    matrix = (mean + std * rng.standard_normal((len(tokens), vectors.dim))).astype(np.float32)
    for i, vector in found_rows.items():
        matrix[i] = vector
    matrix[PAD_ID] = 0.0
    return matrix, Coverage(len(found_rows), folded, len(tokens) - reserved)
