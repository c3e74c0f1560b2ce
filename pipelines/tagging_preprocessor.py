"""The POS tagger's preprocessor: words -> word ids and character ids, tags -> tag ids.

Training sentences come tokenized (CoNLL-U); raw text at prediction is tokenized by the
project's rules (`pipelines/text_rules.py`) keeping case. A word's id comes from its case-folded
form (with `data.lowercase`); its characters keep their case (capitals say "name"), cut to
`max_word_length`. Tag id 0 is padding; tags of train follow, sorted.

In training, a word seen c times in train is replaced by [UNK] with probability a / (a + c)
(`data.unknown_word_alpha` = a; Kiperwasser & Goldberg, 2016, https://arxiv.org/abs/1603.04351),
a new draw every epoch: the [UNK] embedding then means "a word the tagger has not seen", and the
model learns to read such words from their characters and context, as it must at test time.
"""

from __future__ import annotations

import collections
import pathlib
import sys
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from pipelines.batching import pad_and_bucket
from pipelines.errors import DataError
from pipelines.lengths import length_stats
from pipelines.text_encoding import pad_ids
from pipelines.text_preprocessors import SETTINGS, TextPreprocessor, max_length_from, read_json, write_json
from pipelines.text_rules import case_fold, tokenize_text
from pipelines.tokenization import case_fold as tf_case_fold
from pipelines.tokenization import tokenize
from pipelines.vocabulary import OOV_ID, PAD_ID, Vocabulary

WORD_LENGTH_PERCENTILE = 99.0  # longer words keep their first characters


class TaggingPreprocessor(TextPreprocessor):
    """Sentences (`.words`, `.tags`) -> ((word_ids (time,), char_ids (time, max_word_length)),
    tag_ids (time,), weights (time,)) batches, bucketed by length; weights are 0 on padding.

    Example:
    >>> from types import SimpleNamespace as S
    >>> data = S(lowercase=True, vocab_size=None, min_count=1, max_length=None, length_percentile=100.0,
    ...          batch_size=2, bucketing=False, num_buckets=1, max_word_length=None)
    >>> p = TaggingPreprocessor(data)
    >>> p.fit([S(words=("The", "dog"), tags=("DET", "NOUN"), where="x:1")])["num_tags"]
    3
    >>> word_ids, char_ids = p.encode_python([["the", "cat"]])
    >>> word_ids.tolist(), char_ids.shape
    ([[3, 1]], (1, 2, 3))
    """

    def __init__(self, data, seed: int = 0, shuffle_buffer: int = 20000):
        super().__init__(data, seed, shuffle_buffer)
        self.words: Vocabulary | None = None
        self.chars: Vocabulary | None = None
        self.tags: list[str] = []  # tag id i + 1 is tags[i]
        self.max_length: int | None = data.max_length
        self.max_word_length: int | None = data.max_word_length
        self.word_counts: list[int] = []  # train occurrences by word id (not saved: training only)

    def _key(self, word: str) -> str:
        return case_fold(word) if self.data.lowercase else word

    def fit(self, sentences) -> dict:
        d = self.data
        keys = [[self._key(w) for w in s.words] for s in sentences]
        self.words = Vocabulary.build(keys, max_size=d.vocab_size, min_count=d.min_count)
        counts = collections.Counter(k for sentence in keys for k in sentence)
        self.word_counts = [0, 0, *(counts[t] for t in self.words.tokens[2:])]  # by word id
        self.chars = Vocabulary.build(list(w) for s in sentences for w in s.words)
        self.tags = sorted({t for s in sentences for t in s.tags})
        lengths = [len(s.words) for s in sentences]
        self.notes = [f"train: {len(sentences)} sentences, {sum(lengths)} words; vocabularies: {len(self.words)} "
                      f"words, {len(self.chars)} characters; {len(self.tags)} tags"]
        self.max_length = max_length_from(d.max_length, length_stats(lengths, d.length_percentile), "sentence ",
                                          self.notes)
        if self.max_word_length is None:
            word_lengths = [len(w) for s in sentences for w in s.words]
            self.max_word_length = length_stats(word_lengths, WORD_LENGTH_PERCENTILE).at_percentile
        self.notes.append(f"max_length = {self.max_length} words, max_word_length = {self.max_word_length} characters")
        self.boundaries = self.bucket_boundaries(lengths, self.max_length)
        return {"max_length": self.max_length, "max_word_length": self.max_word_length,
                "vocab_size": len(self.words), "char_vocab_size": len(self.chars), "num_tags": len(self.tags) + 1}

    def tag_ids(self, sentence, index: dict | None = None) -> list[int]:
        index = index or {tag: i + 1 for i, tag in enumerate(self.tags)}
        for tag in sentence.tags:
            if tag not in index:
                raise DataError(f"{sentence.where}: tag {tag!r} never appears in train (train tags: {self.tags})")
        return [index[t] for t in sentence.tags]

    def encode_python(self, token_lists: Sequence[Sequence[str]], length: int | None = None, cut: bool = True):
        """(word_ids (batch, time), char_ids (batch, time, max_word_length)) without TensorFlow,
        cut to max_length (unless not `cut`) and right-padded (to `length`, default the longest,
        at least 1)."""
        return self.encode_with(token_lists, self.words.ids, self.chars.ids, self.data.lowercase,
                                self.max_length if cut else None, self.max_word_length, length)

    @staticmethod
    def encode_with(token_lists, word_ids: dict, char_ids: dict, lowercase: bool, max_length: int | None,
                    max_word_length: int, length: int | None = None):
        max_length = max_length or max((len(t) for t in token_lists), default=1)
        length = length or max(1, min(max_length, max((len(t) for t in token_lists), default=0)))
        words = np.zeros((len(token_lists), length), np.int32)
        chars = np.zeros((len(token_lists), length, max_word_length), np.int32)
        for i, tokens in enumerate(token_lists):
            for j, token in enumerate(list(tokens)[:min(length, max_length)]):
                words[i, j] = word_ids.get(case_fold(token) if lowercase else token, OOV_ID)
                chars[i, j, :len(token[:max_word_length])] = [char_ids.get(c, OOV_ID) for c in token[:max_word_length]]
        return words, chars

    def dataset(self, sentences, training: bool) -> tf.data.Dataset:
        """Training cuts sentences to max_length (and says how many); evaluation keeps them whole,
        so that every word is scored."""
        cut = sum(len(s.words) > self.max_length for s in sentences) if training else 0
        if cut:
            print(f"warning: {cut} of {len(sentences)} sentences are longer than max_length={self.max_length} "
                  "words and were cut", file=sys.stderr, flush=True)
        index = {tag: i + 1 for i, tag in enumerate(self.tags)}  # once, not per sentence
        tags = [self.tag_ids(s, index)[: self.max_length if training else None] for s in sentences]
        lengths = np.array([len(t) for t in tags], np.int64)
        words, chars = zip(*(self.encode_python([s.words], length=max(n, 1), cut=training)
                             for s, n in zip(sentences, lengths)))
        flat = lambda arrays: np.concatenate([a[0, : max(n, 1)] for a, n in zip(arrays, lengths)])  # noqa: E731
        rows = np.maximum(lengths, 1)
        word_ids = tf.RaggedTensor.from_row_lengths(flat(words), rows)
        char_ids = tf.RaggedTensor.from_row_lengths(flat(chars), rows)
        tag_ids = tf.RaggedTensor.from_row_lengths(np.concatenate([t or [0] for t in tags]).astype(np.int32), rows)
        ds = tf.data.Dataset.from_tensor_slices((word_ids, char_ids, tag_ids))
        if training:
            ds = ds.shuffle(self.shuffle_size(len(sentences), training), seed=self.seed)
        if training and self.data.unknown_word_alpha > 0:
            alpha = self.data.unknown_word_alpha
            counts = tf.constant(self.word_counts or [0] * len(self.words), tf.float32)
            unknown = alpha / (alpha + counts)  # (vocab,): 1 for padding and [UNK]
            seed = self.seed

            def forget_rare(w, c, t):  # after the shuffle: each epoch draws anew for each sentence
                draw = tf.random.uniform(tf.shape(w), seed=seed)
                return tf.where(draw < tf.gather(unknown, w), tf.fill(tf.shape(w), OOV_ID), w), c, t

            ds = ds.map(forget_rare)
        ds = ds.map(lambda w, c, t: ((w, c), t, tf.cast(t > 0, tf.float32)))
        return ds.apply(pad_and_bucket(self.data.batch_size, self.boundaries)).prefetch(tf.data.AUTOTUNE)

    # --- TensorFlow side (serving) ------------------------------------------------------------

    def tables(self):
        return {"words": self.table("words", self.words), "chars": self.table("chars", self.chars)}

    def tf_tokens(self, texts) -> tf.RaggedTensor:
        """(batch,) raw sentences -> (batch, None) tokens, case kept, cut to max_length."""
        return tokenize(texts, lowercase=False)[:, : self.max_length]

    def tf_encode_tokens(self, tokens: tf.RaggedTensor):
        """Ragged tokens -> (word_ids (batch, time), char_ids (batch, time, max_word_length))."""
        keys = tf.ragged.map_flat_values(tf_case_fold, tokens) if self.data.lowercase else tokens
        word_ids = pad_ids(tf.cast(tf.ragged.map_flat_values(self.tables()["words"].lookup, keys), tf.int32))
        chars = tf.strings.unicode_split(tokens, "UTF-8")[:, :, : self.max_word_length]  # (batch, time, None)
        char_ids = tf.cast(tf.ragged.map_flat_values(self.tables()["chars"].lookup, chars), tf.int32)
        char_ids = char_ids.to_tensor(default_value=PAD_ID, shape=[None, None, self.max_word_length])
        time_pad = tf.shape(word_ids)[1] - tf.shape(char_ids)[1]  # an empty input has one padded word
        return word_ids, tf.pad(char_ids, [[0, 0], [0, time_pad], [0, 0]])

    # --- runtimes without TensorFlow, assets ------------------------------------------------------

    @staticmethod
    def tokenize_python(texts: Sequence[str], max_length: int) -> list[list[str]]:
        return [tokenize_text(t, lowercase=False)[:max_length] for t in texts]

    def save(self, directory: pathlib.Path) -> None:
        self.words.save(directory / "vocab.txt")
        self.chars.save(directory / "chars.txt")
        (directory / ".tags.txt.tmp").write_text("\n".join(self.tags) + "\n", encoding="utf-8")
        (directory / ".tags.txt.tmp").replace(directory / "tags.txt")
        write_json(directory / SETTINGS, {"max_length": self.max_length, "boundaries": self.boundaries,
                                          "max_word_length": self.max_word_length})

    @classmethod
    def load(cls, directory: pathlib.Path, data, **options) -> "TaggingPreprocessor":
        p = cls(data, **options)
        p.words, p.chars = Vocabulary.load(directory / "vocab.txt"), Vocabulary.load(directory / "chars.txt")
        p.tags = (directory / "tags.txt").read_text(encoding="utf-8").splitlines()
        settings = read_json(directory / SETTINGS)
        p.max_length, p.boundaries, p.max_word_length = (settings["max_length"], settings["boundaries"],
                                                         settings["max_word_length"])
        return p

    def assets(self) -> dict:
        return {"vocabulary": self.words.tokens, "characters": self.chars.tokens, "tags": ["[PAD]", *self.tags],
                "tokenizer": {**self.tokenizer_assets(), "lowercase": False,
                              "word_ids_lowercase": self.data.lowercase},
                "max_length": self.max_length, "max_word_length": self.max_word_length, "pad_id": PAD_ID,
                "oov_id": OOV_ID}

    @staticmethod
    def encode_assets(assets: dict, token_lists, length: int | None = None):
        return TaggingPreprocessor.encode_with(
            token_lists, {t: i for i, t in enumerate(assets["vocabulary"])},
            {c: i for i, c in enumerate(assets["characters"])}, assets["tokenizer"]["word_ids_lowercase"],
            assets["max_length"], assets["max_word_length"], length)
