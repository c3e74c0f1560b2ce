"""Part-of-speech tagging (many-to-many, synced): a tag for every word, read with context from both
sides and with the word's spelling for words never seen in training.

Data: `synthetic` (a small grammar whose ambiguous words need context, with made-up open-class
words: see `pipelines/synthetic_tagging.py`), `tfds:universal_dependencies/en_gum` (or another
TFDS dataset with `tokens` and a tag sequence), or a directory with `*train*.conllu`,
`*dev*.conllu`, `*test*.conllu` (UPOS by default, `--set data.tag_column=xpos`). Metrics:
`accuracy` over all words and `accuracy_oov` over words whose (case-folded) form train lacks.

    rnnapps train tagging --data path/to/UD_English-GUM --out runs/pos
    rnnapps predict runs/pos "I can book a flight back to Boston."
"""

from __future__ import annotations

import dataclasses
import os
import typing

import keras
import numpy as np
import tensorflow as tf

from apps.app import App, ExportTargets, Loaded, Target
from apps.config import ConfigError, DataConfig, RegularizationConfig, TrainConfig, choice, replace
from apps.encoders import encoder_implementation, recurrent_encoder, token_embedding
from apps.training import Progress, log
from export.runtimes import NUMERIC_SIGNATURE, load_runner
from layers import cells
from layers.char_cnn import CharCNN
from layers.masked_cross_entropy import WeightedTokenCrossEntropy
from pipelines import synthetic_tagging
from pipelines.conllu_files import TAG_COLUMNS, TaggedSentence, find_conllu_splits, read_conllu
from pipelines.tagging_preprocessor import TaggingPreprocessor
from pipelines.tfds_source import load_tfds_split
from pipelines.vocabulary import OOV_ID


@dataclasses.dataclass(frozen=True)
class TaggingDataConfig(DataConfig):
    tag_column: str = choice("upos", TAG_COLUMNS)  # CoNLL-U column (and tfds feature) of the tags
    # Longer words keep their first characters (None: the 99th percentile of train's word lengths).
    # 20 rather than GUM's 99th percentile (12): long words are often unseen ones, which their
    # endings tell most about (GUM dev: OOV accuracy 0.853 -> 0.862 with this and alpha 1).
    max_word_length: typing.Optional[int] = 20
    # Training words become [UNK] with probability a / (a + count), so that [UNK] means "unseen"
    # (GUM dev OOV accuracy: 0.837 without, 0.853 with a = 0.25, 0.862 with a = 1).
    unknown_word_alpha: float = 1.0


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    word_dim: int = 100
    char_features: bool = True  # a character CNN per word (layers.CharCNN): spelling for unseen words
    char_dim: int = 32
    char_filters: int = 128  # GUM dev, with kernel 4: OOV accuracy 0.862 (100, kernel 3) -> 0.872
    char_kernel: int = 4  # characters per window: a 3-letter suffix and the word's end
    cell: str = choice("lstm", cells.names())
    units: int = 128  # per direction
    num_layers: int = 1
    bidirectional: bool = True
    dropout: float = 0.33  # on the encoder's outputs, before the tag classifier
    vocab_size: int = 0  # resolved: word vocabulary
    char_vocab_size: int = 0  # resolved
    num_tags: int = 0  # resolved: train's tags + padding
    implementation: str = ""  # resolved


@dataclasses.dataclass(frozen=True)
class TaggingConfig:
    app: str = choice("tagging", ("tagging",))
    seed: int = 42
    # Every word of train in the vocabulary (OOV = never seen); whole sentences (no cut).
    data: TaggingDataConfig = TaggingDataConfig(vocab_size=100000, length_percentile=100.0)
    model: ModelConfig = ModelConfig()
    regularization: RegularizationConfig = RegularizationConfig(embedding_dropout=0.1, input_dropout=0.2)
    # GUM dev accuracy still rose at epoch 12; the README's GUM numbers were measured with this
    # constant learning rate for all 15 epochs (the plateau schedule is not measured on GUM yet).
    train: TrainConfig = TrainConfig(epochs=15, learning_rate=2e-3, early_stopping_patience=0, lr_patience=0)

    @classmethod
    def smoke(cls) -> "TaggingConfig":
        return replace(cls(), **{"data.source": "synthetic?size=200", "data.batch_size": 16, "data.num_buckets": 2,
                                 "model.word_dim": 8, "model.char_dim": 4, "model.char_filters": 8,
                                 "model.units": 8, "train.epochs": 2})


class Tagger(tf.Module):
    """Raw sentences in; tokens, tags and `word/TAG` text out (the SavedModel's serving_default)."""

    def __init__(self, model: keras.Model, preprocessor: TaggingPreprocessor):
        super().__init__()
        self.model, self.preprocessor = model, preprocessor
        self.tables = preprocessor.tables()  # tracked: the SavedModel saves them
        self.tag_names = tf.constant(["", *preprocessor.tags])

    @tf.function
    def numeric(self, word_ids, char_ids):
        """What ONNX and TFLite get: ids in, tag probabilities (batch, time, tags) out."""
        return {"probabilities": tf.nn.softmax(self.model((word_ids, char_ids), training=False), axis=-1)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="texts")])
    def tag(self, texts):
        tokens = self.preprocessor.tf_tokens(texts)
        probabilities = self.numeric(*self.preprocessor.tf_encode_tokens(tokens))["probabilities"]
        best = tf.argmax(probabilities[..., 1:], axis=-1, output_type=tf.int32) + 1  # never the padding tag
        tags = tf.RaggedTensor.from_tensor(tf.gather(self.tag_names, best), lengths=tokens.row_lengths())
        tagged = tf.strings.reduce_join(tf.strings.join([tokens, tags], separator="/"), axis=-1, separator=" ")
        return {"tokens": tokens.to_tensor(""), "tags": tags.to_tensor(""), "lengths": tokens.row_lengths(),
                "tagged": tagged}


class Tagging(App):
    name = "tagging"
    config_class = TaggingConfig
    preprocessor_class = TaggingPreprocessor
    sample_weights = True  # padding weighs 0 in the loss and the accuracy
    synthetic_size = 2000
    demo_inputs = ("We book the back room .", "She said that the book can run back !",  # in the grammar
                   "They watch that zoviness rataize the pumeful kitity .")  # made-up words

    # --- sources -------------------------------------------------------------------------------

    def generate(self, n, seed, config=None):
        return [TaggedSentence(s.words, s.tags, f"synthetic (seed {seed}) #{i}")
                for i, s in enumerate(synthetic_tagging.generate(n, seed))]

    def read_directory(self, path, config, required="train"):
        files = find_conllu_splits(path, required)
        return ({split: read_conllu(f, config.data.tag_column) for split, f in files.items()},
                {split: os.path.basename(f) for split, f in files.items()})

    def tfds_split(self, name, split, config):
        ds, info = load_tfds_split(name, split)
        column = config.data.tag_column
        key = next((k for k in (column, "pos", "tags") if k in info.features), None)
        if key is None or "tokens" not in info.features:
            raise ConfigError(f"tfds:{name} has no 'tokens' and {column!r} features to tag with")
        names = getattr(info.features[key].feature, "names", None)
        return [TaggedSentence(tuple(t.decode("utf-8") for t in row["tokens"]),
                               tuple(names[int(t)] if names else t.decode("utf-8") for t in row[key]),
                               f"tfds:{name}[{split}] #{i}")
                for i, row in enumerate(ds.as_numpy_iterator()) if len(row["tokens"])]

    # --- preprocessing and model -----------------------------------------------------------------

    def resolve(self, config, fitted):
        return replace(config, **{
            "data.max_length": fitted["max_length"], "data.max_word_length": fitted["max_word_length"],
            "model.vocab_size": fitted["vocab_size"], "model.char_vocab_size": fitted["char_vocab_size"],
            "model.num_tags": fitted["num_tags"],
            "model.implementation": encoder_implementation(config.model.cell, config.regularization)})

    def build_model(self, config) -> keras.Model:
        """(word_ids (batch, time), char_ids (batch, time, chars)) -> tag logits (batch, time, tags)."""
        m, reg = config.model, config.regularization  # sizes checked positive by App.train
        if m.num_tags < 2:
            raise ConfigError(f"model.num_tags is resolved from the data (train's tags), received {m.num_tags}")
        word_ids = keras.Input((None,), dtype="int32", name="word_ids")
        char_ids = keras.Input((None, config.data.max_word_length), dtype="int32", name="char_ids")
        x = token_embedding(m.vocab_size, m.word_dim, reg, config.seed, name="word_embedding")(word_ids)
        if m.char_features:  # the word mask survives the concatenation
            chars = CharCNN(m.char_vocab_size, m.char_dim, m.char_filters, m.char_kernel, name="char_cnn")(char_ids)
            x = keras.layers.Concatenate(name="word_features")([x, chars])
        x = recurrent_encoder(m.cell, [m.units] * m.num_layers, reg, config.seed, name="encoder",
                              bidirectional=m.bidirectional, return_sequences=True)(x)
        x = keras.layers.Dropout(m.dropout, seed=config.seed, name="dropout")(x)
        logits = keras.layers.Dense(m.num_tags, name="logits")(x)
        return keras.Model((word_ids, char_ids), logits, name=self.name)

    def loss_and_metrics(self, config):
        return (WeightedTokenCrossEntropy(),
                [keras.metrics.SparseCategoricalAccuracy(name="accuracy")])

    def score(self, loaded, examples, **options):
        """Token accuracy, and over the words the vocabulary lacks (OOV), padding left out."""
        counts, progress = np.zeros(4), Progress(len(examples), "tagging")  # correct, words, correct OOV, OOV
        for (word_ids, char_ids), tags, _ in loaded.preprocessor.dataset(examples, training=False):
            progress.update(len(tags))
            logits = loaded.model((word_ids, char_ids), training=False).numpy()
            right, real = np.argmax(logits[..., 1:], -1) + 1 == tags.numpy(), tags.numpy() > 0
            oov = real & (word_ids.numpy() == OOV_ID)
            counts += [(right & real).sum(), real.sum(), (right & oov).sum(), oov.sum()]
        return {"accuracy": round(float(counts[0] / max(counts[1], 1)), 6),
                "accuracy_oov": round(float(counts[2] / max(counts[3], 1)), 6),
                "words": int(counts[1]), "oov_words": int(counts[3]), "examples": len(examples)}

    def search_space(self):
        return {**super().search_space(), "model.cell": cells.names(), "model.units": [64, 128, 256],
                "model.num_layers": [1, 2], "model.char_features": [True, False], "model.char_filters": [32, 64, 128],
                "model.dropout": [0.0, 0.33, 0.5], "regularization.embedding_dropout": [0.0, 0.1, 0.25]}

    # --- serving -------------------------------------------------------------------------------

    def serving(self, loaded: Loaded) -> Tagger:
        return Tagger(loaded.model, loaded.preprocessor)

    @staticmethod
    def _rows(texts, tokens, tags):
        return [{"text": t, "tokens": list(w), "tags": list(g)} for t, w, g in zip(texts, tokens, tags)]

    def predict_rows(self, loaded, serving, inputs, **options):
        limit = loaded.preprocessor.max_length
        cut = sum(len(t) > limit for t in TaggingPreprocessor.tokenize_python(inputs, limit + 1))
        if cut:
            log(f"warning: {cut} of {len(inputs)} inputs have more than max_length={limit} words: "
                "only the first ones are tagged")
        out = {k: v.numpy() for k, v in serving.tag(tf.constant(inputs)).items()}
        decode = lambda row, n: [x.decode("utf-8") for x in row[:n]]  # noqa: E731
        return self._rows(inputs, [decode(r, n) for r, n in zip(out["tokens"], out["lengths"])],
                          [decode(r, n) for r, n in zip(out["tags"], out["lengths"])])

    def format_prediction(self, row):
        return " ".join(f"{w}/{t}" for w, t in zip(row["tokens"], row["tags"])) or f"(no words) {row['text']!r}"

    # --- export --------------------------------------------------------------------------------

    def export_targets(self, loaded, serving):
        """savedmodel: `serving_default` (sentences -> tokens, tags, lengths, tagged) and `numeric`;
        onnx: word_ids (batch, time) and char_ids (batch, time, chars) -> probabilities; tflite: the
        same at (1, max_length)."""
        p = loaded.preprocessor
        tokens = p.tokenize_python([*self.demo_inputs, "", "Unseen Wordzz 42 !"], p.max_length)
        word_ids, char_ids = p.encode_python(tokens)
        fixed_words, fixed_chars = p.encode_python(tokens, p.max_length)

        def specs(length=None, batch=None):
            return [tf.TensorSpec([batch, length], tf.int32, name="word_ids"),
                    tf.TensorSpec([batch, length, p.max_word_length], tf.int32, name="char_ids")]

        inputs = "word_ids int32 (batch, time), char_ids int32 (batch, time, max_word_length), right-padded"
        out = "probabilities float32 (batch, time, tags): tag i is tags[i], 0 padding"
        return ExportTargets(
            {"serving_default": serving.tag.get_concrete_function(),
             NUMERIC_SIGNATURE: serving.numeric.get_concrete_function(*specs())},
            {"texts": np.array([*self.demo_inputs, ""], dtype=object)}, {"tagger": serving},
            onnx=[Target("onnx", "model.onnx", serving.numeric, specs(), {"word_ids": word_ids, "char_ids": char_ids})],
            tflite=[Target("tflite", "model.tflite", serving.numeric, specs(p.max_length, 1),
                           {"word_ids": fixed_words, "char_ids": fixed_chars})],
            files={"savedmodel": {"serving_default": "texts -> tokens, tags, lengths, tagged",
                                  NUMERIC_SIGNATURE: f"{inputs} -> {out}"},
                   "model.onnx": f"{inputs} -> {out}", "model.tflite": f"the same at batch 1, time {p.max_length}"})

    def predict_exported(self, export_dir, assets, runtime, inputs, **options):
        if runtime == "savedmodel":
            out = load_runner(export_dir, runtime, signature="serving_default")(texts=np.array(inputs, dtype=object))
            decode = lambda row, n: [x.decode("utf-8") for x in row[:n]]  # noqa: E731
            return self._rows(inputs, [decode(r, n) for r, n in zip(out["tokens"], out["lengths"])],
                              [decode(r, n) for r, n in zip(out["tags"], out["lengths"])])
        tokens = TaggingPreprocessor.tokenize_python(inputs, assets["max_length"])
        word_ids, char_ids = TaggingPreprocessor.encode_assets(
            assets, tokens, assets["max_length"] if runtime == "tflite" else None)
        probabilities = load_runner(export_dir, runtime)(word_ids=word_ids, char_ids=char_ids)["probabilities"]
        best = probabilities[..., 1:].argmax(-1) + 1
        return self._rows(inputs, tokens, [[assets["tags"][i] for i in row[:len(t)]] for row, t in zip(best, tokens)])
