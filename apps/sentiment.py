"""Sentiment classification (many-to-one): a review in, a label and its probability out.

Data: `synthetic` (generated reviews with negation, intensifiers and contrast), `tfds:imdb_reviews`,
or a directory with `train.tsv` / `dev.tsv` / `test.tsv` holding `text<TAB>label` per line (or
`.csv` files with a `text,label` header). Two or more labels; missing dev/test splits are made
from train with the config's seed.

    rnnapps train sentiment --data synthetic --out runs/sentiment --set model.pooling=max
"""

from __future__ import annotations

import dataclasses
import pathlib

import keras
import numpy as np
import tensorflow as tf

from apps.app import App, ExportTargets, Loaded, Target
from apps.config import (ConfigError, PretrainedEmbeddings, RegularizationConfig, TextDataConfig, TrainConfig,
                         choice, replace)
from apps.encoders import classification_loss_and_metrics, encoder_implementation, pooled_classifier, token_embedding
from export import ExportError
from export.runtimes import NUMERIC_SIGNATURE, load_runner
from export.tflite import TFLiteRunner, export_tflite
from layers import cells
from layers.bag_of_ngrams import BagOfNgrams
from layers.char_cnn import SPELLING_CHARS, CharCNN, VocabularySpelling
from layers.ensemble import (EnsembleLogits, MemberLogits, MembersAccuracy, MembersCrossEntropy, member_layers,
                             member_metric, member_name)
from layers.runtime_recurrent import fuse_recurrent
from layers.streaming import stream_step_function
from pipelines import synthetic_sentiment
from pipelines.text_files import TextExample, find_split_files, read_labeled_text
from pipelines.text_preprocessors import TextClassificationPreprocessor
from pipelines.tfds_source import load_tfds_split
from pipelines.vocabulary import PAD_ID

MAX_INT8_ACCURACY_DROP = 0.02  # model_int8.tflite is kept only within this much of the float accuracy


@dataclasses.dataclass(frozen=True)
class ModelConfig(PretrainedEmbeddings):
    embedding_dim: int = 64
    cell: str = choice("lstm", cells.names())  # `rnnapps list` shows them
    units: int = 64
    num_layers: int = 1
    bidirectional: bool = True
    # Over time, mask-aware. max: SST-2 dev 0.8314 (with the dropout below) against 0.8314 for
    # last; on its 6,920 sentences alone, 0.8096 against 0.7810 (benchmarks/sentiment_real.py).
    pooling: str = choice("max", ("last", "max", "mean"))
    dropout: float = 0.2  # before the classifier
    # The spelling of each vocabulary word (layers.VocabularySpelling) through a character CNN
    # (layers.CharCNN), next to its embedding: features for words train has seen once or twice.
    # SST-2 dev: 0.8394 against 0.8314 without; with word2vec vectors 0.8658 against 0.8498.
    char_features: bool = True
    char_dim: int = 16
    char_filters: int = 64
    char_kernel: int = 3
    # A linear model over the bag of word n-grams (layers.BagOfNgrams; 1: words, 2: words and
    # hashed bigrams), its scores added to the logits. Mean dev accuracy over seeds 42, 1, 2 (and 3):
    # SST-2 0.8574 against 0.8463 without; UCI review set (2,004 training sentences) 0.8484
    # against 0.8409.
    ngrams: int = choice(2, (0, 1, 2))
    # An ensemble of this many copies of the model above (layers.ensemble): independent weights,
    # trained side by side in one fit, each on its own loss; their probabilities are averaged.
    # Costs `members` times the training and inference time and parameters.
    members: int = 1
    num_classes: int = 0  # resolved: the number of labels in train
    vocab_size: int = 0  # resolved: tokens in the vocabulary (data.vocab_size caps it)
    implementation: str = ""  # resolved: the built-in fused layer, or our cell in layers.Recurrent


@dataclasses.dataclass(frozen=True)
class SentimentConfig:
    app: str = choice("sentiment", ("sentiment",))
    seed: int = 42
    data: TextDataConfig = TextDataConfig()
    model: ModelConfig = ModelConfig()
    # Without dropout the model overfits real reviews from the second epoch (SST-2, 6,920 training
    # sentences: train accuracy 0.99, dev 0.78); with 0.3 on the embedding, the inputs and the
    # outputs of the recurrent layer and max pooling, dev 0.81. Larger models (128 units) did not
    # help (0.819 on SST-2 phrases).
    regularization: RegularizationConfig = RegularizationConfig(embedding_dropout=0.3, input_dropout=0.3,
                                                                output_dropout=0.3)
    # An upper bound: training stops 3 epochs after the best dev accuracy (epoch 2 or 3 on SST-2).
    train: TrainConfig = TrainConfig(epochs=10)

    @classmethod
    def smoke(cls) -> "SentimentConfig":
        """A tiny config for tests: trains in seconds."""
        return replace(cls(), **{"data.source": "synthetic?size=200", "data.batch_size": 16, "data.num_buckets": 2,
                                 "model.embedding_dim": 8, "model.units": 8, "train.epochs": 2})


MEMBERS_OUTPUT = "member_logits"  # the layer of an ensemble whose output is its members' logits
MEMBER_SEED_STEP = 10  # member k's dropout seeds: config.seed + 10 k (+ the layer's own offset)
WORD_LAYERS = ("embedding", "spelling", "char_cnn", "word_features")  # the model's layers before the recurrent one


def word_features(layers: dict, token_ids):
    """Token ids (batch, time) -> what the recurrent layer reads, with the word mask: the word
    embedding, and with `model.char_features` the character CNN of each word's spelling beside it.
    `layers` maps the names of WORD_LAYERS that the model has to its layers."""
    x = layers["embedding"](token_ids)
    if "spelling" in layers:
        x = layers["word_features"]([x, layers["char_cnn"](layers["spelling"](token_ids))])
    return x


def step_features(model: keras.Model):
    """token ids (batch,) -> the features of one step, through the model's own layers (a second
    graph over a new input: the model itself stays as it was built)."""
    layers = {layer.name: layer for layer in model.layers if layer.name in WORD_LAYERS}
    token_ids = keras.Input(shape=(1,), dtype="int32")
    features = keras.Model(token_ids, word_features(layers, token_ids))
    return lambda ids: features(ids[:, None], training=False)[:, 0]


class Classifier(tf.Module):
    """Raw strings in, labels and probabilities out: used by `predict` and as the SavedModel."""

    def __init__(self, model: keras.Model, preprocessor: TextClassificationPreprocessor):
        super().__init__()
        self.model, self.preprocessor = model, preprocessor
        self.tables = preprocessor.tables()  # tracked: the SavedModel saves them
        self.labels = tf.constant(preprocessor.labels)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="texts")])
    def classify(self, texts):
        token_ids = self.preprocessor.tf_encode(texts)  # (batch, time)
        probabilities = tf.nn.softmax(self.model(token_ids, training=False), axis=-1)  # (batch, classes)
        best = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
        return {"label": tf.gather(self.labels, best), "probability": tf.reduce_max(probabilities, axis=-1),
                "probabilities": probabilities}

    @tf.function
    def numeric(self, token_ids):
        """The numeric core that ONNX and TFLite get: token ids in, class probabilities out."""
        return {"probabilities": tf.nn.softmax(self.model(token_ids, training=False), axis=-1)}


class Sentiment(App):
    name = "sentiment"
    config_class = SentimentConfig
    preprocessor_class = TextClassificationPreprocessor
    embedding_layers = {"vocab": "embedding"}
    synthetic_size = 4000
    demo_inputs = ("the movie was very good", "the movie was not good", "the acting was great but the plot was boring",
                   "although the plot was boring , the acting was great", "honestly , the ending was never dull")

    # --- sources -------------------------------------------------------------------------------

    def generate(self, n, seed, config=None):
        return [TextExample(s.text, s.label, f"synthetic (seed {seed}) #{i}")
                for i, s in enumerate(synthetic_sentiment.generate(n, seed))]

    def read_directory(self, path, config, required="train"):
        files = find_split_files(path, required=required)
        return ({split: read_labeled_text(f) for split, f in files.items()},
                {split: pathlib.Path(f).name for split, f in files.items()})

    def tfds_split(self, name, split, config):
        ds, info = load_tfds_split(name, split)
        names = getattr(info.features["label"], "names", None)
        return [TextExample(row["text"].decode("utf-8", errors="replace"),
                            names[int(row["label"])] if names else str(int(row["label"])), f"tfds:{name}[{split}] #{i}")
                for i, row in enumerate(ds.as_numpy_iterator())]

    # --- preprocessing and model -----------------------------------------------------------------

    def resolve(self, config, fitted):
        return replace(config, **{"data.max_length": fitted["max_length"], "model.num_classes": fitted["num_classes"],
                                  "model.vocab_size": fitted["vocab_size"],
                                  "model.implementation": encoder_implementation(config.model.cell,
                                                                                 config.regularization)})

    def build_model(self, config) -> keras.Model:
        """token_ids (batch, time) -> embedding with mask -> recurrent stack -> pooling -> logits;
        with `model.members` > 1, that many of these side by side and their probabilities averaged
        (the output stays logits: the log of the mean probability; `fitted_part` trains the members)."""
        m = config.model
        if m.num_classes < 2:
            raise ConfigError(f"model.num_classes must be at least 2, received {m.num_classes}")
        token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        logits = [self._member_logits(token_ids, config, k) for k in range(m.members)]
        if m.members > 1:
            logits = [EnsembleLogits(name="ensemble")(MemberLogits(name=MEMBERS_OUTPUT)(logits))]
        return keras.Model(token_ids, logits[0], name=self.name)

    @staticmethod
    def _member_logits(token_ids, config, member: int):
        """The logits of one member of the model (the model itself when it has one): its layers are
        named `member_name(name, member)` and its dropout draws from seeds of its own."""
        m, reg, suffix = config.model, config.regularization, member_name("", member)
        seed = config.seed + MEMBER_SEED_STEP * member
        layers = {"embedding": token_embedding(m.vocab_size, m.embedding_dim, reg, seed, name="embedding" + suffix)}
        if m.char_features:  # the table is set from the vocabulary by start_embeddings
            layers.update(spelling=VocabularySpelling(m.vocab_size, name="spelling" + suffix),
                          char_cnn=CharCNN(SPELLING_CHARS, m.char_dim, m.char_filters, m.char_kernel,
                                           name="char_cnn" + suffix),
                          word_features=keras.layers.Concatenate(name="word_features" + suffix))  # keeps the mask
        logits = pooled_classifier(word_features(layers, token_ids), m, reg, seed, "recurrent" + suffix, suffix)
        if m.ngrams:
            bag = BagOfNgrams(m.vocab_size, m.num_classes, order=m.ngrams, pad_id=PAD_ID,
                              name="ngrams" + suffix)(token_ids)
            logits = keras.layers.Add(name="logits_and_ngrams" + suffix)([logits, bag])
        return logits

    def start_embeddings(self, model, config, preprocessor) -> None:
        super().start_embeddings(model, config, preprocessor)
        if config.model.char_features:
            for spelling in member_layers(model, "spelling"):
                spelling.set_vocabulary(preprocessor.input_vocab()[1].tokens)

    def loss_and_metrics(self, config):
        return classification_loss_and_metrics()

    def fitted_part(self, model, config, preprocessor, splits, datasets):
        """An ensemble trains as the model of its members' logits, each member on its own
        cross-entropy; `accuracy` is the ensemble's (it picks the best epoch), `memberK_accuracy`
        member K's alone. A single model trains as it is."""
        if config.model.members == 1:
            return model, datasets
        trainer = keras.Model(model.input, model.get_layer(MEMBERS_OUTPUT).output, name="members")
        accuracies = [MembersAccuracy("accuracy"), *[MembersAccuracy(member_metric(k), member=k)
                                                     for k in range(config.model.members)]]
        self.compile(trainer, config, (MembersCrossEntropy(), accuracies))
        return trainer, datasets

    def search_space(self):
        return {**super().search_space(), "model.cell": cells.names(), "model.units": [32, 64, 128],
                "model.num_layers": [1, 2], "model.bidirectional": [True, False],
                "model.pooling": ["last", "max", "mean"], "model.char_features": [True, False],
                "model.ngrams": [0, 1, 2],
                "regularization.embedding_dropout": [0.0, 0.1, 0.2],
                "regularization.weight_dropout": [0.0, 0.25, 0.5]}

    # --- serving -------------------------------------------------------------------------------

    def serving(self, loaded: Loaded) -> Classifier:
        return Classifier(loaded.model, loaded.preprocessor)

    def predict_rows(self, loaded, serving, inputs, **options):
        outputs = serving.classify(tf.constant(inputs))
        return self._rows(inputs, [label.decode("utf-8") for label in outputs["label"].numpy()],
                          outputs["probability"].numpy())

    @staticmethod
    def _rows(texts, labels, probabilities):
        return [{"text": t, "label": label, "probability": round(float(p), 6)}
                for t, label, p in zip(texts, labels, probabilities)]

    def format_prediction(self, row):
        return f"{row['label']:<10} {row['probability']:.3f}  {row['text']}"

    # --- export --------------------------------------------------------------------------------

    def export_targets(self, loaded, serving):
        """savedmodel: strings in (serving_default), token_ids (numeric) and stream_step; onnx:
        token_ids (batch, time); tflite: token_ids (1, max_length) and stream_step.tflite."""
        max_length = loaded.preprocessor.max_length
        samples = [*self.demo_inputs, "", "An UNSEEN wordzz, in the review!", " ".join(["good"] * (2 * max_length))]
        ids = loaded.preprocessor.encode_python(samples)
        ids_spec = tf.TensorSpec([None, None], tf.int32, name="token_ids")
        model = loaded.model
        stream_step, state_sizes = stream_step_function(step_features(model), model.get_layer("recurrent"),
                                                        model.get_layer("logits"), loaded.config.model.pooling)
        if stream_step is not None and loaded.config.model.ngrams:
            stream_step, state_sizes = None, "not available: the bag of n-grams (model.ngrams) is not in the states"
        if stream_step is not None and loaded.config.model.members > 1:
            stream_step, state_sizes = None, "not available: the model is an ensemble (model.members)"
        signatures = {"serving_default": serving.classify.get_concrete_function(),
                      NUMERIC_SIGNATURE: serving.numeric.get_concrete_function(ids_spec)}
        tflite = [Target("tflite", "model.tflite", serving.numeric,
                         [tf.TensorSpec([1, max_length], tf.int32, name="token_ids")],
                         {"token_ids": loaded.preprocessor.encode_python(samples, max_length)})]
        streaming = state_sizes  # why not, when there is no step
        if stream_step is not None:
            def stream_signature(batch=None):
                return [tf.TensorSpec([batch], tf.int32, name="token_ids"),
                        *[tf.TensorSpec([batch, size], tf.float32, name=name) for name, size in state_sizes.items()]]

            signatures["stream_step"] = stream_step.get_concrete_function(*stream_signature())
            tflite.append(Target("tflite_stream", "stream_step.tflite", stream_step, stream_signature(1),
                                 {"token_ids": ids[:, 0], **{name: np.zeros((len(ids), size), np.float32)
                                                             for name, size in state_sizes.items()}}))
            streaming = {"savedmodel_signature": "stream_step", "tflite": "stream_step.tflite",
                         "inputs": "token_ids (batch,) and every state, all states starting at 0",
                         "states": state_sizes}
        ids_in = "int32 (batch, time): token ids of the whole text, right-padded with pad_id"
        probabilities_out = "float32 (batch, classes), in the order of labels"
        return ExportTargets(
            signatures, {"texts": np.array(samples, dtype=object)}, {"classifier": serving},
            onnx=[Target("onnx", "model.onnx", serving.numeric, [ids_spec], {"token_ids": ids})], tflite=tflite,
            files={"savedmodel": {"serving_default": "texts -> label, probability, probabilities",
                                  NUMERIC_SIGNATURE: "token_ids -> probabilities"},
                   "model.onnx": {"inputs": {"token_ids": ids_in}, "outputs": {"probabilities": probabilities_out}},
                   "model.tflite": {"inputs": {"token_ids": f"int32 (1, {max_length}): padded or cut to max_length"},
                                    "outputs": {"probabilities": probabilities_out}}},
            extra={"tflite_input_shape": [1, max_length], "streaming": streaming})

    def check_export(self, fmt, loaded, serving, out, fused=True):
        """`model_int8.tflite` (dynamic-range quantized weights), kept only if its accuracy on the
        run's test split is within MAX_INT8_ACCURACY_DROP of the float TFLite model's."""
        if fmt != "tflite":
            return {}
        test = self.load_splits(loaded.config)[0]["test"]
        max_length = loaded.preprocessor.max_length
        ids = loaded.preprocessor.encode_python([e.text for e in test], max_length)
        truth = np.array(loaded.preprocessor.label_ids(test))
        result = export_tflite(serving.numeric, [tf.TensorSpec([1, max_length], tf.int32, name="token_ids")],
                               out / "model_int8.tflite", {"token_ids": ids[:8]},
                               {"probabilities": serving.numeric(ids[:8])["probabilities"].numpy()}, atol=None,
                               trackable_obj=loaded.model, quantize=True,
                               fusion=fuse_recurrent if fused else None)
        accuracy = {name: float(np.mean(TFLiteRunner(out / f)(token_ids=ids)["probabilities"].argmax(-1) == truth))
                    for name, f in (("float", "model.tflite"), ("int8", "model_int8.tflite"))}
        result.update({"accuracy_float": accuracy["float"], "accuracy_int8": accuracy["int8"],
                       "accuracy_change": accuracy["int8"] - accuracy["float"], "examples": len(test)})
        if result["accuracy_change"] < -MAX_INT8_ACCURACY_DROP:
            raise ExportError(f"int8 TFLite loses {-result['accuracy_change']:.3f} accuracy "
                              f"(more than {MAX_INT8_ACCURACY_DROP}); export --format onnx or savedmodel instead")
        return {"tflite_int8": result}

    def predict_exported(self, export_dir, assets, runtime, inputs, **options):
        if runtime == "savedmodel":
            outputs = load_runner(export_dir, runtime, signature="serving_default")(
                texts=np.array(inputs, dtype=object))
            return self._rows(inputs, [label.decode("utf-8") for label in outputs["label"]], outputs["probability"])
        ids = TextClassificationPreprocessor.encode_assets(assets, inputs,
                                                           assets["max_length"] if runtime == "tflite" else None)
        scores = load_runner(export_dir, runtime)(token_ids=ids)["probabilities"]
        return self._rows(inputs, [assets["labels"][i] for i in scores.argmax(axis=-1)], scores.max(axis=-1))
