"""Subword tokenization: a SentencePiece unigram model (Kudo, 2018) learned from the training
split, on this machine (the `sentencepiece` package; no network), so that a rare or unseen word
is split into known pieces instead of becoming OOV.

- Pieces mark a preceding space with "▁", so detokenization is exact: the pieces joined, "▁"
  turned back into spaces (runs of whitespace come back as one space).
- Ids follow the vocabulary convention of `pipelines.vocabulary`: [PAD] 0, [UNK] 1, then the
  reserved markers ([BOS], [EOS]) of a target side, then the learned pieces; `vocabulary()`
  gives them as a `Vocabulary`.
- Twins: `tf_encoder` (tensorflow-text's SentencepieceTokenizer: tf.data and SavedModels) and
  `encode` (the `sentencepiece` package, no TensorFlow: onnxruntime and TFLite clients) give the
  same ids from the same model bytes; `detokenize` (Python) and `pipelines.tokenization`'s
  `detokenize_pieces` (TensorFlow) the same text.

No case folding here: the caller folds (`text_rules.case_fold`, `tokenization.case_fold`)
when its side is lowercased.
"""

from __future__ import annotations

import base64
import contextlib
import io
from collections.abc import Iterable, Sequence

from pipelines.errors import DataError
from pipelines.vocabulary import OOV_ID, OOV_TOKEN, PAD_ID, PAD_TOKEN, Vocabulary

# What the TensorFlow tokenizer is created in: the apps silence the op's C++ log line there
# (`export.stderr`, which pipelines does not import).
TOKENIZER_CREATION = contextlib.nullcontext
SPACE = "\u2581"  # "▁", SentencePiece's mark of a preceding space
MARKERS = ("[BOS]", "[EOS]")  # the reserved ids 2 and 3 of a target side


class Subwords:
    """A learned SentencePiece model, held as its serialized bytes (`proto`)."""

    def __init__(self, proto: bytes):
        import sentencepiece

        self.proto = proto
        self.processor = sentencepiece.SentencePieceProcessor(model_proto=proto)
        self._tf_tokenizer = None

    @classmethod
    def learn(cls, texts: Iterable[str], vocab_size: int, markers: bool = False, seed: int = 0) -> "Subwords":
        """A unigram model of at most `vocab_size` pieces (fewer when the text has fewer) over
        every character of `texts`; `markers` reserves [BOS] and [EOS] (ids 2 and 3)."""
        import sentencepiece

        if vocab_size < 8:
            raise DataError(f"data.subword_vocab_size must be at least 8, received {vocab_size}")
        model = io.BytesIO()
        sentencepiece.set_random_generator_seed(seed)
        sentencepiece.SentencePieceTrainer.train(
            sentence_iterator=(t for t in texts if t.strip()), model_writer=model, vocab_size=vocab_size,
            model_type="unigram", character_coverage=1.0, normalization_rule_name="identity",
            pad_id=PAD_ID, unk_id=OOV_ID, pad_piece=PAD_TOKEN, unk_piece=OOV_TOKEN,
            bos_id=2 if markers else -1, eos_id=3 if markers else -1, bos_piece=MARKERS[0], eos_piece=MARKERS[1],
            hard_vocab_limit=False, input_sentence_size=2_000_000, shuffle_input_sentence=True, num_threads=2,
            minloglevel=2)
        return cls(model.getvalue())

    def vocabulary(self) -> Vocabulary:
        return Vocabulary([self.processor.id_to_piece(i) for i in range(self.processor.get_piece_size())])

    def encode(self, texts: Sequence[str], max_length: int | None = None) -> list[list[int]]:
        """Piece ids of each text, cut to `max_length` (the Python twin of `tf_encoder`)."""
        rows = self.processor.encode(list(texts))
        return [row[:max_length] if max_length is not None else row for row in rows]

    def tf_tokenizer(self):
        """tensorflow-text's tokenizer of this model, made once (a serving module tracks it: the
        SavedModel holds the model bytes)."""
        if self._tf_tokenizer is None:
            import tensorflow as tf
            import tensorflow_text as tf_text

            with TOKENIZER_CREATION():  # the op's C++ "normalizer.cc ... LOG(INFO)" line
                self._tf_tokenizer = tf_text.SentencepieceTokenizer(model=self.proto, out_type=tf.int32)
        return self._tf_tokenizer

    def tf_encoder(self, max_length: int | None = None):
        """(batch,) strings -> ragged int32 piece ids (batch, None), cut to `max_length`."""
        tokenizer = self.tf_tokenizer()

        def encode(texts):
            ids = tokenizer.tokenize(texts)
            return ids[:, :max_length] if max_length is not None else ids

        return encode

    def to_text(self) -> str:
        """The model as ASCII (base64), for `assets.json`."""
        return base64.b64encode(self.proto).decode("ascii")

    @classmethod
    def from_text(cls, text: str) -> "Subwords":
        return cls(base64.b64decode(text))


def detokenize(pieces: Sequence[str]) -> str:
    """Pieces back to text: joined, "▁" as spaces, the leading one dropped.

    Example:
    >>> detokenize(["▁Der", "▁Hund", "▁läuft", "."])
    'Der Hund läuft.'
    """
    return "".join(pieces).replace(SPACE, " ").strip(" ")
