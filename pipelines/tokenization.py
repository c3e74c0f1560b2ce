"""Word tokenization with tensorflow-text, by the rules of `pipelines/text_rules.py`:
NFKC_Casefold case folding, then splitting on whitespace with punctuation and symbols as
tokens of their own (Unicode-aware: RE2's Unicode categories)."""

from __future__ import annotations

import tensorflow as tf
import tensorflow_text as tf_text

from pipelines.text_rules import DELIMITERS, DETOKENIZE_RULES, KEPT_DELIMITERS


def case_fold(texts: tf.Tensor) -> tf.Tensor:
    """NFKC_Casefold of UTF-8 strings: the TensorFlow twin of `pipelines.text_rules.case_fold`."""
    return tf_text.case_fold_utf8(texts)


def tokenize(texts: tf.Tensor, lowercase: bool = True) -> tf.RaggedTensor:
    """Tokenizes a batch of UTF-8 strings.

    Args:
        texts: string tensor of shape (batch,).
        lowercase: apply NFKC_Casefold first.

    Returns:
        A ragged string tensor (batch, None).

    Example:
    >>> tokenize(tf.constant(["Not GOOD, really!"])).to_list()
    [[b'not', b'good', b',', b'really', b'!']]
    """
    texts = tf.convert_to_tensor(texts, dtype=tf.string)
    if lowercase:
        texts = case_fold(texts)
    return tf_text.regex_split(texts, DELIMITERS, KEPT_DELIMITERS)


def tokenize_texts(texts: list[str], lowercase: bool = True, chunk: int = 4096) -> list[list[str]]:
    """Python lists in and out; used to count tokens and lengths of a whole split."""
    out: list[list[str]] = []
    for start in range(0, len(texts), chunk):
        ragged = tokenize(tf.constant(texts[start : start + chunk], dtype=tf.string), lowercase)
        out.extend([t.decode("utf-8") for t in row] for row in ragged.to_list())
    return out


def detokenize(tokens: tf.RaggedTensor) -> tf.Tensor:
    """(batch, None) string tokens -> (batch,) text, by the rules of
    `pipelines.text_rules.detokenize` (core `tf.strings` ops only: no tensorflow-text op).

    Example:
    >>> detokenize(tf.ragged.constant([["the", "dog", ",", "he", "said", "."]])).numpy().tolist()
    [b'the dog, he said.']
    """
    text = tf.strings.reduce_join(tokens, axis=-1, separator=" ")
    for pattern, replacement in DETOKENIZE_RULES:
        text = tf.strings.regex_replace(text, pattern, replacement)
    return text


def detokenize_pieces(pieces: tf.RaggedTensor) -> tf.Tensor:
    """(batch, None) subword pieces -> (batch,) text: the TensorFlow twin of
    `pipelines.subwords.detokenize` (core `tf.strings` ops only).

    Example:
    >>> detokenize_pieces(tf.ragged.constant([["\u2581Der", "\u2581Hund", "."]])).numpy().tolist()
    [b'Der Hund.']
    """
    text = tf.strings.regex_replace(tf.strings.reduce_join(pieces, axis=-1), "\u2581", " ")
    return tf.strings.regex_replace(text, "^ +| +$", "")
