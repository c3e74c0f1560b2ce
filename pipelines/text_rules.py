"""Tokenization rules, once, for both sides: the tf.data pipeline (tensorflow-text ops, RE2
patterns) and runtimes without TensorFlow (this module: Python and the `regex` package).

- Case folding: Unicode NFKC_Casefold (what `tensorflow_text.case_fold_utf8` computes).
- Splitting: on whitespace and separators; every punctuation or symbol character is a token
  of its own; everything between is a word.

No TensorFlow import here, so that an onnxruntime client can use it.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence

import numpy as np
import regex

# RE2 syntax (tensorflow_text.regex_split); `regex` reads it the same way.
DELIMITERS = r"[\t\n\v\f\r\p{Z}]+|[\p{P}\p{S}]"
KEPT_DELIMITERS = r"[\p{P}\p{S}]"

# Detokenization: no space before closing punctuation, none after opening punctuation. RE2
# syntax too: `pipelines.tokenization.detokenize` applies the same rules in TensorFlow.
DETOKENIZE_RULES = ((r" ([\p{Pe}\p{Pf}.,!?;:%])", r"\1"), (r"([\p{Ps}\p{Pi}]) ", r"\1"))

_TOKEN = regex.compile(r"[\p{P}\p{S}]|[^\t\n\v\f\r\p{Z}\p{P}\p{S}]+")
_IGNORABLE = regex.compile(r"\p{Default_Ignorable_Code_Point}")


def case_fold(text: str) -> str:
    """NFKC_Casefold: ignorable characters removed, case folded, NFKC-normalised."""
    text = _IGNORABLE.sub("", text)
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())


def tokenize_text(text: str, lowercase: bool = True) -> list[str]:
    """The Python twin of `pipelines.tokenization.tokenize` for one string.

    Example:
    >>> tokenize_text("Not GOOD, really!")
    ['not', 'good', ',', 'really', '!']
    """
    return _TOKEN.findall(case_fold(text) if lowercase else text)


def encode_text(text: str, ids: Mapping[str, int], oov_id: int, lowercase: bool = True,
                max_length: int | None = None) -> list[int]:
    """Token ids of one string, cut to `max_length` (the Python twin of `text_encoder`)."""
    tokens = tokenize_text(text, lowercase)
    if max_length is not None:
        tokens = tokens[:max_length]
    return [ids.get(token, oov_id) for token in tokens]


def detokenize(tokens: Sequence[str]) -> str:
    """Joins word tokens into text by `DETOKENIZE_RULES`.

    Example:
    >>> detokenize(["the", "dog", ",", "he", "said", "(", "twice", ")", "."])
    'the dog, he said (twice).'
    """
    text = " ".join(tokens)
    for pattern, replacement in DETOKENIZE_RULES:
        text = regex.sub(pattern, replacement, text)
    return text


def encode_batch(texts: Sequence[str], vocabulary: Sequence[str], oov_id: int, lowercase: bool = True,
                 max_length: int | None = None, length: int | None = None) -> np.ndarray:
    """Token ids of many strings, right-padded (to `length`, default the longest): what a
    runtime without TensorFlow feeds an exported model, from `assets.json`'s settings."""
    ids = {token: i for i, token in enumerate(vocabulary)}
    return pad_rows([encode_text(t, ids, oov_id, lowercase, max_length) for t in texts], length)


def pad_rows(rows: Sequence[Sequence[int]], length: int | None = None) -> np.ndarray:
    """Right-pads id lists with 0 (and cuts them) to `length`, default the longest (at least 1).

    Example:
    >>> pad_rows([[3, 4], [5]]).tolist()
    [[3, 4], [5, 0]]
    """
    length = length or max(1, max(map(len, rows), default=0))
    out = np.zeros((len(rows), length), np.int32)
    for i, row in enumerate(rows):
        row = list(row)[:length]
        out[i, : len(row)] = row
    return out
