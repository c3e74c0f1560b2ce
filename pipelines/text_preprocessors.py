"""Preprocessors of the text apps: raw text -> token ids, fitted on the training split.

A preprocessor (the KerasHub split: preprocessor and model) owns what turns a split into model
inputs: it fits on train in one tokenization pass (vocabulary, length statistics, maximum
length, bucket boundaries), saves and loads itself in a run's `assets/`, builds the tf.data
datasets, gives the TensorFlow encode that serving graphs use and, through `assets()`, the
settings with which `pipelines.text_rules` encodes the same ids without TensorFlow.

`data` is the app's data config: any object with `lowercase`, `vocab_size`, `min_count`,
`max_length`, `length_percentile`, `batch_size`, `bucketing` and `num_buckets`.
"""

from __future__ import annotations

import abc
import json
import pathlib
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from pipelines.batching import bucket_boundaries, pad_and_bucket
from pipelines.errors import DataError
from pipelines.lengths import length_stats
from pipelines.text_encoding import labeled_text_dataset, pad_ids, text_encoder
from pipelines.text_rules import DELIMITERS, KEPT_DELIMITERS, detokenize, encode_batch
from pipelines.tokenization import detokenize as tf_detokenize
from pipelines.tokenization import tokenize_texts
from pipelines.vocabulary import OOV_ID, PAD_ID, Vocabulary

SETTINGS = "preprocessing.json"
BOS, EOS = "[BOS]", "[EOS]"


def write_json(path: pathlib.Path, obj) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)


def read_json(path: pathlib.Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path} does not exist: the run's assets are incomplete") from None
    except json.JSONDecodeError as e:
        raise DataError(f"{path} is corrupt: {e}") from None


def max_length_from(configured: int | None, stats, what: str, notes: list[str]) -> int:
    notes.append(f"{what}{stats.describe()}")
    return configured if configured is not None else stats.at_percentile


def _count_cut(lengths: Sequence[int], limit: int, what: str, setting: str, notes: list[str]) -> None:
    cut = sum(n > limit for n in lengths)
    if cut:
        notes.append(f"warning: {cut} of {len(lengths)} {what} are longer than {setting}={limit} and were truncated")


class TextPreprocessor(abc.ABC):
    """What both text preprocessors share: settings, the tokenizer description and bucketing."""

    def __init__(self, data, seed: int = 0, shuffle_buffer: int = 20000):
        self.data, self.seed, self.shuffle_buffer = data, seed, shuffle_buffer
        self.boundaries: list[int] | None = None
        self.notes: list[str] = []  # what `fit` found, for the app to log
        self._tables: dict[str, tf.lookup.StaticHashTable] = {}

    def table(self, name: str, vocab: Vocabulary) -> tf.lookup.StaticHashTable:
        """The lookup table of a vocabulary, made once: every encoder (tf.data, serving) uses it."""
        if name not in self._tables:
            self._tables[name] = vocab.lookup_table()
        return self._tables[name]

    @abc.abstractmethod
    def tables(self) -> dict[str, tf.lookup.StaticHashTable]:
        """Every lookup table, for a serving module to track (and a SavedModel to save)."""

    def input_vocab(self) -> tuple[str, Vocabulary]:
        """The name and vocabulary of the text the model reads (a classifier's text, a
        translator's source)."""
        raise TypeError(f"{type(self).__name__} has no single text input")

    def tf_encoder(self):
        """(batch,) strings -> ragged ids of the input text, in TensorFlow (tf.data, serving)."""
        return text_encoder(self.table(*self.input_vocab()), self.data.lowercase, self.max_length)

    def tf_encode(self, texts) -> tf.Tensor:
        """(batch,) strings -> (batch, time) ids, right-padded."""
        return pad_ids(self.tf_encoder()(texts))

    def encode_python(self, texts: Sequence[str], length: int | None = None) -> np.ndarray:
        """The same ids as `tf_encode`, without TensorFlow (right-padded to `length`)."""
        return encode_batch(texts, self.input_vocab()[1].tokens, OOV_ID, self.data.lowercase, self.max_length,
                            length)

    def bucket_boundaries(self, lengths: Sequence[int], max_length: int) -> list[int] | None:
        if not self.data.bucketing:
            return None
        return bucket_boundaries(lengths, self.data.num_buckets, max_length)

    def shuffle_size(self, n: int, training: bool) -> int:
        return min(self.shuffle_buffer, n) if training else 0

    def tokenizer_assets(self) -> dict:
        return {"lowercase": self.data.lowercase, "rules": "pipelines/text_rules.py", "delimiters": DELIMITERS,
                "kept_delimiters": KEPT_DELIMITERS}


class TextClassificationPreprocessor(TextPreprocessor):
    """Texts -> token ids (batch, time), labels -> ids in the sorted order of the training labels.

    Example:
    >>> from types import SimpleNamespace as S
    >>> data = S(lowercase=True, vocab_size=100, min_count=1, max_length=None, length_percentile=100.0,
    ...          batch_size=2, bucketing=False, num_buckets=1)
    >>> p = TextClassificationPreprocessor(data)
    >>> p.fit([S(text="good film", label="pos"), S(text="bad", label="neg")])
    {'max_length': 2, 'num_classes': 2, 'vocab_size': 5}
    >>> p.encode_python(["Good movie"]).tolist()
    [[4, 1]]
    """

    def __init__(self, data, seed: int = 0, shuffle_buffer: int = 20000):
        super().__init__(data, seed, shuffle_buffer)
        self.vocab: Vocabulary | None = None
        self.labels: list[str] = []
        self.max_length: int | None = data.max_length

    def fit(self, examples) -> dict:
        """Fits on the training examples (`.text`, `.label`); returns the config values it resolves."""
        d = self.data
        tokens = tokenize_texts([e.text for e in examples], d.lowercase)
        self.vocab = Vocabulary.build(tokens, max_size=d.vocab_size, min_count=d.min_count)
        self.labels = sorted({e.label for e in examples})
        if len(self.labels) < 2:
            raise DataError(f"train has a single label {self.labels!r}: a classifier needs at least two")
        lengths = [len(t) for t in tokens]
        self.notes = [f"train: {len(examples)} examples, {len(self.vocab)} tokens in the vocabulary, "
                      f"labels {self.labels}"]
        self.max_length = max_length_from(d.max_length, length_stats(lengths, d.length_percentile), "", self.notes)
        self.notes.append(f"max_length = {self.max_length}" + (
            " (set in the config)" if d.max_length is not None else f" ({d.length_percentile:g}th percentile)"))
        self.boundaries = self.bucket_boundaries(lengths, self.max_length)
        return {"max_length": self.max_length, "num_classes": len(self.labels), "vocab_size": len(self.vocab)}

    def label_ids(self, examples) -> list[int]:
        index = {label: i for i, label in enumerate(self.labels)}
        for e in examples:
            if e.label not in index:
                raise DataError(f"{e.where}: label {e.label!r} never appears in train (train labels: {self.labels})")
        return [index[e.label] for e in examples]

    def dataset(self, examples, training: bool) -> tf.data.Dataset:
        """(token_ids, label_id) batches, bucketed by length; shuffled when `training`."""
        return labeled_text_dataset([e.text for e in examples], self.label_ids(examples), self.tf_encoder(),
                                    self.data.batch_size, self.boundaries,
                                    shuffle_buffer=self.shuffle_size(len(examples), training), seed=self.seed)

    def input_vocab(self):
        return "vocab", self.vocab

    def tables(self):
        return {"vocab": self.table("vocab", self.vocab)}

    def save(self, directory: pathlib.Path) -> None:
        self.vocab.save(directory / "vocab.txt")
        (directory / ".labels.txt.tmp").write_text("\n".join(self.labels) + "\n", encoding="utf-8")
        (directory / ".labels.txt.tmp").replace(directory / "labels.txt")
        write_json(directory / SETTINGS, {"max_length": self.max_length, "boundaries": self.boundaries})

    @classmethod
    def load(cls, directory: pathlib.Path, data, **options) -> "TextClassificationPreprocessor":
        p = cls(data, **options)
        p.vocab = Vocabulary.load(directory / "vocab.txt")
        p.labels = (directory / "labels.txt").read_text(encoding="utf-8").splitlines()
        settings = read_json(directory / SETTINGS)
        p.max_length, p.boundaries = settings["max_length"], settings["boundaries"]
        return p

    def assets(self) -> dict:
        """What `assets.json` needs for runtimes without TensorFlow (see `from_assets`)."""
        return {"vocabulary": self.vocab.tokens, "labels": self.labels, "tokenizer": self.tokenizer_assets(),
                "max_length": self.max_length, "pad_id": PAD_ID, "oov_id": OOV_ID}

    @staticmethod
    def encode_assets(assets: dict, texts: Sequence[str], length: int | None = None) -> np.ndarray:
        """Token ids from an export's `assets.json` settings (no TensorFlow, no Vocabulary)."""
        return encode_batch(texts, assets["vocabulary"], assets["oov_id"], assets["tokenizer"]["lowercase"],
                            assets["max_length"], length)


class Seq2SeqPreprocessor(TextPreprocessor):
    """Source texts -> ids; target texts -> `[BOS] ids` (decoder inputs) and `ids [EOS]` (the
    targets), cut to `target_max_length` with [EOS]; generated ids -> detokenized text.

    Source and target have vocabularies of their own; the target's reserves [BOS] and [EOS]
    after padding and OOV (`bos_id`, `eos_id`).
    """

    def __init__(self, data, seed: int = 0, shuffle_buffer: int = 20000, target_max_length: int | None = None):
        super().__init__(data, seed, shuffle_buffer)
        self.source_vocab: Vocabulary | None = None
        self.target_vocab: Vocabulary | None = None
        self.max_length: int | None = data.max_length
        self.target_max_length = target_max_length

    @property
    def bos_id(self) -> int:
        return self.target_vocab.id_of(BOS)

    @property
    def eos_id(self) -> int:
        return self.target_vocab.id_of(EOS)

    def fit(self, pairs) -> dict:
        """Fits on training pairs (`.source`, `.target`); returns the config values it resolves."""
        d = self.data
        source_tokens = tokenize_texts([p.source for p in pairs], d.lowercase)
        target_tokens = tokenize_texts([p.target for p in pairs], d.lowercase)
        self.source_vocab = Vocabulary.build(source_tokens, max_size=d.vocab_size, min_count=d.min_count)
        self.target_vocab = Vocabulary.build(target_tokens, max_size=d.vocab_size, min_count=d.min_count,
                                             reserved=(BOS, EOS))
        source_lengths = [len(t) for t in source_tokens]
        target_lengths = [len(t) + 1 for t in target_tokens]  # + [EOS]
        self.notes = [f"train: {len(pairs)} pairs; vocabularies: source {len(self.source_vocab)}, "
                      f"target {len(self.target_vocab)}"]
        self.max_length = max_length_from(d.max_length, length_stats(source_lengths, d.length_percentile),
                                      "source ", self.notes)
        self.target_max_length = max_length_from(self.target_max_length,
                                             length_stats(target_lengths, d.length_percentile),
                                             "target (with [EOS]) ", self.notes)
        self.notes.append(f"max_length = {self.max_length} (source), target_max_length = {self.target_max_length}")
        _count_cut(target_lengths, self.target_max_length, "training targets", "target_max_length", self.notes)
        _count_cut(source_lengths, self.max_length, "training sources", "max_length", self.notes)
        self.boundaries = self.bucket_boundaries(source_lengths, self.max_length)
        return {"max_length": self.max_length, "target_max_length": self.target_max_length,
                "source_vocab_size": len(self.source_vocab), "target_vocab_size": len(self.target_vocab)}

    def tables(self):
        return {"source": self.table("source", self.source_vocab), "target": self.table("target", self.target_vocab)}

    def input_vocab(self):
        return "source", self.source_vocab

    def tf_target_encoder(self):
        """Target texts -> ragged ids, cut to leave room for [EOS]."""
        return text_encoder(self.table("target", self.target_vocab), self.data.lowercase, self.target_max_length - 1)

    def dataset(self, pairs, training: bool) -> tf.data.Dataset:
        """((source_ids, target_in), target_out) batches, bucketed by source length."""
        encode_source, encode_target = self.tf_encoder(), self.tf_target_encoder()
        bos, eos = self.bos_id, self.eos_id

        def encode(sources, targets):
            target = encode_target(targets)
            column = tf.concat([tf.shape(targets)[0:1], [1]], 0)  # (batch, 1)
            target_in = tf.concat([tf.fill(column, bos), target], axis=1)
            target_out = tf.concat([target, tf.fill(column, eos)], axis=1)
            return (encode_source(sources), target_in), target_out

        ds = tf.data.Dataset.from_tensor_slices(([p.source for p in pairs], [p.target for p in pairs]))
        if training:
            ds = ds.shuffle(self.shuffle_size(len(pairs), training), seed=self.seed)
        ds = ds.batch(256).map(encode, num_parallel_calls=tf.data.AUTOTUNE).unbatch()
        ds = ds.map(lambda inputs, out: (inputs, out))  # ragged rows -> dense tensors
        return ds.apply(pad_and_bucket(self.data.batch_size, self.boundaries)).prefetch(tf.data.AUTOTUNE)

    def target_text(self, target_tokens: tf.Tensor):
        """A TensorFlow function: (batch, steps) target ids -> (batch,) detokenized text, without
        padding, [UNK], [BOS] and [EOS] (every id up to `eos_id`). `target_tokens` is the
        vocabulary as a string tensor, held by the serving module that calls this."""
        eos = self.eos_id

        def ids_to_text(ids):
            words = tf.ragged.boolean_mask(tf.gather(target_tokens, ids), ids > eos)
            return tf_detokenize(words)

        return ids_to_text

    def save(self, directory: pathlib.Path) -> None:
        self.source_vocab.save(directory / "source_vocab.txt")
        self.target_vocab.save(directory / "target_vocab.txt")
        write_json(directory / SETTINGS, {"max_length": self.max_length, "boundaries": self.boundaries,
                                           "target_max_length": self.target_max_length})

    @classmethod
    def load(cls, directory: pathlib.Path, data, **options) -> "Seq2SeqPreprocessor":
        p = cls(data, **options)
        p.source_vocab = Vocabulary.load(directory / "source_vocab.txt")
        p.target_vocab = Vocabulary.load(directory / "target_vocab.txt")
        settings = read_json(directory / SETTINGS)
        p.max_length, p.boundaries = settings["max_length"], settings["boundaries"]
        p.target_max_length = settings["target_max_length"]
        return p

    def assets(self) -> dict:
        return {"source_vocabulary": self.source_vocab.tokens, "target_vocabulary": self.target_vocab.tokens,
                "tokenizer": self.tokenizer_assets(), "pad_id": PAD_ID, "oov_id": OOV_ID, "bos_id": self.bos_id,
                "eos_id": self.eos_id, "max_length": self.max_length, "target_max_length": self.target_max_length,
                "detokenizer": "pipelines.text_rules.detokenize"}

    @staticmethod
    def encode_assets(assets: dict, texts: Sequence[str], length: int | None = None) -> np.ndarray:
        return encode_batch(texts, assets["source_vocabulary"], assets["oov_id"], assets["tokenizer"]["lowercase"],
                            assets["max_length"], length)

    @staticmethod
    def decode_assets(assets: dict, rows) -> list[str]:
        """Target ids -> detokenized text without TensorFlow (ids up to [EOS] are special)."""
        vocabulary, eos_id = assets["target_vocabulary"], assets["eos_id"]
        return [detokenize([vocabulary[i] for i in row if i > eos_id]) for row in rows]
