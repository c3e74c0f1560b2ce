"""The character language model: next-character prediction trained with truncated BPTT, text
generation, and what single cells of the recurrent state track.

Data: `synthetic` (code-like files with nested brackets, quotes and indentation:
`pipelines/synthetic_code.py`), `tfds:tiny_shakespeare`, a directory with `train.txt`,
`valid.txt` (or `dev.txt`) and `test.txt`, or a single text file (dev and test are then cut
from the end of its text). Metrics: `bpc` (bits per character) and `perplexity` (per
character), over the whole text with the state carried from its first character to its last.

    rnnapps train charlm --data novel.txt --out runs/novel
    rnnapps predict runs/novel --prompt "The " --length 500 --temperature 0.8 --seed 1
    rnnapps predict runs/novel --activations --text chapter.txt --cell 12
"""

from __future__ import annotations

import dataclasses
import math

import keras
import numpy as np
import tensorflow as tf

from apps import activations
from apps.char_generation import Generator, generate_numpy
from apps.app import App, ExportTargets, Loaded, Target
from apps.config import ConfigError, RegularizationConfig, TrainConfig, choice, replace
from apps.encoders import EMBEDDING_SEED, ENCODER_SEED, encoder_implementation
from apps.training import Progress
from export.runtimes import load_runner
from layers import cells
from layers.bits_per_character import BitsPerCharacter
from layers.recurrent_stack import fusable_options
from layers.char_language_model import char_language_model
from layers.masked_cross_entropy import WeightedTokenCrossEntropy
from pipelines import synthetic_code
from pipelines.char_preprocessor import CharPreprocessor
from pipelines.char_text import Document, complete_text_splits, find_text_splits, read_text
from pipelines.errors import DataError
from pipelines.tfds_source import load_tfds_split

STEP_SIGNATURE = "step"  # the SavedModel signature of the step model (as model.onnx and model.tflite)
GENERATION_DEFAULTS = {"length": 200, "temperature": 1.0, "top_k": 0, "bias": 0.0, "seed": 0}
SCORING_STEPS = 256  # characters per chunk of the whole-text pass


@dataclasses.dataclass(frozen=True)
class CharDataConfig:
    source: str = "synthetic"  # `synthetic[?size=N&seed=S]` (N files), `tfds:NAME`, a directory or a text file
    # Parallel streams: row i of a batch continues row i of the batch before. 64 on War and Peace
    # (30 minutes on 2 cores): dev bpc 1.6336 after 8 epochs against 1.6940 after 11 with 128
    # (twice the updates per character; 20% fewer characters a second).
    batch_size: int = 64
    steps: int = 100  # characters per chunk: gradients flow back this far (truncated BPTT)
    vocab_size: int = 256  # characters kept, padding and [UNK] included (the most frequent)
    min_count: int = 1  # rarer characters become [UNK]
    lowercase: bool = False
    dev_fraction: float = 0.05  # of train's text, cut from its end, when the source has no dev split
    test_fraction: float = 0.05  # likewise, before dev
    splits: str = ""  # resolved: where each split came from


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    # One layer of 512 LSTM cells: within 30 minutes on 2 cores (8 epochs of War and Peace), dev
    # bpc 1.6336; 384 cells learned more slowly per epoch (README, "Results").
    embedding_dim: int = 32
    cell: str = choice("lstm", cells.names())
    units: int = 512
    num_layers: int = 1
    # false: our layers.Recurrent cells, which with train.jit_compile=on trained 1.40x faster on
    # War and Peace on 2 CPU cores (16,871 against 12,061 characters a second; README,
    # "Results"); true: plain lstm / gru as keras.layers.LSTM / GRU (cuDNN on a GPU).
    prefer_fused: bool = False
    # true: lstm, layernorm_lstm and bn_lstm train through layers.native_lstm (MKL's packed GEMM, the
    # `native` extra; README, "Recurrent cells"), outside XLA: with train.jit_compile=off or auto.
    native: bool = False
    vocab_size: int = 0  # resolved: characters + padding + [UNK]
    implementation: str = ""  # resolved


@dataclasses.dataclass(frozen=True)
class CharLMConfig:
    app: str = choice("charlm", ("charlm",))
    seed: int = 42
    data: CharDataConfig = CharDataConfig()
    model: ModelConfig = ModelConfig()
    regularization: RegularizationConfig = RegularizationConfig()
    # War and Peace (benchmarks/charlm_real.py, 30 minutes on 2 cores, 8 epochs): dev bpc was still
    # falling at a constant rate 3e-3 (1.7386 after 7 epochs), by less each epoch; the learning rate
    # decays from the 4th epoch on.
    train: TrainConfig = TrainConfig(epochs=30, lr_decay=0.7, lr_decay_start=3, jit_compile="on")

    @classmethod
    def smoke(cls) -> "CharLMConfig":
        # Tiny models compile longer under XLA than they train: the fused layer, Keras's choice.
        return replace(cls(), **{"data.source": "synthetic?size=20", "data.batch_size": 4, "data.steps": 20,
                                 "model.embedding_dim": 4, "model.units": 8, "train.epochs": 2,
                                 "model.prefer_fused": True, "train.jit_compile": "auto"})


def prompts_of(inputs: list[str], options: dict) -> list[str]:
    """The prompts of `predict`: its inputs, and --prompt (an empty prompt: a newline)."""
    prompts = list(inputs) + ([options["prompt"]] if options.get("prompt") is not None else [])
    return prompts or [""]


def whole_text_bits(model: keras.Model, layout, progress: Progress | None = None) -> tuple[float, float]:
    """(bits, characters) of next-character predictions over every document of a `cut=False`
    stream layout: each document in one row from its first character to its last, the state
    carried between chunks, so the result is that of one pass over each whole text."""
    embedding, stack, head = (model.get_layer("embedding"), model.get_layer("carried_state").stack,
                              model.get_layer("logits"))
    rows = layout.inputs.shape[1]
    shapes = stack.compute_output_shape((rows, layout.inputs.shape[2], embedding.output_dim))[1:]
    states = [tf.zeros((rows, shape[-1])) for shape in shapes]

    @tf.function
    def chunk(tokens, targets, weights, reset, states):
        keep = 1.0 - tf.cast(reset, tf.float32)[:, None]
        outputs, *states = stack(embedding(tokens), mask=tokens > 0, initial_state=[s * keep for s in states],
                                 training=False)
        nats = keras.losses.sparse_categorical_crossentropy(targets, head(outputs), from_logits=True)
        return tf.reduce_sum(tf.cast(nats, tf.float64) * weights), states

    bits = 0.0
    for k in range(len(layout.inputs)):
        nats, states = chunk(layout.inputs[k], layout.targets[k], layout.weights[k].astype(np.float64),
                             layout.reset[k], states)
        bits += float(nats) / math.log(2.0)
        if progress is not None:
            progress.update(int(layout.weights[k].sum()))
    return bits, float(layout.weights.sum())


class CharLM(App):
    name = "charlm"
    config_class = CharLMConfig
    preprocessor_class = CharPreprocessor
    monitor = ("val_bpc", "min")
    history_metrics = ("loss", "bpc")
    sample_weights = True  # padding weighs 0 in the loss and in bpc
    reads_files = True
    multiline_predictions = True  # generated text keeps its line breaks
    synthetic_size = 300  # files of about 800 characters
    demo_inputs = ("def ", "    if (")

    # --- sources -------------------------------------------------------------------------------

    def generate(self, n, seed, config=None):
        return [Document(text, f"synthetic (seed {seed}) #{i}") for i, text in enumerate(synthetic_code.generate(n, seed))]

    def read_directory(self, path, config, required="train"):
        files = find_text_splits(path, required)
        return {split: [read_text(f)] for split, f in files.items()}, files

    def tfds_split(self, name, split, config):
        ds, info = load_tfds_split(name, split)
        if "text" not in info.features:
            raise ConfigError(f"tfds:{name} has no 'text' feature to read characters from")
        return [Document(row["text"].decode("utf-8", errors="replace"), f"tfds:{name}[{split}] #{i}")
                for i, row in enumerate(ds.as_numpy_iterator()) if row["text"]]

    def complete_splits(self, splits, found, config):
        return complete_text_splits(splits, found, config.data.dev_fraction, config.data.test_fraction)

    # --- preprocessing and model -----------------------------------------------------------------

    def preprocessor_options(self, config):
        return {"seed": config.seed}

    def resolve(self, config, fitted):
        return replace(config, **{"model.vocab_size": fitted["vocab_size"],
                                  "model.implementation": encoder_implementation(
                                      config.model.cell, config.regularization, config.model.prefer_fused,
                                      config.model.native)})

    def build_model(self, config) -> keras.Model:
        """{"tokens" (streams, steps), "reset" (streams,)} -> next-character logits: embedding,
        a recurrent stack whose states carry over from one batch to the next (`CarriedState`),
        dense softmax layer."""
        m, reg = config.model, config.regularization
        replicas = tf.distribute.get_strategy().num_replicas_in_sync  # built in the strategy's scope
        if config.data.batch_size % replicas:
            raise ConfigError(f"data.batch_size ({config.data.batch_size} streams) must divide evenly among the "
                              f"{replicas} replicas: each carries the states of its own streams")
        return char_language_model(m.vocab_size, [m.units] * m.num_layers, config.data.batch_size, m.cell,
                                   m.embedding_dim, cell_options=fusable_options(m.cell),
                                   seed=config.seed + ENCODER_SEED, embedding_dropout=reg.embedding_dropout,
                                   embedding_seed=config.seed + EMBEDDING_SEED, prefer_fused=m.prefer_fused,
                                   name=self.name, native=m.native,
                                   **reg.stack_options())

    def loss_and_metrics(self, config):
        return (WeightedTokenCrossEntropy(),
                [BitsPerCharacter()])

    def score(self, loaded, documents, **options):
        """bpc and perplexity per character over each whole text, the state carried throughout."""
        layout = loaded.preprocessor.layout(documents, min(len(documents), 64), SCORING_STEPS, cut=False)
        progress = Progress(int(layout.weights.sum()), "scoring characters")
        bits, count = whole_text_bits(loaded.model, layout, progress)
        bpc = bits / count
        return {"bpc": round(bpc, 6), "perplexity": round(2.0 ** bpc, 6), "characters": int(count),
                "examples": len(documents)}

    def search_space(self):
        return {**super().search_space(), "model.cell": cells.names(), "model.units": [128, 256, 512],
                "model.num_layers": [1, 2], "data.steps": [50, 100, 200],
                "regularization.weight_dropout": [0.0, 0.25, 0.5], "regularization.embedding_dropout": [0.0, 0.1]}

    # --- generation and the activation view -----------------------------------------------------

    def serving(self, loaded: Loaded) -> Generator:
        return Generator(loaded.model, loaded.preprocessor)

    def add_arguments(self, parser, command):
        if command != "predict":
            return
        d = GENERATION_DEFAULTS
        parser.add_argument("--prompt", default=None, help="text to continue (as an INPUT; default: a newline)")
        parser.add_argument("--length", type=int, default=d["length"],
                            help=f"characters to generate (default: {d['length']})")
        parser.add_argument("--temperature", type=float, default=d["temperature"],
                            help=f"sampling temperature; 0 is greedy (default: {d['temperature']})")
        parser.add_argument("--top-k", type=int, default=d["top_k"],
                            help="draw among the k most probable characters (default: 0, all)")
        parser.add_argument("--bias", type=float, default=d["bias"],
                            help="Graves's sampling bias: b > 0 sharpens like temperature 1 / (1 + b) (default: 0)")
        parser.add_argument("--seed", type=int, default=d["seed"], help="the draws' seed (default: 0)")
        parser.add_argument("--activations", action="store_true",
                            help="colour --text by a cell's state (HTML and PNG) and rank cells by what they track")
        parser.add_argument("--text", help="with --activations: the UTF-8 text file to run the model over")
        parser.add_argument("--cell", type=int, default=None,
                            help="with --activations: the cell to colour by (default: the best bracket-depth cell)")

    def options_give_inputs(self, options):
        return options.get("prompt") is not None or bool(options.get("activations"))

    @staticmethod
    def generation_options(options: dict) -> dict:
        o = {k: v if options.get(k) is None else options[k] for k, v in GENERATION_DEFAULTS.items()}
        if o["length"] < 1:
            raise ConfigError(f"--length must be positive, received {o['length']}")
        if o["temperature"] < 0 or o["top_k"] < 0:
            raise ConfigError(f"--temperature and --top-k must be non-negative, received {o['temperature']} "
                              f"and {o['top_k']}")
        if o["bias"] <= -1:
            raise ConfigError(f"--bias must be greater than -1, received {o['bias']}")
        return o

    def predict(self, run_dir, inputs, **options):
        """Generated continuations of `inputs` (or of --prompt); with `activations`, the view of
        `text` instead."""
        if options.get("activations"):
            if not options.get("text"):
                raise DataError("--activations needs --text FILE: the text to run the model over")
            loaded = self.load(run_dir)
            return [activations.view(Generator(loaded.model, loaded.preprocessor), read_text(options["text"]),
                                     loaded.run.plots, options.get("cell"))]
        return super().predict(run_dir, prompts_of(inputs, options), **options)

    def predict_export(self, export_dir, runtime, inputs, **options):
        return super().predict_export(export_dir, runtime, prompts_of(inputs, options), **options)

    def predict_rows(self, loaded, serving, inputs, **options):
        o = self.generation_options(options)
        out = serving.generate(tf.constant(inputs), tf.constant(o["length"]), tf.constant(o["temperature"]),
                               tf.constant(o["top_k"]), tf.constant(o["bias"]), tf.constant(o["seed"]))
        return [{"text": p, "generated": g.decode("utf-8")} for p, g in zip(inputs, out["generated"].numpy())]

    def format_prediction(self, row):
        if "html" in row:
            return activations.describe(row)
        return (row["text"] + row["generated"]).replace("\n", "\n  ")

    def demo_config(self):
        """A 128-cell LSTM on 300 synthetic files: about a minute on 2 cores."""
        return replace(CharLMConfig(), **{"data.batch_size": 32, "model.units": 128, "model.embedding_dim": 16,
                                          "train.epochs": 8, "train.learning_rate": 5e-3})

    # --- export --------------------------------------------------------------------------------

    def export_targets(self, loaded, serving):
        """savedmodel: `serving_default` (prompts, length, temperature, top_k, bias, seed ->
        generated) and `step`; onnx and tflite: the step model (tflite at batch 1)."""
        sizes = serving.state_sizes
        rng = np.random.default_rng(0)
        ids = np.array([2, 3, 1, loaded.model.get_layer("logits").units - 1], np.int32)
        inputs = {"char_ids": ids, **{n: rng.normal(0, 0.5, (len(ids), s)).astype(np.float32) for n, s in sizes.items()}}

        def specs(batch=None):
            return [tf.TensorSpec([batch], tf.int32, name="char_ids"),
                    *[tf.TensorSpec([batch, s], tf.float32, name=n) for n, s in sizes.items()]]

        step_text = {"inputs": "char_ids int32 (batch,), then every state float32 (batch, size), zeros at the start",
                     "outputs": "logits float32 (batch, characters + 2): id i is characters[i - 2]; 0 padding "
                                "(never drawn), 1 [UNK]; and next_<state> for every state"}
        d = GENERATION_DEFAULTS
        return ExportTargets(
            {"serving_default": serving.generate.get_concrete_function(),
             STEP_SIGNATURE: serving.step.get_concrete_function(*specs())},
            {"prompts": np.array(list(self.demo_inputs) + [""], dtype=object), "length": np.int32(40),
             "temperature": np.float32(0.8), "top_k": np.int32(0), "bias": np.float32(0.0), "seed": np.int32(1)},
            {"generator": serving},
            onnx=[Target("onnx", "model.onnx", serving.step, specs(), inputs)],
            tflite=[Target("tflite", "model.tflite", serving.step, specs(1), inputs)],
            files={"savedmodel": {"serving_default": "prompts string (batch,), length, temperature, top_k, bias, "
                                                     "seed -> generated string (batch,)",
                                  STEP_SIGNATURE: step_text},
                   "model.onnx": step_text, "model.tflite": {**step_text, "batch": 1}},
            extra={"states": sizes, "generation_defaults": d,
                   "sampling": "layers/decoding.py: softmax(logits x (1 + bias) / temperature) over the top_k, drawn "
                               "by inverse CDF at counter_uniform_numpy(seed, step, row)"})

    def predict_exported(self, export_dir, assets, runtime, inputs, **options):
        if options.get("activations"):
            raise DataError("--activations needs a run directory (the Keras model), not an export")
        o, prompts = self.generation_options(options), inputs
        if runtime == "savedmodel":
            out = load_runner(export_dir, runtime, signature="serving_default")(
                prompts=np.array(prompts, dtype=object), length=np.int32(o["length"]),
                temperature=np.float32(o["temperature"]), top_k=np.int32(o["top_k"]), bias=np.float32(o["bias"]),
                seed=np.int32(o["seed"]))
            generated = [g.decode("utf-8") for g in out["generated"]]
        else:
            generated = generate_numpy(load_runner(export_dir, runtime), assets, prompts, **o)
        return [{"text": p, "generated": g} for p, g in zip(prompts, generated)]
