"""What the sequence-to-sequence apps share: decoding with an encoder and an `AttentionDecoder`
(in-graph greedy and beam search, and the encoder and one decoder step as functions for
host-side loops and step exports, `export.step_loop`), and their text metrics."""

from __future__ import annotations

import dataclasses
import inspect

import keras
import tensorflow as tf

from layers.decoding import beam_search, greedy_search
from pipelines.vocabulary import PAD_ID


@dataclasses.dataclass(frozen=True)
class DecodeConfig:
    """How the sequence-to-sequence apps decode."""

    target_max_length: int | None = None  # None: the training targets' length percentile (+ [EOS])
    beam_width: int = 4  # for --beam without a number, and the export's beam signature
    alpha: float = 0.6  # GNMT length penalty of beam search
    extra_length: int = 5  # decoding may run this many tokens past target_max_length


def named_function(function, names: list[str]):
    """A tf.function of `function(*args)` whose parameters are called `names`: tf2onnx names a
    graph's inputs after the parameters, and `*states` would give `states`, `states_1`, ..."""
    def call(*args):
        return function(*args)

    call.__signature__ = inspect.Signature([inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD)
                                            for n in names])
    return tf.function(call)


def translation_scores(hypotheses: list[str], references: list[str]) -> dict:
    """BLEU and chrF as sacreBLEU's defaults compute them (cased, 13a tokenization of detokenized
    text), and BLEU lowercased (`bleu_lowercase`, as older papers report it)."""
    import sacrebleu

    refs = [list(references)]
    return {"bleu": round(float(sacrebleu.corpus_bleu(hypotheses, refs).score), 6),
            "chrf": round(float(sacrebleu.corpus_chrf(hypotheses, refs).score), 6),
            "bleu_lowercase": round(float(sacrebleu.corpus_bleu(hypotheses, refs, lowercase=True).score), 6)}


def caption_scores(hypotheses: list[str], references: list[tuple[str, ...]]) -> dict:
    """BLEU-4 as sacreBLEU computes it, each hypothesis against all its references (as many as
    there are: shorter reference streams are padded with None)."""
    import sacrebleu

    streams = [[refs[k] if k < len(refs) else None for refs in references]
               for k in range(max(len(r) for r in references))]
    return {"bleu4": round(float(sacrebleu.corpus_bleu(hypotheses, streams).score), 6)}


class AttentionDecoding(tf.Module):
    """`encoder`: a Keras model from the source (ids (batch, time) for translation, images for
    captioning) to (memory (batch, positions, d), first decoder state (batch, units)); `decoder`:
    the model's `AttentionDecoder`. `memory_mask(source)` says which memory positions the
    attention sees: source ids holding `PAD_ID` are masked out; a subclass may see them all."""

    def __init__(self, encoder: keras.Model, decoder, bos_id: int, eos_id: int, max_decode: int, alpha: float = 0.6):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder
        self.bos_id, self.eos_id, self.max_decode, self.alpha = bos_id, eos_id, max_decode, alpha
        self.state_names = [f"state_{i}" for i in range(len(decoder.state_sizes()))]
        self._decoders = {}  # beam width -> traced decoding of raw inputs to text

    def decode_text(self, raw, beam_width: int = 0):
        """Raw inputs (`raw_spec`: strings, images) -> (batch,) text, greedy or beam search; one
        graph traced per beam width. Subclasses set `raw_spec`, `ids_to_text` and `prepare`."""
        if beam_width not in self._decoders:
            self._decoders[beam_width] = tf.function(
                lambda x: self.ids_to_text(self.decode_ids(self.prepare(x), beam_width)),
                input_signature=[self.raw_spec])
        return self._decoders[beam_width](raw)

    def prepare(self, raw):
        """Raw inputs -> what the encoder takes (identity by default)."""
        return raw

    def start(self, source_ids):
        """Decoder states for a batch of source ids: cell states plus the memory they attend to."""
        memory, first_h = self.encoder(source_ids)
        memory_mask = self.memory_mask(source_ids)
        keys = self.decoder.prepare_memory(memory, memory_mask)
        return (self.decoder.initial_states(first_h), memory, keys, memory_mask)

    def memory_mask(self, source):
        """(batch, positions) bool, or None for all positions."""
        return tf.not_equal(source, PAD_ID)

    def step(self, token_ids, states):
        cell_states, memory, keys, memory_mask = states
        logits, cell_states, weights = self.decoder.step(token_ids, cell_states, memory, keys, memory_mask)
        return logits, (cell_states, memory, keys, memory_mask), weights

    def decode_ids(self, source_ids, beam_width: int = 0):
        """(batch, steps) target ids, greedy or the best of a beam search, [EOS] then padding."""
        batch = tf.shape(source_ids)[0]
        states = self.start(source_ids)
        if beam_width:
            tokens, *_ = beam_search(self.step, states, batch, self.bos_id, self.eos_id, self.max_decode,
                                     beam_width=beam_width, alpha=self.alpha)
            return tokens[:, 0]
        return greedy_search(self.step, states, batch, self.bos_id, self.eos_id, self.max_decode)[0]

    @tf.function
    def encode(self, source_ids):
        """source_ids -> what the decoder steps need: memory, keys and the first states."""
        cell_states, memory, keys, _ = self.start(source_ids)
        return {"memory": memory, "keys": keys, **dict(zip(self.state_names, cell_states))}

    @tf.function
    def decoder_step(self, token_ids, source_ids, memory, keys, *states):
        """One step: previous token and states in; logits, attention and new states out."""
        logits, states, weights = self.decoder.step(token_ids, list(states), memory, keys,
                                                    tf.not_equal(source_ids, PAD_ID))
        return {"logits": logits, "attention": weights, **dict(zip(self.state_names, states))}

    def step_signature(self, batch=None, source_length=None) -> list[tf.TensorSpec]:
        d = self.decoder
        return [tf.TensorSpec([batch], tf.int32, name="token_ids"),
                tf.TensorSpec([batch, source_length], tf.int32, name="source_ids"),
                tf.TensorSpec([batch, source_length, d.memory_dim], tf.float32, name="memory"),
                tf.TensorSpec(d.keys_shape(batch, source_length), tf.float32, name="keys"),
                *[tf.TensorSpec([batch, size], tf.float32, name=name)
                  for name, size in zip(self.state_names, d.state_sizes())]]
