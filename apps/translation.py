"""Translation (sequence to sequence): a bidirectional encoder, a decoder that attends to it,
teacher forcing in training, greedy / beam-search / sampling decoding at inference.

Data: `synthetic` (an invented language pair that needs reordering and agreement: see
`pipelines/synthetic_translation.py`), `tfds:NAME[/CONFIG]` for supervised translation datasets
(e.g. `tfds:ted_hrlr_translate/pt_to_en`), or a directory with `train.tsv` / `dev.tsv` /
`test.tsv` holding `source<TAB>target` per line. Metrics: BLEU and chrF (sacreBLEU, detokenized).

    rnnapps train translation --data synthetic --out runs/t1
    rnnapps predict runs/t1 "the big dog chases the cats" --beam 4 --plot
"""

from __future__ import annotations

import dataclasses
import pathlib

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from apps.config import ConfigError, DataConfig, RegularizationConfig, TrainConfig, choice, replace
from apps.encoders import encoder_implementation, recurrent_encoder, token_embedding
from apps.rundir import RunDir, atomic_write_json, save_model_atomic
from apps.training import evaluation_split, fit_run, log, make_optimizer, make_strategy, plot_history
from export import ExportError
from export.onnx import export_onnx
from export.parity import write_report
from export.tflite import export_tflite
from export.savedmodel import export_savedmodel
from layers import cells
from layers.attention_decoder import ATTENTIONS, AttentionDecoder
from layers.decoding import beam_search, greedy_search
from layers.masked_pooling import MaskedPooling
from pipelines import synthetic_translation
from pipelines.batching import bucket_boundaries, pad_and_bucket
from pipelines.errors import DataError
from pipelines.lengths import length_stats
from pipelines.sources import complete_splits, parse_source
from pipelines.text_encoding import pad_ids, text_encoder
from pipelines.text_files import find_split_files, read_pairs_tsv
from pipelines.text_rules import pad_rows
from pipelines.tokenization import tokenize_texts
from pipelines.vocabulary import PAD_ID, Vocabulary

NAME = "translation"
SYNTHETIC_SIZE = 6000
EXPORT_FORMATS = ("savedmodel", "onnx", "tflite")
BOS, EOS = "[BOS]", "[EOS]"
BOS_ID, EOS_ID = 2, 3  # after padding (0) and OOV (1) in the target vocabulary
DEMO_INPUTS = (
    "the big dog chases the cats",
    "the cats near the old horse see the bird",
    "the happy frogs follow the lazy fox",
)


# --- config -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    embedding_dim: int = 64
    units: int = 64  # encoder units per direction; the decoder has 2 * units
    encoder_cell: str = choice("lstm", cells.names())
    decoder_cell: str = choice("lstm", cells.step_names())  # the decoder runs one step at a time
    attention: str = choice("bahdanau", ATTENTIONS)
    attention_units: int = 64
    input_feeding: bool = True
    label_smoothing: float = 0.0
    source_vocab_size: int = 0  # resolved
    target_vocab_size: int = 0  # resolved
    implementation: str = ""  # resolved: the encoder's recurrent layer


@dataclasses.dataclass(frozen=True)
class DecodeConfig:
    target_max_length: int | None = None  # None: the training targets' length percentile (+ [EOS])
    beam_width: int = 4  # for --beam without a number, and the export's beam signature
    alpha: float = 0.6  # GNMT length penalty of beam search
    extra_length: int = 5  # decoding may run this many tokens past target_max_length


@dataclasses.dataclass(frozen=True)
class TranslationConfig:
    app: str = choice(NAME, (NAME,))
    seed: int = 42
    data: DataConfig = DataConfig(vocab_size=8000, batch_size=64, length_percentile=100.0)  # never cut sentences
    model: ModelConfig = ModelConfig()
    regularization: RegularizationConfig = RegularizationConfig()  # of the source embedding and the encoder
    decode: DecodeConfig = DecodeConfig()
    train: TrainConfig = TrainConfig(epochs=12, learning_rate=5e-3)

    @classmethod
    def smoke(cls) -> "TranslationConfig":
        return replace(cls(), **{"data.source": "synthetic?size=200", "data.batch_size": 32,
                                 "model.embedding_dim": 8, "model.units": 8, "model.attention_units": 8,
                                 "train.epochs": 2})


Config = TranslationConfig


# --- model --------------------------------------------------------------------------------


class MaskedCrossEntropy(keras.losses.Loss):
    """Token cross-entropy over non-padding targets, averaged per sequence, with optional label
    smoothing (the target distribution puts `label_smoothing` uniformly over the vocabulary)."""

    def __init__(self, label_smoothing: float = 0.0, name="masked_cross_entropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        log_probs = ops.log_softmax(y_pred, axis=-1)  # (batch, time, vocab)
        y_true = ops.cast(y_true, "int32")
        nll = -ops.take_along_axis(log_probs, ops.expand_dims(y_true, -1), axis=-1)[..., 0]
        loss = (1.0 - self.label_smoothing) * nll - self.label_smoothing * ops.mean(log_probs, axis=-1)
        mask = ops.cast(ops.not_equal(y_true, PAD_ID), loss.dtype)
        return ops.sum(loss * mask, axis=-1) / ops.maximum(ops.sum(mask, axis=-1), 1.0)

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


def build_model(config: TranslationConfig) -> keras.Model:
    """(source_ids, target_in) -> logits over the target vocabulary at every target step."""
    m = config.model
    if m.source_vocab_size < 3 or m.target_vocab_size < 5:
        raise ConfigError("model.source_vocab_size and model.target_vocab_size are resolved from the data")
    source_ids = keras.Input((None,), dtype="int32", name="source_ids")
    target_in = keras.Input((None,), dtype="int32", name="target_in")
    reg = config.regularization
    x = token_embedding(m.source_vocab_size, m.embedding_dim, reg, config.seed, name="source_embedding")(source_ids)
    memory = recurrent_encoder(m.encoder_cell, [m.units], reg, config.seed, name="encoder", bidirectional=True,
                               return_sequences=True)(x)  # (batch, src, 2u)
    memory_mask = ops.not_equal(source_ids, PAD_ID)
    summary = MaskedPooling("mean", name="memory_mean")(memory, mask=memory_mask)
    first_h = keras.layers.Dense(2 * m.units, activation="tanh", name="initial_state")(summary)
    logits = AttentionDecoder(m.target_vocab_size, m.embedding_dim, 2 * m.units, cell=m.decoder_cell,
                              attention=m.attention, attention_units=m.attention_units,
                              input_feeding=m.input_feeding, name="decoder")(
        target_in, memory, memory_mask=memory_mask, initial_state=first_h)
    return keras.Model([source_ids, target_in], logits, name=NAME)


def compile_model(model: keras.Model, config: TranslationConfig) -> None:
    model.compile(optimizer=make_optimizer(config.train), loss=MaskedCrossEntropy(config.model.label_smoothing))


# --- data ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Pair:
    source: str
    target: str
    where: str


def synthetic_splits(size: int, seed: int) -> dict[str, list[synthetic_translation.TranslationSample]]:
    return {"train": synthetic_translation.generate(size, seed),
            "dev": synthetic_translation.generate(max(size // 10, 1), seed + 1),
            "test": synthetic_translation.generate(max(size // 10, 1), seed + 2)}


def _tfds_pairs(name: str, split: str) -> list[Pair]:
    from pipelines.tfds_source import load_tfds_split

    ds, info = load_tfds_split(name, split)
    keys = info.supervised_keys
    if not keys or len(keys) != 2:
        raise DataError(f"tfds:{name} has no (source, target) supervised keys")
    pairs = []
    for i, row in enumerate(ds.as_numpy_iterator()):
        source, target = (row[k].decode("utf-8", errors="replace") for k in keys)
        if source.strip() and target.strip():
            pairs.append(Pair(source, target, f"tfds:{name}[{split}] #{i}"))
    if not pairs:
        raise DataError(f"tfds:{name} split {split!r} is empty")
    return pairs


def load_pairs(config: TranslationConfig) -> tuple[dict[str, list[Pair]], str]:
    spec = parse_source(config.data.source)
    if spec.kind == "synthetic":
        size, seed = spec.param("size", SYNTHETIC_SIZE), spec.param("seed", config.seed)
        if size < 10:
            raise DataError(f"synthetic size must be at least 10, received size={size}")
        splits = {name: [Pair(s.source, s.target, f"synthetic:{name} #{i}") for i, s in enumerate(samples)]
                  for name, samples in synthetic_splits(size, seed).items()}
        return splits, f"synthetic: train {size}, dev and test {max(size // 10, 1)} each (seed {seed})"
    if spec.kind == "tfds":
        from pipelines.tfds_source import split_names

        found = split_names(spec.name)
        splits = {split: _tfds_pairs(spec.name, name) for split, name in found.items()}
    else:
        files = find_split_files(spec.name, extensions=(".tsv",))
        splits = {}
        for split, path in files.items():
            splits[split] = [Pair(s, t, w) for s, t, w in read_pairs_tsv(path, ("source", "target"))]
            if not splits[split]:
                raise DataError(f"{path} is empty: the split has no examples")
        found = {split: pathlib.Path(path).name for split, path in files.items()}
    d = config.data
    return complete_splits(splits, found, d.dev_fraction, d.test_fraction, config.seed)


@dataclasses.dataclass(frozen=True)
class Assets:
    source_vocab: Vocabulary
    target_vocab: Vocabulary

    def save(self, directory: pathlib.Path) -> None:
        self.source_vocab.save(directory / "source_vocab.txt")
        self.target_vocab.save(directory / "target_vocab.txt")

    @classmethod
    def load(cls, directory: pathlib.Path) -> "Assets":
        return cls(Vocabulary.load(directory / "source_vocab.txt"), Vocabulary.load(directory / "target_vocab.txt"))


def prepare(config: TranslationConfig, splits) -> tuple[TranslationConfig, Assets]:
    d = config.data
    train = splits["train"]
    source_tokens = tokenize_texts([p.source for p in train], d.lowercase)
    target_tokens = tokenize_texts([p.target for p in train], d.lowercase)
    source_vocab = Vocabulary.build(source_tokens, max_size=d.vocab_size, min_count=d.min_count)
    target_vocab = Vocabulary.build(target_tokens, max_size=d.vocab_size, min_count=d.min_count, reserved=(BOS, EOS))
    source_stats = length_stats([len(t) for t in source_tokens], d.length_percentile)
    target_stats = length_stats([len(t) + 1 for t in target_tokens], d.length_percentile)  # + [EOS]
    log(f"train: {len(train)} pairs; vocabularies: source {len(source_vocab)}, target {len(target_vocab)}")
    log(f"source {source_stats.describe()}")
    log(f"target (with [EOS]) {target_stats.describe()}")
    max_length = d.max_length if d.max_length is not None else source_stats.at_percentile
    target_max = config.decode.target_max_length or target_stats.at_percentile
    log(f"max_length = {max_length} (source), target_max_length = {target_max}")
    resolved = replace(config, **{
        "data.max_length": max_length, "decode.target_max_length": target_max,
        "model.source_vocab_size": len(source_vocab), "model.target_vocab_size": len(target_vocab),
        "model.implementation": encoder_implementation(config.model.encoder_cell, config.regularization),
    })
    return resolved, Assets(source_vocab, target_vocab)


def make_dataset(pairs: list[Pair], assets: Assets, config: TranslationConfig, training: bool) -> tf.data.Dataset:
    """((source_ids, target_in), target_out) batches, bucketed by source length."""
    d, target_max = config.data, config.decode.target_max_length
    source_lengths = [len(t) for t in tokenize_texts([p.source for p in pairs], d.lowercase)]
    target_lengths = [len(t) + 1 for t in tokenize_texts([p.target for p in pairs], d.lowercase)]
    cut = sum(n > target_max for n in target_lengths)
    if cut:
        log(f"warning: {cut} of {len(pairs)} targets are longer than target_max_length={target_max} "
            "and were truncated")
    cut = sum(n > d.max_length for n in source_lengths)
    if cut:
        log(f"warning: {cut} of {len(pairs)} sources are longer than max_length={d.max_length} and were truncated")
    encode_source = text_encoder(assets.source_vocab.lookup_table(), d.lowercase, d.max_length)
    encode_target = text_encoder(assets.target_vocab.lookup_table(), d.lowercase, target_max - 1)

    def encode(sources, targets):
        target = encode_target(targets)
        batch = tf.shape(targets)[0:1]
        target_in = tf.concat([tf.fill(tf.concat([batch, [1]], 0), BOS_ID), target], axis=1)
        target_out = tf.concat([target, tf.fill(tf.concat([batch, [1]], 0), EOS_ID)], axis=1)
        return (encode_source(sources), target_in), target_out

    ds = tf.data.Dataset.from_tensor_slices(([p.source for p in pairs], [p.target for p in pairs]))
    if training:
        ds = ds.shuffle(min(config.train.shuffle_buffer, len(pairs)), seed=config.seed)
    ds = ds.batch(256).map(encode, num_parallel_calls=tf.data.AUTOTUNE).unbatch()
    ds = ds.map(lambda inputs, out: (inputs, out))  # ragged rows -> dense tensors
    boundaries = bucket_boundaries(source_lengths, d.num_buckets, d.max_length) if d.bucketing else None
    return ds.apply(pad_and_bucket(d.batch_size, boundaries)).prefetch(tf.data.AUTOTUNE)


# --- inference ----------------------------------------------------------------------------


def detokenize(tokens: list[str]) -> str:
    """Joins word tokens, without spaces before closing punctuation or after opening ones."""
    import regex

    text = " ".join(tokens)
    text = regex.sub(r" ([\p{Pe}\p{Pf}.,!?;:%])", r"\1", text)
    return regex.sub(r"([\p{Ps}\p{Pi}]) ", r"\1", text)


class Translator(tf.Module):
    """Raw source strings in, translations out (greedy or beam search), all in-graph."""

    def __init__(self, model: keras.Model, assets: Assets, config: TranslationConfig):
        super().__init__()
        self.model = model
        self.config = config
        self.source_table = assets.source_vocab.lookup_table()
        self.target_tokens = tf.constant(assets.target_vocab.tokens)
        self.encoder = keras.Model(model.get_layer("source_ids").output,
                                   [model.get_layer("encoder").output, model.get_layer("initial_state").output])
        self.decoder = model.get_layer("decoder")
        self.encode_source = text_encoder(self.source_table, config.data.lowercase, config.data.max_length)
        self.encode_target = text_encoder(assets.target_vocab.lookup_table(), config.data.lowercase,
                                          config.decode.target_max_length - 1)
        self._decoders = {}  # beam width -> traced decoding of strings
        self.max_decode = config.decode.target_max_length + config.decode.extra_length

    def start(self, source_ids):
        """Decoder states for a batch of source ids: cell states plus the memory they attend to."""
        memory, first_h = self.encoder(source_ids)
        memory_mask = tf.not_equal(source_ids, PAD_ID)
        keys = self.decoder.prepare_memory(memory, memory_mask)
        return (self.decoder.initial_states(first_h), memory, keys, memory_mask)

    def step(self, token_ids, states):
        cell_states, memory, keys, memory_mask = states
        logits, cell_states, weights = self.decoder.step(token_ids, cell_states, memory, keys, memory_mask)
        return logits, (cell_states, memory, keys, memory_mask), weights

    def state_names(self) -> list[str]:
        return [f"state_{i}" for i in range(len(self.decoder.state_sizes()))]

    def encode_function(self):
        """source_ids -> what the decoder steps need: memory, keys and the first states."""

        @tf.function
        def encode(source_ids):
            memory, first_h = self.encoder(source_ids)
            keys = self.decoder.prepare_memory(memory, tf.not_equal(source_ids, PAD_ID))
            states = self.decoder.initial_states(first_h)
            return {"memory": memory, "keys": keys, **dict(zip(self.state_names(), states))}

        return encode

    def step_function(self):
        """One decoder step for host-side loops and streaming: previous token and states in,
        logits, attention and new states out (the source ids give the memory mask)."""
        names = self.state_names()

        @tf.function
        def decoder_step(token_ids, source_ids, memory, keys, *states):
            logits, states, weights = self.decoder.step(token_ids, list(states), memory, keys,
                                                        tf.not_equal(source_ids, PAD_ID))
            return {"logits": logits, "attention": weights, **dict(zip(names, states))}

        return decoder_step

    def step_signature(self, batch=None, source_length=None) -> list[tf.TensorSpec]:
        decoder = self.decoder
        return [tf.TensorSpec([batch], tf.int32, name="token_ids"),
                tf.TensorSpec([batch, source_length], tf.int32, name="source_ids"),
                tf.TensorSpec([batch, source_length, decoder.memory_dim], tf.float32, name="memory"),
                tf.TensorSpec(decoder.keys_shape(batch, source_length), tf.float32, name="keys"),
                *[tf.TensorSpec([batch, size], tf.float32, name=name)
                  for name, size in zip(self.state_names(), decoder.state_sizes())]]

    def ids_to_text(self, ids):
        """(batch, steps) target ids -> (batch,) strings; special tokens dropped."""
        keep = ids > EOS_ID
        words = tf.ragged.boolean_mask(tf.gather(self.target_tokens, ids), keep)
        return tf.strings.reduce_join(words, axis=-1, separator=" ")

    def decode_ids(self, source_ids, beam_width: int = 0):
        batch = tf.shape(source_ids)[0]
        states = self.start(source_ids)
        if beam_width:
            tokens, *_ = beam_search(self.step, states, batch, BOS_ID, EOS_ID, self.max_decode,
                                     beam_width=beam_width, alpha=self.config.decode.alpha)
            return tokens[:, 0]
        return greedy_search(self.step, states, batch, BOS_ID, EOS_ID, self.max_decode)[0]

    def translate_texts(self, texts, beam_width: int = 0):
        """Translations of a batch of strings, with a graph traced once per beam width."""
        if beam_width not in self._decoders:
            self._decoders[beam_width] = tf.function(
                lambda t: self.ids_to_text(self.decode_ids(pad_ids(self.encode_source(t)), beam_width)),
                input_signature=[tf.TensorSpec([None], tf.string)])
        return self._decoders[beam_width](texts)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="texts")])
    def translate(self, texts):
        return {"translation": self.ids_to_text(self.decode_ids(pad_ids(self.encode_source(texts))))}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="texts")])
    def translate_beam(self, texts):
        ids = pad_ids(self.encode_source(texts))
        return {"translation": self.ids_to_text(self.decode_ids(ids, self.config.decode.beam_width))}


def step_greedy(encode, step, source_ids: np.ndarray, state_names: list[str], max_decode: int) -> list[int]:
    """Greedy decoding of one source (1, time) with an encoder and a step model (any runtime
    whose callables take and return numpy dicts): the host-side loop of the step exports."""
    encoded = encode(source_ids=source_ids)
    states = {name: encoded[name] for name in state_names}
    token, out = BOS_ID, []
    for _ in range(max_decode):
        result = step(token_ids=np.array([token], np.int32), source_ids=source_ids, memory=encoded["memory"],
                      keys=encoded["keys"], **states)
        token = int(np.argmax(result["logits"][0]))
        out.append(token)
        states = {name: result[name] for name in state_names}
        if token == EOS_ID:
            break
    return out


def load_run(run_dir):
    run = RunDir(run_dir).require_complete()
    config = run.read_config(TranslationConfig)
    model = keras.saving.load_model(run.model, safe_mode=True, compile=False)
    return run, config, model, Assets.load(run.assets)


def _translate(translator: Translator, texts: list[str], beam: int) -> list[str]:
    out = []
    for start in range(0, len(texts), 256):
        result = translator.translate_texts(tf.constant(texts[start:start + 256]), beam)
        out.extend(detokenize(t.decode("utf-8").split()) for t in result.numpy())
    return out


def score(hypotheses: list[str], references: list[str]) -> dict:
    import sacrebleu

    return {"bleu": float(sacrebleu.corpus_bleu(hypotheses, [references]).score),
            "chrf": float(sacrebleu.corpus_chrf(hypotheses, [references]).score)}


# --- commands -----------------------------------------------------------------------------


def train(config: TranslationConfig, out, strategy: str = "default", callbacks=()) -> dict:
    keras.utils.set_random_seed(config.seed)
    splits, origin = load_pairs(config)
    config = replace(config, **{"data.splits": origin})
    config, assets = prepare(config, splits)
    datasets = {name: make_dataset(splits[name], assets, config, training=name == "train") for name in ("train", "dev")}
    with make_strategy(strategy).scope():  # a bad model or optimizer setting fails before the run exists
        model = build_model(config)
        compile_model(model, config)
    run = RunDir(out)
    run.start(config)
    assets.save(run.assets)
    fit_run(model, run, datasets["train"], datasets["dev"], config.train.epochs, monitor="val_loss", mode="min",
            callbacks=callbacks)
    plot_history(run, metrics=("loss",))
    translator = Translator(model, assets, config)
    test = splits["test"]
    metrics = {**score(_translate(translator, [p.source for p in test], 0), [p.target for p in test]),
               "examples": len(test), "decoder": "greedy"}
    atomic_write_json(run.metrics("test"), metrics)
    save_model_atomic(model, run.model)  # last: marks the run as finished
    return metrics


def evaluate(run_dir, source: str | None = None, split: str = "test", beam: int = 0) -> dict:
    run, config, model, assets = load_run(run_dir)
    config, pairs = evaluation_split(config, source, split, load_pairs)
    translator = Translator(model, assets, config)
    metrics = {**score(_translate(translator, [p.source for p in pairs], beam), [p.target for p in pairs]),
               "examples": len(pairs), "decoder": f"beam {beam}" if beam else "greedy"}
    atomic_write_json(run.metrics(split), metrics)
    return metrics


def attention_map(translator: Translator, assets: Assets, source: str, target: str):
    """Teacher-forced attention weights of `target` given `source`: (target tokens + [EOS], source tokens)."""
    source_ids = pad_ids(translator.encode_source(tf.constant([source])))
    target_ids = translator.encode_target(tf.constant([target])).to_tensor()
    target_in = tf.concat([[[BOS_ID]], target_ids], axis=1)
    memory, first_h = translator.encoder(source_ids)
    _, weights = translator.decoder(target_in, memory, memory_mask=tf.not_equal(source_ids, PAD_ID),
                                    initial_state=first_h, return_attention=True)
    source_tokens = assets.source_vocab.decode(source_ids.numpy()[0])
    target_tokens = assets.target_vocab.decode(target_ids.numpy()[0]) + [EOS]
    return weights.numpy()[0, : len(target_tokens), : len(source_tokens)], source_tokens, target_tokens


def plot_attention(path, weights, source_tokens, target_tokens) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1 + 0.5 * len(source_tokens), 1 + 0.4 * len(target_tokens)))
    ax.imshow(weights, cmap="viridis", vmin=0, vmax=1)
    ax.set_xticks(range(len(source_tokens)), source_tokens, rotation=60, ha="right")
    ax.set_yticks(range(len(target_tokens)), target_tokens)
    ax.set_xlabel("source")
    ax.set_ylabel("translation")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def predict(run_dir, texts: list[str], beam: int = 0, plot: bool = False) -> list[dict]:
    if not texts:
        raise DataError("nothing to predict: give texts as arguments or --file PATH")
    run, config, model, assets = load_run(run_dir)
    translator = Translator(model, assets, config)
    translations = _translate(translator, texts, beam)
    rows = [{"text": t, "translation": tr} for t, tr in zip(texts, translations)]
    if plot:
        for i, row in enumerate(rows):
            weights, src, tgt = attention_map(translator, assets, row["text"], row["translation"])
            path = run.plots / f"attention-{i}.png"
            plot_attention(path, weights, src, tgt)
            row["plot"] = str(path)
    return rows


def export(run_dir, out_dir, formats: list[str]) -> dict:
    """Writes the requested formats and `assets.json`, each checked against the in-process translator.

    - savedmodel: `serving_default` translates raw strings greedily, `beam` with beam search;
    - onnx: `model.onnx` (greedy) and `model_beam.onnx`: source_ids (batch, time) -> target_ids,
      the decoding loop included (an ONNX `Loop`); ids from `pipelines/text_rules.py`.
    - tflite: the decoding loop's tensor list does not lower to builtin TFLite ops, so TFLite
      gets `encoder.tflite` (source_ids (1, max_length) -> memory, keys, states) and
      `decoder_step.tflite` (one step), and the loop runs on the host (`step_greedy`); checked
      end to end against the translator's greedy ids.
    The SavedModel also has `encode` and `decoder_step` signatures (dynamic shapes) for
    host-side loops and streaming.
    """
    _, config, model, assets = load_run(run_dir)
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    translator = Translator(model, assets, config)
    samples = [*DEMO_INPUTS, "", "an unknown wordzz"]
    report = {}
    if "savedmodel" in formats:
        texts = tf.constant(samples)
        reference = {"translation": translator.translate(texts)["translation"].numpy()}
        report["savedmodel"] = export_savedmodel(
            tf.Module(), {"serving_default": translator.translate.get_concrete_function(),
                          "beam": translator.translate_beam.get_concrete_function(),
                          "encode": translator.encode_function().get_concrete_function(
                              tf.TensorSpec([None, None], tf.int32, name="source_ids")),
                          "decoder_step": translator.step_function().get_concrete_function(
                              *translator.step_signature())},
            out / "savedmodel", {"texts": texts}, reference, trackable={"translator": translator})
    if "onnx" in formats:
        ids = pad_ids(translator.encode_source(tf.constant(samples))).numpy()
        spec = [tf.TensorSpec([None, None], tf.int32, name="source_ids")]
        for name, beam in (("onnx", 0), ("onnx_beam", config.decode.beam_width)):
            decode = tf.function(lambda source_ids, beam=beam: {"target_ids": translator.decode_ids(source_ids, beam)})
            report[name] = export_onnx(decode, spec, out / ONNX_FILES[name], {"source_ids": ids},
                                       {"target_ids": decode(ids)["target_ids"].numpy()}, atol=0)
    if "tflite" in formats:
        report.update(_export_tflite_steps(translator, model, samples, out))
    atomic_write_json(out / "assets.json", {
        "app": NAME, "source_vocabulary": assets.source_vocab.tokens, "target_vocabulary": assets.target_vocab.tokens,
        "tokenizer": {"lowercase": config.data.lowercase, "rules": "pipelines/text_rules.py"},
        "pad_id": PAD_ID, "oov_id": 1, "bos_id": BOS_ID, "eos_id": EOS_ID, "max_length": config.data.max_length,
        "target_max_length": config.decode.target_max_length, "max_decode_length": translator.max_decode,
        "signatures": {"serving_default": "greedy", "beam": f"beam search, width {config.decode.beam_width}",
                       "encode": "source_ids -> memory, keys, state_*",
                       "decoder_step": "token_ids, source_ids, memory, keys, state_* -> logits, attention, state_*"},
        "tflite": {"encoder.tflite": "source_ids (1, max_length) -> memory, keys, state_*",
                   "decoder_step.tflite": "one greedy step at batch 1; the loop runs on the host"},
        "onnx": {"model.onnx": "greedy", "model_beam.onnx": f"beam search, width {config.decode.beam_width}",
                 "inputs": {"source_ids": "int32 (batch, time), cut to max_length, right-padded with pad_id"},
                 "outputs": {"target_ids": "int32 (batch, steps), ending with eos_id, then pad_id"}},
    })
    write_report(out / "parity.json", report)
    return report


ONNX_FILES = {"onnx": "model.onnx", "onnx_beam": "model_beam.onnx"}


def _export_tflite_steps(translator: Translator, model, samples: list[str], out: pathlib.Path) -> dict:
    """encoder.tflite and decoder_step.tflite at batch 1 and the source length max_length,
    each checked numerically, then the host loop checked against the translator's greedy ids."""
    from export.tflite import TFLiteRunner

    length = translator.config.data.max_length
    source_ids = pad_rows(pad_ids(translator.encode_source(tf.constant(samples))).numpy(), length)
    encode = translator.encode_function()
    encoded = {k: v.numpy() for k, v in encode(source_ids).items()}
    report = {"tflite_encoder": export_tflite(
        encode, [tf.TensorSpec([1, length], tf.int32, name="source_ids")], out / "encoder.tflite",
        {"source_ids": source_ids}, encoded, trackable_obj=model)}
    step = translator.step_function()
    names = translator.state_names()
    step_inputs = {"token_ids": np.full([len(samples)], BOS_ID, np.int32), "source_ids": source_ids,
                   "memory": encoded["memory"], "keys": encoded["keys"], **{n: encoded[n] for n in names}}
    signature = translator.step_signature(batch=1, source_length=length)
    reference = {k: v.numpy() for k, v in step(*[tf.constant(step_inputs[s.name]) for s in signature]).items()}
    report["tflite_step"] = export_tflite(step, signature, out / "decoder_step.tflite", step_inputs, reference,
                                          trackable_obj=model)
    # End to end: the host loop over the two TFLite models gives the translator's greedy ids.
    encoder_runner, step_runner = TFLiteRunner(out / "encoder.tflite"), TFLiteRunner(out / "decoder_step.tflite")
    expected = translator.decode_ids(tf.constant(source_ids)).numpy()
    for row, want in zip(source_ids, expected):
        got = step_greedy(encoder_runner, step_runner, row[None], names, translator.max_decode)
        want = [int(t) for t in want if t != PAD_ID]
        if got != want:
            (out / "encoder.tflite").unlink()
            (out / "decoder_step.tflite").unlink()
            raise ExportError(f"tflite parity failed: the host loop decoded {got}, the translator {want}")
    return report


def demo_config() -> TranslationConfig:
    return TranslationConfig()


def predict_exported(export_dir, runtime: str, texts: list[str]) -> list[dict]:
    """Translations from an export directory: the SavedModel, or ONNX with this project's own
    pre- and post-processing (no TensorFlow model involved)."""
    from export.runtimes import load_runner, read_assets
    from pipelines.text_rules import encode_text

    if not texts:
        raise DataError("nothing to predict: give texts as arguments or --file PATH")
    assets = read_assets(export_dir)
    if runtime == "savedmodel":
        outputs = load_runner(export_dir, runtime, signature="serving_default")(texts=np.array(texts, dtype=object))
        translations = [tr.decode("utf-8").split() for tr in outputs["translation"]]
    elif runtime == "onnx":
        ids_map = {token: i for i, token in enumerate(assets["source_vocabulary"])}
        rows = [encode_text(t, ids_map, assets["oov_id"], assets["tokenizer"]["lowercase"], assets["max_length"])
                for t in texts]
        source_ids = pad_rows(rows)
        target_ids = load_runner(export_dir, "onnx")(source_ids=source_ids)["target_ids"]
        vocabulary = assets["target_vocabulary"]
        translations = [[vocabulary[i] for i in row if i > assets["eos_id"]] for row in target_ids]
    else:
        from export.tflite import TFLiteRunner

        export_dir = pathlib.Path(export_dir)
        for name in ("encoder.tflite", "decoder_step.tflite"):
            if not (export_dir / name).exists():
                raise ExportError(f"{export_dir} has no {name}: export it with --format tflite")
        ids_map = {token: i for i, token in enumerate(assets["source_vocabulary"])}
        encoder, step = TFLiteRunner(export_dir / "encoder.tflite"), TFLiteRunner(export_dir / "decoder_step.tflite")
        state_names = sorted(n for n in step.input_shapes if n.startswith("state_"))
        vocabulary, translations = assets["target_vocabulary"], []
        for text in texts:
            row = encode_text(text, ids_map, assets["oov_id"], assets["tokenizer"]["lowercase"], assets["max_length"])
            source_ids = pad_rows([row], assets["max_length"])
            ids = step_greedy(encoder, step, source_ids, state_names, assets["max_decode_length"])
            translations.append([vocabulary[i] for i in ids if i > assets["eos_id"]])
    return [{"text": t, "translation": detokenize(tr)} for t, tr in zip(texts, translations)]
