"""Preprocessors of the text apps: raw text -> token ids, fitted on the training split.

A preprocessor (the KerasHub split: preprocessor and model) owns what turns a split into model
inputs: it fits on train in one tokenization pass (vocabulary, length statistics, maximum
length, bucket boundaries), saves and loads itself in a run's `assets/`, builds the tf.data
datasets, gives the TensorFlow encode that serving graphs use and, through `assets()`, the
settings with which `pipelines.text_rules` encodes the same ids without TensorFlow.

`data` is the app's data config: any object with `lowercase`, `vocab_size`, `min_count`,
`max_length`, `length_percentile`, `batch_size`, `bucketing` and `num_buckets`, and optionally
`tokenizer` (`words`, the default, or `subwords`: `pipelines/subwords.py`) and
`subword_vocab_size`.
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
from pipelines.subwords import Subwords
from pipelines.subwords import detokenize as detokenize_pieces
from pipelines.text_rules import DELIMITERS, KEPT_DELIMITERS, case_fold, detokenize, encode_batch, pad_rows
from pipelines.tokenization import case_fold as tf_case_fold
from pipelines.tokenization import detokenize as tf_detokenize
from pipelines.tokenization import detokenize_pieces as tf_detokenize_pieces
from pipelines.tokenization import tokenize_texts
from pipelines.vocabulary import OOV_ID, PAD_ID, Vocabulary
from pipelines.word_vectors import align, read_vectors

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
    """What the text preprocessors share: settings, bucketing, and each text side's tokenizer
    (words through a vocabulary table, or learned subwords), fitted, encoded in TensorFlow and in
    Python, saved and described for `assets.json`. A side has a name: `vocab` (a classifier's
    text), `source` and `target` (a translator's)."""

    INPUT_SIDE = "vocab"  # the side that the model reads, and pretrained vectors are for
    # Whether serving cuts the input text to `max_length` as training does; a classifier reads
    # whole texts (only its training batches are cut).
    CUTS_INPUT = True

    def __init__(self, data, seed: int = 0, shuffle_buffer: int = 20000):
        self.data, self.seed, self.shuffle_buffer = data, seed, shuffle_buffer
        self.boundaries: list[int] | None = None
        self.notes: list[str] = []  # what `fit` found, for the app to log
        self.subwords: dict[str, Subwords] = {}  # per side, when data.tokenizer is `subwords`
        self.vectors: tuple[str, int] | None = None  # (path, extra words): see `use_vectors`
        self.pretrained: dict[str, np.ndarray] = {}  # side -> (vocabulary, dim) matrix, after `fit`
        self._tables: dict[str, tf.lookup.StaticHashTable] = {}
        self._encoders: dict[tuple, object] = {}

    @property
    def uses_subwords(self) -> bool:
        kind = getattr(self.data, "tokenizer", "words")
        if kind not in ("words", "subwords"):
            raise DataError(f"data.tokenizer must be 'words' or 'subwords', received {kind!r}")
        return kind == "subwords"

    def use_vectors(self, path: str, extra_words: int = 0) -> None:
        """At `fit`, align the input side's vocabulary to the word vectors of `path`
        (`pipelines/word_vectors.py`), after adding up to `extra_words` words of the file that
        train lacks (its first, most frequent ones); the matrix goes to `pretrained`."""
        self.vectors = (path, extra_words)

    def _align_vectors(self, name: str, vocab: Vocabulary, lowercase: bool) -> Vocabulary:
        path, extra = self.vectors
        if self.uses_subwords:
            raise DataError("model.embeddings needs data.tokenizer=words: the vectors are of words, not of pieces")
        vectors = read_vectors(path, wanted=set(vocab.tokens), extra=extra)
        known = set(vocab.tokens)
        added = list(dict.fromkeys(w for w in (case_fold(w) if lowercase else w for w in vectors.extra)
                                   if w not in known))
        vocab = Vocabulary(vocab.tokens + added) if added else vocab
        self.pretrained[name], coverage = align(vocab.tokens, vectors, seed=self.seed)
        self.notes.append(f"embeddings: {path} ({vectors.lines} vectors of dimension {vectors.dim}): {coverage}"
                          + (f"; {len(added)} words of the vectors that train lacks were added" if added else ""))
        return vocab

    def fit_side(self, name: str, texts: Sequence[str], lowercase: bool, reserved=()) -> tuple[Vocabulary, list[int]]:
        """The vocabulary of one side and the token count of each training text."""
        vocab, lengths = self._fit_side(name, texts, lowercase, reserved)
        if self.vectors is not None and name == self.INPUT_SIDE:
            vocab = self._align_vectors(name, vocab, lowercase)
        return vocab, lengths

    def _fit_side(self, name, texts, lowercase, reserved):
        d = self.data
        if self.uses_subwords:
            folded = [case_fold(t) for t in texts] if lowercase else list(texts)
            self.subwords[name] = Subwords.learn(folded, d.subword_vocab_size, markers=bool(reserved), seed=self.seed)
            return self.subwords[name].vocabulary(), [len(row) for row in self.subwords[name].encode(folded)]
        tokens = tokenize_texts(list(texts), lowercase)
        return (Vocabulary.build(tokens, max_size=d.vocab_size, min_count=d.min_count, reserved=reserved),
                [len(t) for t in tokens])

    def table(self, name: str, vocab: Vocabulary) -> tf.lookup.StaticHashTable:
        """The lookup table of a vocabulary, made once: every encoder (tf.data, serving) uses it."""
        if name not in self._tables:
            self._tables[name] = vocab.lookup_table()
        return self._tables[name]

    def side_encoder(self, name: str, vocab: Vocabulary, lowercase: bool, max_length: int | None):
        """(batch,) strings -> ragged int32 ids of one side, in TensorFlow; made once per setting,
        so that tf.data and serving share its table or tokenizer."""
        key = (name, lowercase, max_length)
        if key not in self._encoders:
            if name in self.subwords:
                pieces = self.subwords[name].tf_encoder(max_length)

                def encode(texts):
                    return pieces(tf_case_fold(texts) if lowercase else texts)

                self._encoders[key] = encode
            else:
                self._encoders[key] = text_encoder(self.table(name, vocab), lowercase, max_length)
        return self._encoders[key]

    def side_resources(self, name: str, vocab: Vocabulary):
        """What a SavedModel must hold to encode a side: its table or its subword tokenizer."""
        return self.subwords[name].tf_tokenizer() if name in self.subwords else self.table(name, vocab)

    def encode_side(self, name: str, vocab: Vocabulary, texts: Sequence[str], lowercase: bool,
                    max_length: int | None, length: int | None = None) -> np.ndarray:
        """The Python twin of `side_encoder`, right-padded to `length` (default the longest)."""
        if name in self.subwords:
            return subword_rows(self.subwords[name], texts, lowercase, max_length, length)
        return encode_batch(texts, vocab.tokens, OOV_ID, lowercase, max_length, length)

    @abc.abstractmethod
    def tables(self) -> dict:
        """Every lookup table and subword tokenizer, for a serving module to track (and a
        SavedModel to save)."""

    def input_vocab(self) -> tuple[str, Vocabulary]:
        """The name and vocabulary of the text the model reads (a classifier's text, a
        translator's source)."""
        raise TypeError(f"{type(self).__name__} has no single text input")

    @property
    def input_max_length(self) -> int | None:
        """The cut of the input text outside training: `max_length`, or none (`CUTS_INPUT`)."""
        return self.max_length if self.CUTS_INPUT else None

    def tf_encoder(self):
        """(batch,) strings -> ragged ids of the input text, in TensorFlow (tf.data, serving)."""
        name, vocab = self.input_vocab()
        return self.side_encoder(name, vocab, self.data.lowercase, self.input_max_length)

    def tf_encode(self, texts) -> tf.Tensor:
        """(batch,) strings -> (batch, time) ids, right-padded."""
        return pad_ids(self.tf_encoder()(texts))

    def encode_python(self, texts: Sequence[str], length: int | None = None) -> np.ndarray:
        """The same ids as `tf_encode`, without TensorFlow, right-padded (or cut) to `length`."""
        name, vocab = self.input_vocab()
        return self.encode_side(name, vocab, texts, self.data.lowercase, self.input_max_length, length)

    def bucket_boundaries(self, lengths: Sequence[int], max_length: int) -> list[int] | None:
        if not self.data.bucketing:
            return None
        return bucket_boundaries(lengths, self.data.num_buckets, max_length)

    def shuffle_size(self, n: int, training: bool) -> int:
        return min(self.shuffle_buffer, n) if training else 0

    def tokenizer_assets(self) -> dict:
        """How runtimes without TensorFlow tokenize: the rules of `pipelines/text_rules.py`, or
        each side's subword model (the `sentencepiece` package reads it)."""
        if self.subwords:
            return {"lowercase": self.data.lowercase, "kind": "subwords",
                    "subwords": {name: model.to_text() for name, model in self.subwords.items()}}
        return {"lowercase": self.data.lowercase, "kind": "words", "rules": "pipelines/text_rules.py",
                "delimiters": DELIMITERS, "kept_delimiters": KEPT_DELIMITERS}

    def save_subwords(self, directory: pathlib.Path) -> None:
        for name, model in self.subwords.items():
            tmp = directory / f".{name}.subwords.model.tmp"
            tmp.write_bytes(model.proto)
            tmp.replace(directory / f"{name}.subwords.model")

    def load_subwords(self, directory: pathlib.Path) -> None:
        for path in sorted(directory.glob("*.subwords.model")):
            self.subwords[path.name.split(".")[0]] = Subwords(path.read_bytes())


def subword_rows(model: Subwords, texts: Sequence[str], lowercase: bool, max_length: int | None,
                 length: int | None) -> np.ndarray:
    """Piece ids of `texts` (case folded first when `lowercase`), right-padded to `length`."""
    return pad_rows(model.encode([case_fold(t) for t in texts] if lowercase else list(texts), max_length), length)


def encode_from_assets(assets: dict, side: str, vocabulary: Sequence[str], texts: Sequence[str],
                       max_length: int | None, length: int | None, lowercase: bool | None = None) -> np.ndarray:
    """Ids of one side from an export's `assets.json` (no TensorFlow): by the word rules, or by the
    side's subword model."""
    tokenizer = assets["tokenizer"]
    lowercase = tokenizer["lowercase"] if lowercase is None else lowercase
    if tokenizer.get("kind") == "subwords":
        return subword_rows(Subwords.from_text(tokenizer["subwords"][side]), texts, lowercase, max_length, length)
    return encode_batch(texts, vocabulary, assets["oov_id"], lowercase, max_length, length)


class TextClassificationPreprocessor(TextPreprocessor):
    """Texts -> token ids (batch, time), labels -> ids in the sorted order of the training labels.
    `max_length` cuts training texts only: dev, test and serving read whole texts (a recurrent
    classifier reads any length, and a review's verdict is often at its end).

    Example:
    >>> from types import SimpleNamespace as S
    >>> data = S(lowercase=True, vocab_size=100, min_count=1, max_length=None, length_percentile=100.0,
    ...          batch_size=2, bucketing=False, num_buckets=1)
    >>> p = TextClassificationPreprocessor(data)
    >>> p.fit([S(text="good film", label="pos"), S(text="bad", label="neg")])
    {'max_length': 2, 'num_classes': 2, 'vocab_size': 5}
    >>> p.encode_python(["Good movie"]).tolist()
    [[4, 1]]
    >>> p.encode_python(["bad film, good film"]).tolist()  # longer than max_length: read whole
    [[2, 3, 1, 4, 3]]
    """

    CUTS_INPUT = False

    def __init__(self, data, seed: int = 0, shuffle_buffer: int = 20000):
        super().__init__(data, seed, shuffle_buffer)
        self.vocab: Vocabulary | None = None
        self.labels: list[str] = []
        self.max_length: int | None = data.max_length

    def fit(self, examples) -> dict:
        """Fits on the training examples (`.text`, `.label`); returns the config values it resolves."""
        d = self.data
        self.vocab, lengths = self.fit_side("vocab", [e.text for e in examples], d.lowercase)
        self.labels = sorted({e.label for e in examples})
        if len(self.labels) < 2:
            raise DataError(f"train has a single label {self.labels!r}: a classifier needs at least two")
        self.notes[:0] = [f"train: {len(examples)} examples, {len(self.vocab)} tokens in the vocabulary, "
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
        """(token_ids, label_id) batches, bucketed by length; shuffled when `training`. Training
        texts are cut to `max_length`; others are read whole, as `tf_encode` reads them."""
        encoder = self.side_encoder("vocab", self.vocab, self.data.lowercase, self.max_length) if training \
            else self.tf_encoder()
        return labeled_text_dataset([e.text for e in examples], self.label_ids(examples), encoder,
                                    self.data.batch_size, self.boundaries,
                                    shuffle_buffer=self.shuffle_size(len(examples), training), seed=self.seed)

    def input_vocab(self):
        return "vocab", self.vocab

    def tables(self):
        return {"vocab": self.side_resources("vocab", self.vocab)}

    def save(self, directory: pathlib.Path) -> None:
        self.save_subwords(directory)
        self.vocab.save(directory / "vocab.txt")
        (directory / ".labels.txt.tmp").write_text("\n".join(self.labels) + "\n", encoding="utf-8")
        (directory / ".labels.txt.tmp").replace(directory / "labels.txt")
        write_json(directory / SETTINGS, {"max_length": self.max_length, "boundaries": self.boundaries})

    @classmethod
    def load(cls, directory: pathlib.Path, data, **options) -> "TextClassificationPreprocessor":
        p = cls(data, **options)
        p.load_subwords(directory)
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
        """Token ids from an export's `assets.json` settings (no TensorFlow, no Vocabulary): whole
        texts, right-padded, or cut and padded to `length` (the TFLite model's fixed input)."""
        return encode_from_assets(assets, "vocab", assets["vocabulary"], texts, None, length)


class TargetSide:
    """What a preprocessor of generated text has (a translator's target, a captioner's captions):
    a `target_vocab` with [BOS] and [EOS] after padding and OOV, `target_max_length` (with [EOS]),
    teacher forcing, and generated ids back to detokenized text, in TensorFlow and in Python.
    `target_lowercase` says whether the side is case-folded."""

    target_vocab: Vocabulary | None
    target_max_length: int | None
    target_lowercase = False

    @property
    def bos_id(self) -> int:
        return self.target_vocab.id_of(BOS)

    @property
    def eos_id(self) -> int:
        return self.target_vocab.id_of(EOS)

    def tf_target_encoder(self):
        """Target texts -> ragged ids, cut to leave room for [EOS]."""
        return self.side_encoder("target", self.target_vocab, self.target_lowercase, self.target_max_length - 1)

    def teacher_forcing(self):
        """A TensorFlow function: (batch,) target texts -> ragged (`[BOS] ids` decoder inputs,
        `ids [EOS]` targets). Made outside tf.data's functions: it holds the lookup table."""
        encode, bos, eos = self.tf_target_encoder(), self.bos_id, self.eos_id

        def split(targets):
            target = encode(targets)
            column = tf.concat([tf.shape(targets)[0:1], [1]], 0)  # (batch, 1)
            return tf.concat([tf.fill(column, bos), target], axis=1), tf.concat([target, tf.fill(column, eos)], axis=1)

        return split

    def target_text(self, target_tokens: tf.Tensor):
        """A TensorFlow function: (batch, steps) target ids -> (batch,) detokenized text, without
        padding, [UNK], [BOS] and [EOS] (every id up to `eos_id`). `target_tokens` is the
        vocabulary as a string tensor, held by the serving module that calls this."""
        eos, join = self.eos_id, tf_detokenize_pieces if "target" in self.subwords else tf_detokenize

        def ids_to_text(ids):
            return join(tf.ragged.boolean_mask(tf.gather(target_tokens, ids), ids > eos))

        return ids_to_text

    def target_assets(self) -> dict:
        """What `assets.json` says of the target side: enough to decode ids without TensorFlow."""
        return {"target_vocabulary": self.target_vocab.tokens, "tokenizer": self.tokenizer_assets(), "pad_id": PAD_ID,
                "oov_id": OOV_ID, "bos_id": self.bos_id, "eos_id": self.eos_id,
                "target_max_length": self.target_max_length,
                "detokenizer": "pipelines.subwords.detokenize" if self.subwords else "pipelines.text_rules.detokenize"}

    @staticmethod
    def decode_assets(assets: dict, rows) -> list[str]:
        """Target ids -> detokenized text without TensorFlow (ids up to [EOS] are special)."""
        vocabulary, eos_id = assets["target_vocabulary"], assets["eos_id"]
        join = detokenize_pieces if assets["tokenizer"].get("kind") == "subwords" else detokenize
        return [join([vocabulary[i] for i in row if i > eos_id]) for row in rows]


class Seq2SeqPreprocessor(TargetSide, TextPreprocessor):
    """Source texts -> ids; target texts -> `[BOS] ids` (decoder inputs) and `ids [EOS]` (the
    targets), cut to `target_max_length` with [EOS]; generated ids -> detokenized text.

    Source and target have vocabularies of their own; the target's reserves [BOS] and [EOS]
    after padding and OOV (`bos_id`, `eos_id`). Targets keep their case and spelling, since they
    are what the model writes: `data.lowercase` folds the source side only.
    """

    INPUT_SIDE = "source"

    def __init__(self, data, seed: int = 0, shuffle_buffer: int = 20000, target_max_length: int | None = None):
        super().__init__(data, seed, shuffle_buffer)
        self.source_vocab: Vocabulary | None = None
        self.target_vocab: Vocabulary | None = None
        self.max_length: int | None = data.max_length
        self.target_max_length = target_max_length

    def fit(self, pairs) -> dict:
        """Fits on training pairs (`.source`, `.target`); returns the config values it resolves."""
        d = self.data
        self.source_vocab, source_lengths = self.fit_side("source", [p.source for p in pairs], d.lowercase)
        self.target_vocab, target_lengths = self.fit_side("target", [p.target for p in pairs], False,
                                                          reserved=(BOS, EOS))
        target_lengths = [n + 1 for n in target_lengths]  # + [EOS]
        self.notes[:0] = [f"train: {len(pairs)} pairs; vocabularies: source {len(self.source_vocab)}, "
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
        return {"source": self.side_resources("source", self.source_vocab),
                "target": self.side_resources("target", self.target_vocab)}


    def input_vocab(self):
        return "source", self.source_vocab

    def dataset(self, pairs, training: bool) -> tf.data.Dataset:
        """((source_ids, target_in), target_out) batches, bucketed by source length."""
        encode_source, teacher_forcing = self.tf_encoder(), self.teacher_forcing()

        def encode(sources, targets):
            target_in, target_out = teacher_forcing(targets)
            return (encode_source(sources), target_in), target_out

        ds = tf.data.Dataset.from_tensor_slices(([p.source for p in pairs], [p.target for p in pairs]))
        if training:
            ds = ds.shuffle(self.shuffle_size(len(pairs), training), seed=self.seed)
        ds = ds.batch(256).map(encode, num_parallel_calls=tf.data.AUTOTUNE).unbatch()
        ds = ds.map(lambda inputs, out: (inputs, out))  # ragged rows -> dense tensors
        return ds.apply(pad_and_bucket(self.data.batch_size, self.boundaries)).prefetch(tf.data.AUTOTUNE)

    def save(self, directory: pathlib.Path) -> None:
        self.save_subwords(directory)
        self.source_vocab.save(directory / "source_vocab.txt")
        self.target_vocab.save(directory / "target_vocab.txt")
        write_json(directory / SETTINGS, {"max_length": self.max_length, "boundaries": self.boundaries,
                                           "target_max_length": self.target_max_length})

    @classmethod
    def load(cls, directory: pathlib.Path, data, **options) -> "Seq2SeqPreprocessor":
        p = cls(data, **options)
        p.load_subwords(directory)
        p.source_vocab = Vocabulary.load(directory / "source_vocab.txt")
        p.target_vocab = Vocabulary.load(directory / "target_vocab.txt")
        settings = read_json(directory / SETTINGS)
        p.max_length, p.boundaries = settings["max_length"], settings["boundaries"]
        p.target_max_length = settings["target_max_length"]
        return p

    def assets(self) -> dict:
        return {"source_vocabulary": self.source_vocab.tokens, **self.target_assets(), "max_length": self.max_length}

    @staticmethod
    def encode_assets(assets: dict, texts: Sequence[str], length: int | None = None) -> np.ndarray:
        return encode_from_assets(assets, "source", assets["source_vocabulary"], texts, assets["max_length"], length)
