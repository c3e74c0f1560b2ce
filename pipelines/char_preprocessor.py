"""Characters -> ids for character language models, fitted on the training text.

Ids: 0 padding, 1 a character train lacks ([UNK]), then train's characters, most frequent
first (`data.vocab_size` caps them, `data.min_count` drops rare ones). Datasets lay the texts out
as `pipelines.streams` streams: input character t, target character t + 1.

`data` is the app's data config: any object with `batch_size`, `steps`, `vocab_size`,
`min_count` and `lowercase`.
"""

from __future__ import annotations

import collections
import math
import pathlib
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from pipelines.char_text import Document
from pipelines.errors import DataError
from pipelines.streams import StreamLayout, stream_layout
from pipelines.text_preprocessors import read_json, write_json
from pipelines.vocabulary import OOV_ID, OOV_TOKEN, PAD_TOKEN, Vocabulary

SETTINGS = "characters.json"  # JSON, not a token per line: "\n" is a character like any other
UNKNOWN_CHAR = "\ufffd"  # how [UNK] prints in generated text


def unigram_entropy(texts: Sequence[str]) -> float:
    """Bits per character of the best model that ignores context (train's character frequencies)."""
    counts = collections.Counter(c for text in texts for c in text)
    total = sum(counts.values())
    return -sum(n / total * math.log2(n / total) for n in counts.values())


class CharPreprocessor:
    def __init__(self, data, seed: int = 0, shuffle_buffer: int = 0):
        self.data, self.seed = data, seed
        self.vocab: Vocabulary | None = None
        self.notes: list[str] = []
        self.pretrained: dict = {}  # no pretrained vectors for characters

    def _text(self, text: str) -> str:
        return text.lower() if self.data.lowercase else text

    def fit(self, documents: Sequence[Document]) -> dict:
        d = self.data
        if d.steps < 1 or d.batch_size < 1:
            raise DataError(f"data.steps and data.batch_size must be positive, received {d.steps} and {d.batch_size}")
        texts = [self._text(doc.text) for doc in documents]
        if sum(len(t) for t in texts) < 2:
            raise DataError(f"{documents[0].where if documents else 'train'}: fewer than 2 characters to learn from")
        self.vocab = Vocabulary.build(texts, max_size=d.vocab_size, min_count=d.min_count)
        total, unknown = sum(map(len, texts)), sum(self.encode(t).count(OOV_ID) for t in texts)
        self.notes.append(f"train: {total:,} characters in {len(texts)} document(s); {len(self.vocab) - 2} characters "
                          f"in the vocabulary ({unknown:,} occurrences of rarer ones map to [UNK]); unigram entropy "
                          f"{unigram_entropy(texts):.3f} bits per character")
        return {"vocab_size": len(self.vocab)}

    def encode(self, text: str) -> list[int]:
        return self.vocab.encode(self._text(text))

    def layout(self, documents: Sequence[Document], batch_size: int, steps: int, cut: bool = True,
               seed: int | None = None) -> StreamLayout:
        """Streams of (character t, character t + 1) over documents of at least 2 characters."""
        ids = [self.encode(doc.text) for doc in documents]
        ids = [i for i in ids if len(i) >= 2]
        if not ids:
            raise DataError(f"{documents[0].where if documents else 'the split'}: no text of 2 characters or more")
        return stream_layout([i[:-1] for i in ids], batch_size, steps, targets=[i[1:] for i in ids], seed=seed,
                             cut=cut)

    def dataset(self, documents: Sequence[Document], training: bool) -> tf.data.Dataset:
        """({"tokens", "reset"}, targets, weights) batches of `data.batch_size` rows in stream
        order (never shuffled: row i continues row i); training shuffles the documents within
        each row."""
        return self.layout(documents, self.data.batch_size, self.data.steps,
                           seed=self.seed if training else None).dataset()

    # --- the run's assets, and the TensorFlow and Python twins of encode / decode ---------------

    @property
    def chars(self) -> list[str]:
        """What each id prints as: padding as nothing, [UNK] as U+FFFD."""
        return ["", UNKNOWN_CHAR, *self.vocab.tokens[2:]]

    def tables(self) -> dict:
        return {"chars": self.vocab.lookup_table()}

    def tf_encode(self, table, text) -> tf.Tensor:
        """A string scalar -> its character ids (time,) int32 (code points, as Python counts them)."""
        if self.data.lowercase:
            text = tf.strings.lower(text, encoding="utf-8")
        return tf.cast(table.lookup(tf.strings.unicode_split(text, "UTF-8")), tf.int32)

    def save(self, directory: pathlib.Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        write_json(directory / SETTINGS, {"characters": self.vocab.tokens[2:], "lowercase": self.data.lowercase})

    @classmethod
    def load(cls, directory: pathlib.Path, data, **options) -> "CharPreprocessor":
        preprocessor = cls(data, **options)
        preprocessor.vocab = Vocabulary([PAD_TOKEN, OOV_TOKEN, *read_json(directory / SETTINGS)["characters"]])
        return preprocessor

    def assets(self) -> dict:
        return {"characters": self.vocab.tokens[2:], "pad_id": 0, "unknown_id": OOV_ID,
                "unknown_prints_as": UNKNOWN_CHAR, "lowercase": self.data.lowercase}

    @staticmethod
    def encode_assets(assets: dict, text: str) -> np.ndarray:
        """The Python twin of `tf_encode`, from assets.json alone."""
        ids = {c: i for i, c in enumerate(assets["characters"], start=2)}
        text = text.lower() if assets["lowercase"] else text
        return np.array([ids.get(c, assets["unknown_id"]) for c in text], np.int32)
