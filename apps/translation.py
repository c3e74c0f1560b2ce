"""Translation (sequence to sequence): a bidirectional encoder, a decoder that attends to it,
teacher forcing in training, greedy / beam-search decoding at inference.

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

from apps.app import App, ExportTargets, Loaded, Target
from apps.plots import plot_attention
from apps.seq2seq import AttentionDecoding, DecodeConfig, translation_scores
from apps.training import Progress
from apps.config import (ConfigError, PretrainedEmbeddings, RegularizationConfig, TextDataConfig, TrainConfig,
                         choice, replace)
from apps.encoders import encoder_implementation, recurrent_encoder, token_embedding
from export import ExportError
from export.runtimes import load_runner
from export.step_loop import decode_exported
from layers import cells
from layers.attention_decoder import ATTENTIONS, AttentionDecoder
from layers.masked_cross_entropy import MaskedCrossEntropy
from layers.masked_pooling import MaskedPooling
from pipelines import synthetic_translation
from pipelines.errors import DataError
from pipelines.text_files import Pair, find_split_files, read_pairs_tsv
from pipelines.text_preprocessors import EOS, Seq2SeqPreprocessor
from pipelines.text_rules import pad_rows
from pipelines.tfds_source import load_tfds_split
from pipelines.vocabulary import PAD_ID

BEAM_FILE = "model_beam.onnx"


@dataclasses.dataclass(frozen=True)
class ModelConfig(PretrainedEmbeddings):
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
class TranslationConfig:
    app: str = choice("translation", ("translation",))
    seed: int = 42
    # Subwords: Tatoeba en-fr dev BLEU 29.7 against 20.5 for words (chrF 49.2 both: the gain is
    # exact detokenization, "Es-tu" and "l'heure" instead of "Es - tu" and "l ' heure", and no
    # [UNK]). length_percentile 100: never cut sentences. Batches of 128 train faster on CPU.
    data: TextDataConfig = TextDataConfig(vocab_size=8000, batch_size=128, length_percentile=100.0,
                                          tokenizer="subwords")
    model: ModelConfig = ModelConfig()
    regularization: RegularizationConfig = RegularizationConfig()  # of the source embedding and the encoder
    decode: DecodeConfig = DecodeConfig()
    # About 4 minutes an epoch on 2 cores for 73k pairs; dev loss was still falling at epoch 5 (a
    # budget, not convergence: raise train.epochs for a better model; early stopping and the
    # learning-rate cuts act on val_loss).
    train: TrainConfig = TrainConfig(epochs=5, learning_rate=5e-3)

    @classmethod
    def smoke(cls) -> "TranslationConfig":
        return replace(cls(), **{"data.source": "synthetic?size=200", "data.batch_size": 32,
                                 "model.embedding_dim": 8, "model.units": 8, "model.attention_units": 8,
                                 "train.epochs": 2})


class Translator(AttentionDecoding):
    """Raw source strings in, translations out (greedy or beam search), all in-graph."""

    def __init__(self, model: keras.Model, preprocessor: Seq2SeqPreprocessor, config: TranslationConfig):
        encoder = keras.Model(model.get_layer("source_ids").output,
                              [model.get_layer("encoder").output, model.get_layer("initial_state").output])
        super().__init__(encoder, model.get_layer("decoder"), preprocessor.bos_id, preprocessor.eos_id,
                         preprocessor.target_max_length + config.decode.extra_length, config.decode.alpha)
        self.model, self.config, self.preprocessor = model, config, preprocessor
        self.tables = preprocessor.tables()  # tracked: the SavedModel saves them
        self.target_tokens = tf.constant(preprocessor.target_vocab.tokens)
        self.ids_to_text = preprocessor.target_text(self.target_tokens)
        self.raw_spec = tf.TensorSpec([None], tf.string)

    def prepare(self, texts):
        return self.preprocessor.tf_encode(texts)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="texts")])
    def translate(self, texts):
        return {"translation": self.ids_to_text(self.decode_ids(self.preprocessor.tf_encode(texts)))}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="texts")])
    def translate_beam(self, texts):
        ids = self.decode_ids(self.preprocessor.tf_encode(texts), self.config.decode.beam_width)
        return {"translation": self.ids_to_text(ids)}

    def attention_map(self, source: str, target: str):
        """Teacher-forced attention weights of `target` given `source`: (target tokens + [EOS], source tokens)."""
        source_ids = self.preprocessor.tf_encode(tf.constant([source]))
        target_ids = self.preprocessor.tf_target_encoder()(tf.constant([target])).to_tensor()
        memory, first_h = self.encoder(source_ids)
        _, weights = self.decoder(tf.concat([[[self.bos_id]], target_ids], axis=1), memory,
                                  memory_mask=tf.not_equal(source_ids, PAD_ID), initial_state=first_h,
                                  return_attention=True)
        source_tokens = self.preprocessor.source_vocab.decode(source_ids.numpy()[0])
        target_tokens = self.preprocessor.target_vocab.decode(target_ids.numpy()[0]) + [EOS]
        return weights.numpy()[0, : len(target_tokens), : len(source_tokens)], source_tokens, target_tokens


class Translation(App):
    name = "translation"
    config_class = TranslationConfig
    preprocessor_class = Seq2SeqPreprocessor
    embedding_layers = {"source": "source_embedding"}
    monitor = ("val_loss", "min")
    history_metrics = ("loss",)
    synthetic_size, synthetic_held_out = 6000, 10
    demo_inputs = ("the big dog chases the cats", "the cats near the old horse see the bird",
                   "the happy frogs follow the lazy fox")

    def demo_config(self):
        """The built-in language pair is a word-for-word code with no casing or punctuation to
        restore: the demo trains on words, in smaller batches and longer than the real-data
        defaults (about 70 s on 2 cores)."""
        return replace(self.config_class(), **{"data.tokenizer": "words", "data.batch_size": 64, "train.epochs": 12})

    # --- sources -------------------------------------------------------------------------------

    def generate(self, n, seed, config=None):
        return [Pair(s.source, s.target, f"synthetic (seed {seed}) #{i}")
                for i, s in enumerate(synthetic_translation.generate(n, seed))]

    def read_directory(self, path, config, required="train"):
        files = find_split_files(path, extensions=(".tsv",), required=required)
        splits = {split: [Pair(*row) for row in read_pairs_tsv(f, ("source", "target"))] for split, f in files.items()}
        for split, f in files.items():
            if not splits[split]:
                raise DataError(f"{f} is empty: the split has no examples")
        return splits, {split: pathlib.Path(f).name for split, f in files.items()}

    def tfds_split(self, name, split, config):
        ds, info = load_tfds_split(name, split)
        keys = info.supervised_keys
        if not keys or len(keys) != 2:
            raise DataError(f"tfds:{name} has no (source, target) supervised keys")
        rows = ((row[keys[0]].decode("utf-8", "replace"), row[keys[1]].decode("utf-8", "replace"))
                for row in ds.as_numpy_iterator())
        return [Pair(s, t, f"tfds:{name}[{split}] #{i}") for i, (s, t) in enumerate(rows) if s.strip() and t.strip()]

    # --- preprocessing and model -----------------------------------------------------------------

    def preprocessor_options(self, config):
        return {**super().preprocessor_options(config), "target_max_length": config.decode.target_max_length}

    def resolve(self, config, fitted):
        return replace(config, **{
            "data.max_length": fitted["max_length"], "decode.target_max_length": fitted["target_max_length"],
            "model.source_vocab_size": fitted["source_vocab_size"],
            "model.target_vocab_size": fitted["target_vocab_size"],
            "model.implementation": encoder_implementation(config.model.encoder_cell, config.regularization)})

    def build_model(self, config) -> keras.Model:
        """(source_ids, target_in) -> logits over the target vocabulary at every target step."""
        m, reg = config.model, config.regularization
        if m.source_vocab_size < 3 or m.target_vocab_size < 5:
            raise ConfigError("model.source_vocab_size and model.target_vocab_size are resolved from the data")
        source_ids = keras.Input((None,), dtype="int32", name="source_ids")
        target_in = keras.Input((None,), dtype="int32", name="target_in")
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
        return keras.Model([source_ids, target_in], logits, name=self.name)

    def loss_and_metrics(self, config):
        return MaskedCrossEntropy(config.model.label_smoothing), []

    def score(self, loaded, examples, beam: int = 0):
        """`translation_scores` of the detokenized translations of `examples`."""
        translator = Translator(loaded.model, loaded.preprocessor, loaded.config)
        hypotheses = self._translate(translator, [p.source for p in examples], beam)
        return {**translation_scores(hypotheses, [p.target for p in examples]), "examples": len(examples),
                "decoder": f"beam {beam}" if beam else "greedy"}

    def search_space(self):
        return {**super().search_space(), "model.encoder_cell": cells.names(), "model.decoder_cell": cells.step_names(),
                "model.units": [32, 64, 128], "model.attention": list(ATTENTIONS),
                "model.input_feeding": [True, False], "model.label_smoothing": [0.0, 0.1]}

    # --- serving -------------------------------------------------------------------------------

    def serving(self, loaded: Loaded) -> Translator:
        return Translator(loaded.model, loaded.preprocessor, loaded.config)

    @staticmethod
    def _translate(translator: Translator, texts: list[str], beam: int) -> list[str]:
        progress, out = Progress(len(texts), "translating"), []
        for start in range(0, len(texts), 256):
            out.extend(t.decode("utf-8") for t in translator.decode_text(tf.constant(texts[start:start + 256]),
                                                                              beam).numpy())
            progress.update(len(texts[start:start + 256]))
        return out

    def predict_rows(self, loaded, serving, inputs, beam: int = 0, plot: bool = False):
        rows = [{"text": t, "translation": tr} for t, tr in zip(inputs, self._translate(serving, inputs, beam))]
        for i, row in enumerate(rows if plot else []):
            row["plot"] = str(loaded.run.plots / f"attention-{i}.png")
            plot_attention(row["plot"], *serving.attention_map(row["text"], row["translation"]))
        return rows

    def summarize(self, loaded, step):
        """TensorBoard images: the attention maps of the demo sentences."""
        import io

        translator = self.serving(loaded)
        translations = self._translate(translator, list(self.demo_inputs), 0)
        for i, (text, translation) in enumerate(zip(self.demo_inputs, translations)):
            png = io.BytesIO()
            plot_attention(png, *translator.attention_map(text, translation))
            tf.summary.image(f"attention/{i}", tf.image.decode_png(png.getvalue(), channels=3)[None], step=step,
                             description=text)

    def format_prediction(self, row):
        return f"{row['text']}  ->  {row['translation']}" + (f"   [{row['plot']}]" if "plot" in row else "")

    def add_arguments(self, parser, command):
        parser.add_argument("--beam", type=int, default=0, metavar="K", help="beam search of width K (0: greedy)")
        if command == "predict":
            parser.add_argument("--plot", action="store_true", help="write attention maps to RUN/plots/ (a run only)")

    # --- export --------------------------------------------------------------------------------

    def export_targets(self, loaded, serving):
        """savedmodel: `serving_default` (greedy) and `beam` on raw strings, `encode` and
        `decoder_step` for host-side loops; onnx: `model.onnx` (greedy) and `model_beam.onnx`,
        source_ids -> target_ids with the decoding loop inside; tflite: `encoder.tflite` and
        `decoder_step.tflite` at batch 1 and source length max_length, looped on the host."""
        samples = [*self.demo_inputs, "", "an unknown wordzz"]
        p, beam = loaded.preprocessor, loaded.config.decode.beam_width
        ids, length = p.encode_python(samples), p.max_length
        ids_spec = [tf.TensorSpec([None, None], tf.int32, name="source_ids")]
        onnx = [Target(name, file, tf.function(lambda source_ids, width=width: {
                    "target_ids": serving.decode_ids(source_ids, width)}), ids_spec, {"source_ids": ids}, atol=0)
                for name, file, width in (("onnx", "model.onnx", 0), ("onnx_beam", BEAM_FILE, beam))]
        fixed = pad_rows(ids, length)
        encoded = {k: v.numpy() for k, v in serving.encode(fixed).items()}
        step_inputs = {"token_ids": np.full([len(fixed)], p.bos_id, np.int32), "source_ids": fixed, **encoded}
        tflite = [Target("tflite_encoder", "encoder.tflite", serving.encode,
                         [tf.TensorSpec([1, length], tf.int32, name="source_ids")], {"source_ids": fixed}),
                  Target("tflite_step", "decoder_step.tflite", serving.decoder_step,
                         serving.step_signature(batch=1, source_length=length), step_inputs)]
        ids_in = {"source_ids": "int32 (batch, time), cut to max_length, right-padded with pad_id"}
        return ExportTargets(
            {"serving_default": serving.translate.get_concrete_function(),
             "beam": serving.translate_beam.get_concrete_function(),
             "encode": serving.encode.get_concrete_function(*ids_spec),
             "decoder_step": serving.decoder_step.get_concrete_function(*serving.step_signature())},
            {"texts": np.array(samples, dtype=object)}, {"translator": serving}, onnx, tflite,
            files={"savedmodel": {"serving_default": "texts -> translation (greedy)",
                                  "beam": f"texts -> translation (beam search, width {beam})",
                                  "encode": "source_ids -> memory, keys, state_*",
                                  "decoder_step": "token_ids, source_ids, memory, keys, state_* -> logits, attention, "
                                                  "state_*"},
                   "model.onnx": {"inputs": ids_in, "outputs": {"target_ids": "int32 (batch, steps), greedy"}},
                   BEAM_FILE: {"inputs": ids_in, "outputs": {"target_ids": f"int32 (batch, steps), beam {beam}"}},
                   "encoder.tflite": "source_ids (1, max_length) -> memory, keys, state_*",
                   "decoder_step.tflite": "one greedy step at batch 1; the loop runs on the host"},
            extra={"max_decode_length": serving.max_decode, "beam_width": beam, "state_names": serving.state_names})

    def check_export(self, fmt, loaded, serving, out, fused=True):
        """TFLite end to end: the host loop over the two models gives the translator's greedy ids."""
        if fmt != "tflite":
            return {}
        p = loaded.preprocessor
        source_ids = pad_rows(p.encode_python([*self.demo_inputs, ""]), p.max_length)
        decoded = decode_exported(out, "tflite", "source_ids", source_ids, serving.state_names, p.bos_id, p.eos_id,
                                  serving.max_decode)
        for got, want in zip(decoded, serving.decode_ids(tf.constant(source_ids)).numpy()):
            if got != [int(t) for t in want if t != PAD_ID]:
                raise ExportError(f"tflite parity failed: the host loop decoded {got}, the translator {list(want)}")
        return {}

    def predict_exported(self, export_dir, assets, runtime, inputs, beam: int = 0, plot: bool = False):
        if plot:
            raise ConfigError("--plot needs a run directory (the attention maps come from the Keras model)")
        if beam and beam != assets["beam_width"] or beam and runtime == "tflite":
            raise ConfigError(f"this export decodes greedily or with beam width {assets['beam_width']} "
                              f"(savedmodel, onnx); --beam {beam} with --runtime {runtime} is not available")
        if runtime == "savedmodel":
            outputs = load_runner(export_dir, runtime, signature="beam" if beam else "serving_default")(
                texts=np.array(inputs, dtype=object))
            translations = [t.decode("utf-8") for t in outputs["translation"]]
        elif runtime == "onnx":
            source_ids = Seq2SeqPreprocessor.encode_assets(assets, inputs)
            runner = load_runner(export_dir, "onnx", file=BEAM_FILE if beam else None)
            translations = Seq2SeqPreprocessor.decode_assets(assets, runner(source_ids=source_ids)["target_ids"])
        else:
            ids = decode_exported(export_dir, "tflite", "source_ids",
                                  Seq2SeqPreprocessor.encode_assets(assets, inputs, assets["max_length"]),
                                  assets["state_names"], assets["bos_id"], assets["eos_id"], assets["max_decode_length"])
            translations = Seq2SeqPreprocessor.decode_assets(assets, ids)
        return [{"text": t, "translation": tr} for t, tr in zip(inputs, translations)]
