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

from apps.config import ConfigError, DataConfig, RegularizationConfig, TrainConfig, choice, replace
from apps.encoders import encoder_implementation, recurrent_encoder, token_embedding
from apps.rundir import RunDir, atomic_write_json, atomic_write_text, save_model_atomic
from apps.training import evaluation_split, fit_run, log, make_optimizer, make_strategy, plot_history
from export import ExportError
from export.onnx import export_onnx
from export.parity import write_report
from export.runtimes import NUMERIC_SIGNATURE, load_runner, read_assets
from export.savedmodel import export_savedmodel
from export.tflite import export_tflite
from layers import cells
from layers.masked_pooling import MaskedPooling
from pipelines import synthetic_sentiment
from pipelines.batching import bucket_boundaries
from pipelines.errors import DataError
from pipelines.lengths import length_stats
from pipelines.sources import complete_splits, parse_source
from pipelines.text_encoding import labeled_text_dataset, pad_ids, text_encoder
from pipelines.text_files import TextExample, find_split_files, read_labeled_text
from pipelines.tokenization import tokenize_texts
from pipelines.text_rules import DELIMITERS, KEPT_DELIMITERS, encode_text, pad_rows
from pipelines.vocabulary import OOV_ID, Vocabulary

NAME = "sentiment"

EXPORT_FORMATS = ("savedmodel", "onnx", "tflite")
SYNTHETIC_SIZE = 4000  # training reviews of the `synthetic` source; dev and test get a fifth each
DEMO_INPUTS = (
    "the movie was very good",
    "the movie was not good",
    "the acting was great but the plot was boring",
    "although the plot was boring , the acting was great",
    "honestly , the ending was never dull",
)


# --- config -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    embedding_dim: int = 64
    cell: str = choice("lstm", cells.names())  # `rnnapps list` shows them
    units: int = 64
    num_layers: int = 1
    bidirectional: bool = True
    pooling: str = choice("last", ("last", "max", "mean"))  # over time, mask-aware
    dropout: float = 0.2  # before the classifier
    num_classes: int = 0  # resolved: the number of labels in train
    implementation: str = ""  # resolved: the built-in fused layer, or our cell in layers.Recurrent


@dataclasses.dataclass(frozen=True)
class SentimentConfig:
    app: str = choice(NAME, (NAME,))
    seed: int = 42
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    regularization: RegularizationConfig = RegularizationConfig()
    train: TrainConfig = TrainConfig(epochs=4)

    @classmethod
    def smoke(cls) -> "SentimentConfig":
        """A tiny config for tests: trains in seconds."""
        return replace(
            cls(),
            **{"data.source": "synthetic?size=200", "data.batch_size": 16, "data.num_buckets": 2,
               "model.embedding_dim": 8, "model.units": 8, "train.epochs": 2},
        )


Config = SentimentConfig


# --- model --------------------------------------------------------------------------------


def build_model(config: SentimentConfig, vocab_size: int) -> keras.Model:
    """token_ids (batch, time) -> embedding with mask -> recurrent stack -> pooling -> logits."""
    m = config.model
    if m.num_classes < 2:
        raise ConfigError(f"model.num_classes must be at least 2, received {m.num_classes}")
    if m.num_layers < 1:
        raise ConfigError(f"model.num_layers must be positive, received {m.num_layers}")
    token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    reg = config.regularization
    x = token_embedding(vocab_size, m.embedding_dim, reg, config.seed, name="embedding")(token_ids)
    # `last` pooling is the recurrent stack's own final output, which skips padding and, when
    # bidirectional, joins both directions' final states.
    x = recurrent_encoder(m.cell, [m.units] * m.num_layers, reg, config.seed, name="recurrent",
                          bidirectional=m.bidirectional, return_sequences=m.pooling != "last")(x)
    if m.pooling != "last":
        x = MaskedPooling(m.pooling, name=f"{m.pooling}_pooling")(x)
    x = keras.layers.Dropout(m.dropout, seed=config.seed, name="dropout")(x)
    logits = keras.layers.Dense(m.num_classes, name="logits")(x)
    return keras.Model(token_ids, logits, name=NAME)


def compile_model(model: keras.Model, config: SentimentConfig) -> None:
    model.compile(
        optimizer=make_optimizer(config.train),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )


# --- data ---------------------------------------------------------------------------------


def synthetic_splits(size: int, seed: int) -> dict[str, list[synthetic_sentiment.SentimentSample]]:
    """The `synthetic` source: train, dev and test generated from separate seeds."""
    return {
        "train": synthetic_sentiment.generate(size, seed),
        "dev": synthetic_sentiment.generate(max(size // 5, 1), seed + 1),
        "test": synthetic_sentiment.generate(max(size // 5, 1), seed + 2),
    }


def _tfds_examples(name: str, split: str) -> list[TextExample]:
    from pipelines.tfds_source import load_tfds_split

    ds, info = load_tfds_split(name, split)
    feature = info.features["label"]
    names = getattr(feature, "names", None)
    examples = []
    for i, row in enumerate(ds.as_numpy_iterator()):
        label = int(row["label"])
        text = row["text"].decode("utf-8", errors="replace")
        examples.append(TextExample(text, names[label] if names else str(label), f"tfds:{name}[{split}] #{i}"))
    if not examples:
        raise DataError(f"tfds:{name} split {split!r} is empty")
    return examples


def load_examples(config: SentimentConfig) -> tuple[dict[str, list[TextExample]], str]:
    """All three splits of `config.data.source`, and a note of where each came from."""
    spec = parse_source(config.data.source)
    d = config.data
    if spec.kind == "synthetic":
        size, seed = spec.param("size", SYNTHETIC_SIZE), spec.param("seed", config.seed)
        if size < 10:
            raise DataError(f"synthetic size must be at least 10, received size={size}")
        splits = {
            name: [TextExample(s.text, s.label, f"synthetic:{name} #{i}") for i, s in enumerate(samples)]
            for name, samples in synthetic_splits(size, seed).items()
        }
        return splits, f"synthetic: train {size}, dev and test {max(size // 5, 1)} each (seed {seed})"
    if spec.kind == "tfds":
        from pipelines.tfds_source import split_names

        found = split_names(spec.name)
        splits = {split: _tfds_examples(spec.name, name) for split, name in found.items()}
    else:
        files = find_split_files(spec.name)
        splits = {split: read_labeled_text(path) for split, path in files.items()}
        found = {split: pathlib.Path(path).name for split, path in files.items()}
    return complete_splits(splits, found, d.dev_fraction, d.test_fraction, config.seed)


@dataclasses.dataclass(frozen=True)
class Assets:
    vocab: Vocabulary
    labels: list[str]

    def save(self, directory: pathlib.Path) -> None:
        self.vocab.save(directory / "vocab.txt")
        atomic_write_text(directory / "labels.txt", "\n".join(self.labels) + "\n")

    @classmethod
    def load(cls, directory: pathlib.Path) -> "Assets":
        labels = (directory / "labels.txt").read_text(encoding="utf-8").splitlines()
        return cls(Vocabulary.load(directory / "vocab.txt"), labels)


def prepare(config: SentimentConfig, splits) -> tuple[SentimentConfig, Assets]:
    """Vocabulary, labels and maximum length from the training split; the config they resolve."""
    d = config.data
    train = splits["train"]
    tokens = tokenize_texts([e.text for e in train], d.lowercase)
    vocab = Vocabulary.build(tokens, max_size=d.vocab_size, min_count=d.min_count)
    labels = sorted({e.label for e in train})
    if len(labels) < 2:
        raise DataError(f"train has a single label {labels!r}: a classifier needs at least two")
    stats = length_stats([len(t) for t in tokens], d.length_percentile)
    log(f"train: {len(train)} examples, {len(vocab)} tokens in the vocabulary, labels {labels}")
    log(stats.describe())
    max_length = d.max_length if d.max_length is not None else stats.at_percentile
    log(f"max_length = {max_length}" + (" (set in the config)" if d.max_length is not None
                                        else f" ({d.length_percentile:g}th percentile)"))
    implementation = encoder_implementation(config.model.cell, config.regularization)
    resolved = replace(config, **{"data.max_length": max_length, "model.num_classes": len(labels),
                                  "model.implementation": implementation})
    return resolved, Assets(vocab, labels)


def label_ids(examples: list[TextExample], labels: list[str]) -> list[int]:
    index = {label: i for i, label in enumerate(labels)}
    for e in examples:
        if e.label not in index:
            raise DataError(f"{e.where}: label {e.label!r} never appears in train (train labels: {labels})")
    return [index[e.label] for e in examples]


def make_dataset(examples, assets: Assets, config: SentimentConfig, training: bool) -> tf.data.Dataset:
    d = config.data
    boundaries = None
    if d.bucketing:
        lengths = [len(t) for t in tokenize_texts([e.text for e in examples], d.lowercase)]
        boundaries = bucket_boundaries(lengths, d.num_buckets, d.max_length)
    encode = text_encoder(assets.vocab.lookup_table(), d.lowercase, d.max_length)
    return labeled_text_dataset(
        [e.text for e in examples], label_ids(examples, assets.labels), encode, d.batch_size, boundaries,
        shuffle_buffer=min(config.train.shuffle_buffer, len(examples)) if training else 0, seed=config.seed,
    )


# --- serving ------------------------------------------------------------------------------


class Classifier(tf.Module):
    """Raw strings in, labels and probabilities out: used by `predict` and as the SavedModel."""

    def __init__(self, model: keras.Model, assets: Assets, config: SentimentConfig):
        super().__init__()
        self.model = model
        self.table = assets.vocab.lookup_table()
        self.labels = tf.constant(assets.labels)
        self._encode = text_encoder(self.table, config.data.lowercase, config.data.max_length)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="texts")])
    def classify(self, texts):
        token_ids = pad_ids(self._encode(texts))  # (batch, time)
        probabilities = tf.nn.softmax(self.model(token_ids, training=False), axis=-1)  # (batch, classes)
        best = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
        return {
            "label": tf.gather(self.labels, best),
            "probability": tf.reduce_max(probabilities, axis=-1),
            "probabilities": probabilities,
        }


def stream_step_function(model: keras.Model, config: SentimentConfig):
    """For streaming a unidirectional model one token at a time: `(token_ids (batch,), *states)
    -> {"probabilities", *states}`, and the state names and sizes (all states start at 0).

    After the tokens of a text, the probabilities equal the model's on the whole text. Returns
    (None, why) where streaming is not available.
    """
    m = config.model
    if m.bidirectional:
        return None, "not available: a bidirectional model needs the whole sequence"
    if m.cell not in cells.step_names():
        return None, f"not available: {m.cell} normalises with statistics per timestep, not carried in its state"
    embedding, dense = model.get_layer("embedding"), model.get_layer("logits")
    layer_cells = [layer.cell for layer in model.get_layer("recurrent").recurrent_layers]
    sizes = {}
    for i, cell in enumerate(layer_cells):
        cell_sizes = cell.state_size if isinstance(cell.state_size, (list, tuple)) else [cell.state_size]
        sizes.update({f"layer{i}_state{j}": int(size) for j, size in enumerate(cell_sizes)})
    width = int(layer_cells[-1].output_size if hasattr(layer_cells[-1], "output_size") else m.units)
    if m.pooling == "max":
        sizes.update({"pool_max": width, "pool_count": 1})
    elif m.pooling == "mean":
        sizes.update({"pool_sum": width, "pool_count": 1})
    names = list(sizes)

    @tf.function
    def stream_step(token_ids, *states):
        state = dict(zip(names, states))
        x = embedding(token_ids)  # (batch, embedding_dim)
        new = {}
        for i, cell in enumerate(layer_cells):
            keys = [n for n in names if n.startswith(f"layer{i}_")]
            x, cell_states = cell(x, [state[k] for k in keys], training=False)
            new.update(zip(keys, cell_states))
        if m.pooling == "last":
            pooled = x
        else:
            count = state["pool_count"] + 1.0  # (batch, 1)
            new["pool_count"] = count
            if m.pooling == "max":
                pooled = tf.where(count > 1.0, tf.maximum(state["pool_max"], x), x)
                new["pool_max"] = pooled
            else:
                new["pool_sum"] = state["pool_sum"] + x
                pooled = new["pool_sum"] / count
        return {"probabilities": tf.nn.softmax(dense(pooled), axis=-1), **new}

    return stream_step, sizes


def load_run(run_dir) -> tuple[RunDir, SentimentConfig, keras.Model, Assets]:
    run = RunDir(run_dir).require_complete()
    config = run.read_config(SentimentConfig)
    model = keras.saving.load_model(run.model, safe_mode=True, compile=False)
    return run, config, model, Assets.load(run.assets)


# --- commands -----------------------------------------------------------------------------


def train(config: SentimentConfig, out, strategy: str = "default", callbacks=()) -> dict:
    """Trains into the run directory `out` (resuming it if unfinished); returns test metrics."""
    keras.utils.set_random_seed(config.seed)
    splits, origin = load_examples(config)
    config = replace(config, **{"data.splits": origin})
    config, assets = prepare(config, splits)
    datasets = {name: make_dataset(splits[name], assets, config, training=name == "train")
                for name in ("train", "dev", "test")}  # checks every label before the run starts
    with make_strategy(strategy).scope():  # a bad model or optimizer setting fails before the run exists
        model = build_model(config, len(assets.vocab))
        compile_model(model, config)
    run = RunDir(out)
    run.start(config)
    assets.save(run.assets)
    fit_run(model, run, datasets["train"], datasets["dev"], config.train.epochs, callbacks=callbacks)
    loss, accuracy = model.evaluate(datasets["test"], verbose=0)
    metrics = {"accuracy": float(accuracy), "loss": float(loss), "examples": len(splits["test"])}
    atomic_write_json(run.metrics("test"), metrics)
    plot_history(run)
    save_model_atomic(model, run.model)  # last: its presence marks the run as finished
    return metrics


def evaluate(run_dir, source: str | None = None, split: str = "test") -> dict:
    run, config, model, assets = load_run(run_dir)
    config, examples = evaluation_split(config, source, split, load_examples)
    compile_model(model, config)
    loss, accuracy = model.evaluate(make_dataset(examples, assets, config, training=False), verbose=0)
    metrics = {"accuracy": float(accuracy), "loss": float(loss), "examples": len(examples)}
    atomic_write_json(run.metrics(split), metrics)
    return metrics


def predict(run_dir, texts: list[str]) -> list[dict]:
    if not texts:
        raise DataError("nothing to predict: give texts as arguments or --file PATH")
    _, config, model, assets = load_run(run_dir)
    classifier = Classifier(model, assets, config)  # held: its tf.function binds it weakly
    outputs = classifier.classify(tf.constant(texts))
    return [
        {"text": text, "label": label.decode("utf-8"), "probability": round(float(p), 6)}
        for text, label, p in zip(texts, outputs["label"].numpy(), outputs["probability"].numpy())
    ]


def numeric_function(model: keras.Model):
    """The numeric core that ONNX and TFLite get: token ids in, class probabilities out."""

    @tf.function
    def probabilities(token_ids):
        return {"probabilities": tf.nn.softmax(model(token_ids, training=False), axis=-1)}

    return probabilities


def export(run_dir, out_dir, formats: list[str]) -> dict:
    """Writes the requested formats and `assets.json` to `out_dir`, each checked against Keras.

    - savedmodel: `serving_default` (raw strings -> label, probability, probabilities) and
      `numeric` (token_ids -> probabilities);
    - onnx: `model.onnx`, token_ids (batch, time) -> probabilities, dynamic axes;
    - tflite: `model.tflite`, token_ids (1, max_length) -> probabilities: pad or cut to max_length.
    """
    _, config, model, assets = load_run(run_dir)
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    max_length = config.data.max_length
    classifier = Classifier(model, assets, config)
    numeric = numeric_function(model)
    samples = [*DEMO_INPUTS, "", "An UNSEEN wordzz, in the review!", " ".join(["good"] * (2 * max_length))]
    ids_map = {token: i for i, token in enumerate(assets.vocab.tokens)}
    rows = [encode_text(t, ids_map, OOV_ID, config.data.lowercase, max_length) for t in samples]
    ids_spec = tf.TensorSpec([None, None], tf.int32, name="token_ids")
    stream_step, state_sizes = stream_step_function(model, config)
    streaming_unavailable = state_sizes if stream_step is None else None
    state_sizes = {} if stream_step is None else state_sizes

    def stream_signature(batch=None):
        return [tf.TensorSpec([batch], tf.int32, name="token_ids"),
                *[tf.TensorSpec([batch, size], tf.float32, name=name) for name, size in state_sizes.items()]]

    report = {}
    if "savedmodel" in formats:
        texts = tf.constant(samples)
        reference = {k: v.numpy() for k, v in classifier.classify(texts).items()}
        signatures = {"serving_default": classifier.classify.get_concrete_function(),
                      NUMERIC_SIGNATURE: numeric.get_concrete_function(ids_spec)}
        if stream_step is not None:
            signatures["stream_step"] = stream_step.get_concrete_function(*stream_signature())
        report["savedmodel"] = export_savedmodel(
            tf.Module(), signatures, out / "savedmodel", {"texts": texts}, reference,
            trackable={"classifier": classifier},
        )
    if "onnx" in formats:
        ids = pad_rows(rows)
        report["onnx"] = export_onnx(numeric, [ids_spec], out / "model.onnx", {"token_ids": ids},
                                     {"probabilities": numeric(ids)["probabilities"].numpy()})
    if "tflite" in formats:
        ids = pad_rows(rows, max_length)
        report["tflite"] = export_tflite(numeric, [tf.TensorSpec([1, max_length], tf.int32, name="token_ids")],
                                         out / "model.tflite", {"token_ids": ids},
                                         {"probabilities": numeric(ids)["probabilities"].numpy()},
                                         trackable_obj=model)
        report["tflite_int8"] = _export_int8(numeric, max_length, out, model, config, assets)
        if stream_step is not None:
            inputs = {"token_ids": np.array([row[0] if row else OOV_ID for row in rows], np.int32),
                      **{name: np.zeros((len(rows), size), np.float32) for name, size in state_sizes.items()}}
            reference = {k: v.numpy() for k, v in stream_step(*[tf.constant(inputs[spec.name])
                                                                 for spec in stream_signature()]).items()}
            report["tflite_stream"] = export_tflite(stream_step, stream_signature(1), out / "stream_step.tflite",
                                                    inputs, reference, trackable_obj=model)
    atomic_write_json(out / "assets.json", {
        "app": NAME, "labels": assets.labels, "vocabulary": assets.vocab.tokens,
        "tokenizer": {"lowercase": config.data.lowercase, "rules": "pipelines/text_rules.py",
                      "delimiters": DELIMITERS, "kept_delimiters": KEPT_DELIMITERS},
        "max_length": max_length, "pad_id": 0, "oov_id": OOV_ID,
        "inputs": {"token_ids": "int32 (batch, time): token ids cut to max_length, right-padded with pad_id"},
        "outputs": {"probabilities": "float32 (batch, classes), in the order of labels"},
        "tflite_input_shape": [1, max_length],
        "streaming": ({"savedmodel_signature": "stream_step", "tflite": "stream_step.tflite",
                       "inputs": "token_ids (batch,) and every state, all states starting at 0",
                       "states": state_sizes} if stream_step is not None else streaming_unavailable),
    })
    write_report(out / "parity.json", report)
    return report


MAX_INT8_ACCURACY_DROP = 0.02


def _export_int8(numeric, max_length: int, out: pathlib.Path, model, config, assets) -> dict:
    """`model_int8.tflite` (dynamic-range quantized weights), kept only if its accuracy on the
    run's test split is within MAX_INT8_ACCURACY_DROP of the float TFLite model's."""
    from export.tflite import TFLiteRunner

    splits, _ = load_examples(config)
    test = splits["test"]
    ids_map = {token: i for i, token in enumerate(assets.vocab.tokens)}
    ids = pad_rows([encode_text(e.text, ids_map, OOV_ID, config.data.lowercase, max_length) for e in test], max_length)
    truth = np.array(label_ids(test, assets.labels))
    result = export_tflite(numeric, [tf.TensorSpec([1, max_length], tf.int32, name="token_ids")],
                           out / "model_int8.tflite", {"token_ids": ids[:8]},
                           {"probabilities": numeric(ids[:8])["probabilities"].numpy()}, atol=None,
                           trackable_obj=model, quantize=True)
    accuracy = {name: float(np.mean(TFLiteRunner(out / file)(token_ids=ids)["probabilities"].argmax(-1) == truth))
                for name, file in (("float", "model.tflite"), ("int8", "model_int8.tflite"))}
    result.update({"accuracy_float": accuracy["float"], "accuracy_int8": accuracy["int8"],
                   "accuracy_change": accuracy["int8"] - accuracy["float"], "examples": len(test)})
    if result["accuracy_change"] < -MAX_INT8_ACCURACY_DROP:
        (out / "model_int8.tflite").unlink()
        raise ExportError(f"int8 TFLite loses {-result['accuracy_change']:.3f} accuracy "
                          f"(more than {MAX_INT8_ACCURACY_DROP}); the float model.tflite is unaffected")
    return result


def predict_exported(export_dir, runtime: str, texts: list[str]) -> list[dict]:
    """Predictions from an export directory through one runtime, without the Keras model."""
    if not texts:
        raise DataError("nothing to predict: give texts as arguments or --file PATH")
    assets = read_assets(export_dir)
    if runtime == "savedmodel":
        outputs = load_runner(export_dir, runtime, signature="serving_default")(texts=np.array(texts, dtype=object))
        labels = [label.decode("utf-8") for label in outputs["label"]]
        probabilities = outputs["probability"]
    else:
        ids_map = {token: i for i, token in enumerate(assets["vocabulary"])}
        rows = [encode_text(t, ids_map, assets["oov_id"], assets["tokenizer"]["lowercase"], assets["max_length"])
                for t in texts]
        ids = pad_rows(rows, assets["max_length"] if runtime == "tflite" else None)
        scores = load_runner(export_dir, runtime)(token_ids=ids)["probabilities"]
        labels = [assets["labels"][i] for i in scores.argmax(axis=-1)]
        probabilities = scores.max(axis=-1)
    return [{"text": t, "label": label, "probability": round(float(p), 6)}
            for t, label, p in zip(texts, labels, probabilities)]


def demo_config() -> SentimentConfig:
    return SentimentConfig()

