"""Token vocabularies: built from the training split, stored as one token per line.

Id 0 is padding and id 1 the out-of-vocabulary token, for every vocabulary in the project.
"""

from __future__ import annotations

import collections
import os
from collections.abc import Iterable, Sequence

import tensorflow as tf

from pipelines.errors import DataError

PAD_ID = 0
OOV_ID = 1
PAD_TOKEN = "[PAD]"
OOV_TOKEN = "[UNK]"


class Vocabulary:
    """An ordered list of tokens; a token's id is its position.

    Args:
        tokens: every token, starting with `PAD_TOKEN` and `OOV_TOKEN`.

    Example:
    >>> vocab = Vocabulary.build([["a", "b", "a"], ["c"]], max_size=3)
    >>> vocab.tokens
    ['[PAD]', '[UNK]', 'a']
    >>> vocab.encode(["a", "zzz"])
    [2, 1]
    >>> vocab.ids["a"], Vocabulary.build([["x"]], reserved=("[BOS]",)).id_of("[BOS]")
    (2, 2)
    """

    def __init__(self, tokens: Sequence[str]):
        tokens = list(tokens)
        if tokens[:2] != [PAD_TOKEN, OOV_TOKEN]:
            raise DataError(
                f"a vocabulary starts with {PAD_TOKEN!r} and {OOV_TOKEN!r}, received {tokens[:2]!r}"
            )
        if len(set(tokens)) != len(tokens):
            dupes = sorted(t for t, n in collections.Counter(tokens).items() if n > 1)
            raise DataError(f"vocabulary has duplicate tokens: {dupes[:5]!r}")
        self.tokens = tokens
        self.ids = {token: i for i, token in enumerate(tokens)}  # token -> id

    def id_of(self, token: str) -> int:
        """The id of a token that must be in the vocabulary (a reserved one such as a start
        marker): a DataError, not the OOV id, when it is missing."""
        if token not in self.ids:
            raise DataError(f"the vocabulary has no {token!r} token")
        return self.ids[token]

    @classmethod
    def build(
        cls,
        token_lists: Iterable[Iterable[str]],
        max_size: int | None = None,
        min_count: int = 1,
        reserved: tuple[str, ...] = (),
    ) -> "Vocabulary":
        """Counts tokens; keeps those seen `min_count` times, most frequent first.

        `reserved` tokens (such as start and end markers) follow padding and OOV at fixed ids.
        `max_size` caps the whole vocabulary, padding, OOV and reserved tokens included. Ties
        are broken alphabetically so that the same data always gives the same ids.
        """
        if max_size is not None and max_size < 3:
            raise DataError(f"vocab_size must be at least 3, received vocab_size={max_size}")
        if min_count < 1:
            raise DataError(f"min_count must be at least 1, received min_count={min_count}")
        counts = collections.Counter(t for tokens in token_lists for t in tokens)
        fixed = [PAD_TOKEN, OOV_TOKEN, *reserved]
        for token in fixed:
            counts.pop(token, None)
        kept = sorted((t for t, n in counts.items() if n >= min_count), key=lambda t: (-counts[t], t))
        if max_size is not None:
            kept = kept[: max(max_size - len(fixed), 0)]
        return cls([*fixed, *kept])

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, tokens: Iterable[str]) -> list[int]:
        return [self.ids.get(t, OOV_ID) for t in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.tokens[i] for i in ids if i != PAD_ID]

    def save(self, path: str | os.PathLike) -> None:
        """Writes one token per line, atomically."""
        tmp = f"{path}.tmp-{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("\n".join(self.tokens) + "\n")
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Vocabulary":
        try:
            with open(path, encoding="utf-8") as f:
                tokens = f.read().split("\n")
        except FileNotFoundError:
            raise DataError(f"vocabulary file {path} does not exist") from None
        if tokens and tokens[-1] == "":
            tokens.pop()
        return cls(tokens)

    def lookup_table(self) -> tf.lookup.StaticHashTable:
        """A TensorFlow table mapping token strings to ids, unknown tokens to `OOV_ID`."""
        keys = tf.constant(self.tokens[2:] or ["[NONE]"], dtype=tf.string)
        values = tf.range(2, 2 + keys.shape[0], dtype=tf.int64)
        return tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(keys, values), default_value=OOV_ID
        )
