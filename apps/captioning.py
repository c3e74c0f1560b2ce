"""Image captioning (one-to-many): an image in, a sentence out. A CNN encodes the image into a
grid of feature vectors; the recurrent decoder starts from a state made from the image (instead
of zeros) and, by default, attends over the grid at every word (Show, Attend and Tell, with the
Bahdanau layer); teacher forcing in training, greedy or beam search at inference. It is
translation's decoder, decoding and step export with a CNN for an encoder (`apps/seq2seq.py`).

Data: `synthetic` (rendered scenes of coloured shapes captioned from the scene:
`pipelines/synthetic_scenes.py`), `tfds:coco_captions`, or a directory with `images/` and
`train.tsv` / `dev.tsv` / `test.tsv` of `image_file<TAB>caption` (several lines per image).
Metric: `bleu4` (sacreBLEU, every caption of an image a reference).

    rnnapps train captioning --data path/to/captions --out runs/cap
    rnnapps predict runs/cap photo.jpg --beam 3 --plot
"""

from __future__ import annotations

import dataclasses
import pathlib

import keras
import numpy as np
import tensorflow as tf

from apps.app import App, ExportTargets, Loaded, Target
from apps.config import ConfigError, TextDataConfig, TrainConfig, choice, replace
from apps.plots import plot_image_attention
from apps.encoders import frozen_features, image_encoder
from apps.captioner import Captioner
from apps.seq2seq import DecodeConfig, caption_scores
from apps.training import Progress
from export import ExportError
from export.runtimes import load_runner
from export.step_loop import decode_exported
from layers import cells
from layers.attention_decoder import ATTENTIONS, AttentionDecoder
from layers.masked_cross_entropy import MaskedCrossEntropy
from layers.position_embedding import PositionEmbedding
from pipelines import synthetic_scenes
from pipelines.caption_files import ImageCaptions, read_caption_directory, read_image_file, tfds_image_captions
from pipelines.caption_preprocessor import CaptionPreprocessor
from pipelines.images import decode_batch
from pipelines.text_rules import case_fold
from pipelines.tfds_source import load_tfds_split

ENCODERS = ("cnn", "mobilenet_v3_small", "efficientnet_b0")
EXAMPLES = pathlib.Path(__file__).parent / "examples"  # scenes of the synthetic source, for the demo


@dataclasses.dataclass(frozen=True)
class CaptionDataConfig(TextDataConfig):
    image_size: int = 64  # images are resized to image_size x image_size
    # In training, this many captions of each image per epoch, drawn anew each epoch (0: all of
    # them): the image encoder runs once per caption, so 1 makes an epoch of a 5-caption corpus
    # 5x shorter and still uses every caption over the epochs.
    captions_per_image: int = 1
    lowercase: bool = False  # true: captions case-folded (what the model writes and BLEU compares)
    length_percentile: float = 100.0  # of caption lengths: target_max_length (never cut by default)
    # With a frozen backbone (model.encoder_trainable=false): its features of each image computed
    # once before training and kept in memory (float16), the rest of the model trained on them;
    # no augmentation then (it would change the features). false: every step runs the backbone.
    cache_features: bool = True


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    # cnn: a small CNN trained from scratch; or a keras.applications backbone, with its weights
    # from a local file (encoder_weights; never downloaded), frozen or fine-tuned.
    encoder: str = choice("cnn", ENCODERS)
    encoder_weights: str = ""  # a .weights.h5 / .h5 file of the backbone without its top
    encoder_trainable: bool = True
    cnn_filters: int = 32  # of the first block; doubled by each further block
    cnn_blocks: int = 3  # each halves the grid: 64 px -> an 8 x 8 grid of positions to attend to
    embedding_dim: int = 64
    units: int = 128  # the decoder's
    decoder_cell: str = choice("lstm", cells.step_names())
    attention: str = choice("bahdanau", ATTENTIONS)  # "none": the mean of the grid at every word
    attention_units: int = 64
    input_feeding: bool = True
    label_smoothing: float = 0.0
    target_vocab_size: int = 0  # resolved


@dataclasses.dataclass(frozen=True)
class CaptioningConfig:
    app: str = choice("captioning", ("captioning",))
    seed: int = 42
    data: CaptionDataConfig = CaptionDataConfig(batch_size=32, vocab_size=5000, min_count=2)
    model: ModelConfig = ModelConfig()
    decode: DecodeConfig = DecodeConfig(beam_width=3)
    train: TrainConfig = TrainConfig(epochs=20, learning_rate=2e-3, early_stopping_patience=4, lr_patience=1)

    @classmethod
    def smoke(cls) -> "CaptioningConfig":
        return replace(cls(), **{"data.source": "synthetic?size=60", "data.batch_size": 16, "data.image_size": 48,
                                 "data.min_count": 1, "model.cnn_filters": 8, "model.cnn_blocks": 2,
                                 "model.embedding_dim": 8, "model.units": 8, "model.attention_units": 8,
                                 "train.epochs": 2})


def caption_logits(layer, features, caption_in):
    """The captioning model after its image encoder, from `layer(name)` for each of its layers:
    features (batch, grid h, grid w, channels) and caption_in -> logits at every caption step."""
    grid = layer("grid")(features)
    memory = layer("memory")(grid)
    summary = layer("grid_mean")(grid)
    first_h = layer("initial_state")(summary)
    return layer("decoder")(caption_in, memory, initial_state=first_h)


class Captioning(App):
    name = "captioning"
    config_class = CaptioningConfig
    preprocessor_class = CaptionPreprocessor
    monitor = ("val_loss", "min")
    history_metrics = ("loss",)
    synthetic_size, synthetic_held_out = 1500, 5
    demo_inputs = tuple(str(p) for p in sorted(EXAMPLES.glob("scene-*.png")))

    def demo_config(self):
        """800 built-in scenes at 32 pixels and a smaller decoder: about a minute on 2 cores
        (BLEU-4 about 60 on held-out scenes)."""
        return replace(self.config_class(), **{
            "data.source": "synthetic?size=800", "data.image_size": 32, "data.min_count": 1, "data.captions_per_image": 0,
            "model.cnn_filters": 24,
            "model.units": 64, "model.embedding_dim": 32, "model.attention_units": 32, "train.epochs": 14,
            "train.learning_rate": 3e-3})

    # --- sources -------------------------------------------------------------------------------

    def generate(self, n, seed, config=None):
        return [ImageCaptions(tf.io.encode_png(s.image).numpy(), s.captions, f"synthetic (seed {seed}) #{i}")
                for i, s in enumerate(synthetic_scenes.generate(n, seed))]

    def read_directory(self, path, config, required="train"):
        return read_caption_directory(path, required)

    def tfds_split(self, name, split, config):
        ds, _ = load_tfds_split(name, split)
        return tfds_image_captions(ds.as_numpy_iterator(), f"tfds:{name}[{split}]",
                                   lambda image: tf.io.encode_png(image).numpy())

    # --- preprocessing and model -----------------------------------------------------------------

    def preprocessor_options(self, config):
        return {**super().preprocessor_options(config), "target_max_length": config.decode.target_max_length}

    def resolve(self, config, fitted):
        return replace(config, **{"decode.target_max_length": fitted["target_max_length"],
                                  "model.target_vocab_size": fitted["target_vocab_size"]})

    def build_model(self, config) -> keras.Model:
        """(image, caption_in) -> logits over the vocabulary at every caption step."""
        m, size = config.model, config.data.image_size
        if m.target_vocab_size < 5:
            raise ConfigError("model.target_vocab_size is resolved from the data")
        if size < 32:
            raise ConfigError(f"data.image_size must be at least 32, received {size}")
        image = keras.Input((size, size, 3), name="image")
        caption_in = keras.Input((None,), dtype="int32", name="caption_in")
        features = image_encoder(m, size)(image)
        grid_h, grid_w, channels = (int(d) for d in features.shape[1:])
        after_encoder = {  # each made when caption_logits first asks for it (the order of their initial draws)
            "grid": lambda: keras.layers.Reshape((grid_h * grid_w, channels), name="grid"),
            # Where each feature lies: attention and convolutions alone are blind to it ("left of").
            "memory": lambda: PositionEmbedding(name="memory"),
            "grid_mean": lambda: keras.layers.GlobalAveragePooling1D(name="grid_mean"),
            "initial_state": lambda: keras.layers.Dense(m.units, activation="tanh", name="initial_state"),
            "decoder": lambda: AttentionDecoder(m.target_vocab_size, m.embedding_dim, m.units, cell=m.decoder_cell,
                                                attention=m.attention, attention_units=m.attention_units,
                                                input_feeding=m.input_feeding, name="decoder")}
        return keras.Model([image, caption_in], caption_logits(lambda name: after_encoder[name](), features,
                                                               caption_in), name=self.name)

    def loss_and_metrics(self, config):
        return MaskedCrossEntropy(config.model.label_smoothing), []

    def fitted_part(self, model, config, preprocessor, splits, datasets):
        """With a frozen keras.applications backbone and `data.cache_features`, the layers after
        it train on its features, computed once per image (train and dev; float16 where they
        fit); else the whole model."""
        m = config.model
        if m.encoder == "cnn" or m.encoder_trainable or not config.data.cache_features:
            return model, datasets
        encoder = model.get_layer("image_encoder")
        features_in = keras.Input(encoder.output.shape[1:], name="features")
        caption_in = keras.Input((None,), dtype="int32", name="caption_in")
        head = keras.Model([features_in, caption_in], caption_logits(model.get_layer, features_in, caption_in),
                           name="caption_head")  # the model's own layers after the encoder
        self.compile(head, config)
        return head, {name: preprocessor.dataset(splits[name], training=name == "train", features=frozen_features(
            encoder, preprocessor.images(splits[name]), len(splits[name]))) for name in ("train", "dev")}

    def score(self, loaded, examples, beam: int = 0):
        captioner = self.serving(loaded)
        hypotheses = self._caption(captioner, loaded.preprocessor.images(examples), len(examples), beam)
        fold = loaded.preprocessor.target_lowercase
        references = [tuple(case_fold(c) if fold else c for c in e.captions) for e in examples]
        return {**caption_scores(hypotheses, references), "examples": len(examples),
                "decoder": f"beam {beam}" if beam else "greedy"}

    def search_space(self):
        return {"train.learning_rate": {"min": 3e-4, "max": 5e-3, "log": True}, "data.batch_size": [16, 32, 64],
                "model.units": [64, 128, 256], "model.cnn_filters": [16, 32, 64],
                "model.attention": list(ATTENTIONS), "model.decoder_cell": cells.step_names(),
                "model.label_smoothing": [0.0, 0.1]}

    # --- serving -------------------------------------------------------------------------------

    def serving(self, loaded: Loaded) -> Captioner:
        return Captioner(loaded.model, loaded.preprocessor, loaded.config)

    @staticmethod
    def _caption(captioner: Captioner, images: tf.data.Dataset, count: int, beam: int) -> list[str]:
        progress, out = Progress(count, "captioning"), []
        for batch in images.batch(64):
            out.extend(t.decode("utf-8") for t in captioner.decode_text(batch, beam).numpy())
            progress.update(int(batch.shape[0]))
        return out

    def predict_rows(self, loaded, serving, inputs, beam: int = 0, plot: bool = False):
        encoded = [read_image_file(path, "predict") for path in inputs]
        images = decode_batch(tf.constant(encoded), serving.size)
        captions = [t.decode("utf-8") for t in serving.decode_text(images, beam).numpy()]
        rows = [{"image": path, "caption": c} for path, c in zip(inputs, captions)]
        for i, row in enumerate(rows if plot else []):
            row["plot"] = str(loaded.run.plots / f"attention-{i}.png")
            weights, words = serving.attention_map(images[i], row["caption"])
            plot_image_attention(row["plot"], images[i].numpy(), weights, words)
        return rows

    def format_prediction(self, row):
        return f"{row['image']}  ->  {row['caption']}" + (f"   [{row['plot']}]" if "plot" in row else "")

    def add_arguments(self, parser, command):
        parser.add_argument("--beam", type=int, default=0, metavar="K", help="beam search of width K (0: greedy)")
        if command == "predict":
            parser.add_argument("--plot", action="store_true",
                                help="write where the decoder looked for each word to RUN/plots/ (a run only)")

    # --- export --------------------------------------------------------------------------------

    def export_targets(self, loaded, serving):
        """savedmodel: `serving_default` (greedy) and `beam` on encoded images, `encode` and
        `decoder_step` for host-side loops; onnx and tflite: `encoder` (images -> memory, keys,
        first states) and `decoder_step` models, looped on the host (`export.step_loop`)."""
        samples = [e.image for e in self.generate(3, 7)]
        images = decode_batch(tf.constant(samples), serving.size).numpy()
        encoded = {k: v.numpy() for k, v in serving.encode(images).items()}
        step_inputs = {"token_ids": np.full([len(images)], serving.bos_id, np.int32), **encoded}
        targets = {fmt: [Target(f"{fmt}_encoder", f"encoder.{fmt}", serving.encode,
                                [serving.images_signature(batch)], {"images": images}),
                         Target(f"{fmt}_step", f"decoder_step.{fmt}", serving.step_function,
                                serving.image_step_signature(batch), step_inputs)]
                   for fmt, batch in (("onnx", None), ("tflite", 1))}
        beam = loaded.config.decode.beam_width
        return ExportTargets(
            {"serving_default": serving.caption.get_concrete_function(),
             "beam": serving.caption_beam.get_concrete_function(),
             "encode": serving.encode.get_concrete_function(serving.images_signature()),
             "decoder_step": serving.step_function.get_concrete_function(*serving.image_step_signature())},
            {"images": np.array(samples, dtype=object)}, {"captioner": serving}, targets["onnx"], targets["tflite"],
            files={"savedmodel": {"serving_default": "images (JPEG / PNG bytes) -> caption (greedy)",
                                  "beam": f"images -> caption (beam search, width {beam})",
                                  "encode": "images (batch, size, size, 3) float 0..255 -> memory, keys, state_*",
                                  "decoder_step": "token_ids, memory, keys, state_* -> logits, attention, next_state_*"},
                   **{f"encoder.{fmt}": "images (batch, size, size, 3) float32 0..255 -> memory, keys, state_*"
                      for fmt in ("onnx", "tflite")},
                   **{f"decoder_step.{fmt}": "token_ids, memory, keys, state_* -> logits, attention, next_state_*; the "
                                             "greedy loop runs on the host" for fmt in ("onnx", "tflite")}},
            extra={"max_decode_length": serving.max_decode, "beam_width": beam, "state_names": serving.state_names})

    def check_export(self, fmt, loaded, serving, out, fused=True):
        """ONNX and TFLite end to end: the host loop over the two models gives the captioner's greedy ids."""
        if fmt not in ("onnx", "tflite"):
            return {}
        images = decode_batch(tf.constant([e.image for e in self.generate(3, 11)]), serving.size).numpy()
        decoded = decode_exported(out, fmt, "images", images, serving.state_names, serving.bos_id, serving.eos_id,
                                  serving.max_decode, step_takes_inputs=False, next_prefix="next_")
        for got, want in zip(decoded, serving.decode_ids(tf.constant(images)).numpy()):
            if got != [int(t) for t in want if t != 0]:
                raise ExportError(f"{fmt} parity failed: the host loop decoded {got}, the captioner {list(want)}")
        return {}

    def predict_exported(self, export_dir, assets, runtime, inputs, beam: int = 0, plot: bool = False):
        if plot:
            raise ConfigError("--plot needs a run directory (the attention maps come from the Keras model)")
        if beam and (beam != assets["beam_width"] or runtime != "savedmodel"):
            raise ConfigError(f"this export decodes greedily, or with beam width {assets['beam_width']} in the "
                              f"savedmodel runtime; --beam {beam} with --runtime {runtime} is not available")
        encoded = [read_image_file(path, "predict") for path in inputs]
        if runtime == "savedmodel":
            outputs = load_runner(export_dir, runtime, signature="beam" if beam else "serving_default")(
                images=np.array(encoded, dtype=object))
            captions = [t.decode("utf-8") for t in outputs["caption"]]
        else:
            ids = decode_exported(export_dir, runtime, "images", CaptionPreprocessor.images_from_assets(assets, encoded),
                                  assets["state_names"], assets["bos_id"], assets["eos_id"], assets["max_decode_length"],
                                  step_takes_inputs=False, next_prefix="next_")
            captions = CaptionPreprocessor.decode_assets(assets, ids)
        return [{"image": path, "caption": c} for path, c in zip(inputs, captions)]
