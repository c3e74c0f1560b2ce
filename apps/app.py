"""The `App` base class: the lifecycle of every app, once.

    config -> splits -> preprocessor fitted on train -> datasets -> model built and compiled under
    the strategy -> resumable fit into the run directory (best model, history, plots) -> test
    metrics -> `model.keras` last; evaluate, predict, export (formats, parity, assets.json),
    predict through an export's runtime, demo. `fit` cuts the learning rate and stops early on
    plateaus of the dev metric (`train.*_patience`).

An app is a subclass that fills in what is its own, in this order (see `apps/sentiment.py`):

- `name`, `config_class` (a frozen dataclass with a `smoke()` classmethod), `demo_inputs`,
  `formats`, `monitor` (the dev metric that picks the best epoch);
- sources: `generate(n, seed)` (the synthetic generator), `read_directory(path, config,
  required)`, `tfds_split(name, split, config)`; each returns examples with a `where` for errors;
- `preprocessor_class` (from `pipelines`; `preprocessor_options(config)` for more arguments) and
  `resolve(config, fitted)`;
- `build_model(config)` (from `layers`) and `loss_and_metrics(config)`; `score(...)` when the
  test metric is not `model.evaluate`'s; `embedding_layers` (preprocessor side -> layer name)
  when the config's `model` section has `PretrainedEmbeddings` keys; `fitted_part(...)` when
  `fit` trains a part of the model on inputs computed once (a frozen encoder's features);
- `serving(loaded)`: a `tf.Module` from raw input to readable output, and `predict_rows`;
- `export_targets(loaded, serving)`, `check_export(...)` and `predict_exported(...)`: what the
  export writes and how a runtime without Keras runs it;
- `add_arguments(parser, command)` (its own command-line options), `format_prediction(row)`,
  `summarize(loaded, step)` (TensorBoard extras), `search_space()` (the keys worth tuning).

Register the class in `apps/registry.py`; `tests/apps/test_app_contract.py` then runs the app
contract on its `smoke()` config.
"""

from __future__ import annotations

import abc
import dataclasses
import importlib.util
import os
import pathlib
import shutil

import keras
import tensorflow as tf

from apps.config import ConfigError, replace
from apps.rundir import RunDir, atomic_write_json, replace_dir_atomic, save_model_atomic
from apps.plots import plot_history
from apps.training import (Progress, check_schedule, fit_run, log, make_optimizer, make_strategy, split_cpu,
                           worker_directory)
from apps.warm_start import copy_weights
from export import ExportError
from export.assets import FILE as ASSETS_FILE
from export.assets import file_sha256, read_assets, write_assets
from export.onnx import export_onnx
from export.parity import write_report
from export.savedmodel import export_savedmodel
from export.stderr import quiet, silenced_stderr
from export.tflite import export_tflite
from layers.ensemble import member_layers
from layers.runtime_recurrent import fuse_recurrent
from pipelines import subwords
from pipelines.errors import DataError
from pipelines.sources import complete_splits, parse_source
from pipelines.tfds_source import split_names

subwords.TOKENIZER_CREATION = lambda: silenced_stderr(quiet())


@dataclasses.dataclass
class Loaded:
    """A finished run, loaded: its directory, resolved config, Keras model and preprocessor."""

    run: RunDir
    config: object
    model: keras.Model
    preprocessor: object


@dataclasses.dataclass
class Target:
    """One ONNX or TFLite file: `function(*inputs in signature order)` -> dict of outputs.
    `inputs` are checked in the runtime against the function's own outputs."""

    name: str  # its key in parity.json
    file: str
    function: object  # a tf.function
    signature: list  # tf.TensorSpec, named
    inputs: dict  # name -> np.ndarray (any number of rows; TFLite runs them a batch at a time)
    atol: float | None = 1e-4

    def reference(self) -> dict:
        outputs = self.function(*[tf.constant(self.inputs[spec.name]) for spec in self.signature])
        return {k: v.numpy() for k, v in outputs.items()}


@dataclasses.dataclass
class ExportTargets:
    """What `export` writes for an app: the SavedModel's signatures (`serving_default` takes raw
    input), the ONNX and TFLite targets, and how `assets.json` describes them."""

    signatures: dict  # name -> concrete function
    serving_inputs: dict  # keyword inputs of serving_default, for the parity check
    trackable: dict  # objects the signatures use (model, tables, modules)
    onnx: list
    tflite: list
    files: dict  # assets.json: file or signature -> its inputs and outputs
    extra: dict = dataclasses.field(default_factory=dict)  # assets.json: app-specific sections


class App(abc.ABC):
    name = ""
    config_class = None
    preprocessor_class = None  # from pipelines: fit, dataset, save/load, assets
    demo_inputs: tuple = ()
    formats = ("savedmodel", "onnx", "tflite")
    monitor = ("val_accuracy", "max")  # (the dev metric that picks the best epoch, max|min)
    history_metrics = ("loss", "accuracy")  # plotted per epoch
    embedding_layers: dict[str, str] = {}  # preprocessor side -> embedding layer (model.embeddings)
    synthetic_size = 1000  # training examples of `synthetic`; dev and test get a fifth each
    synthetic_held_out = 5  # dev and test are synthetic_size // this
    sample_weights = False  # whether the datasets yield (inputs, targets, weights)
    reads_files = False  # whether `--data` may name a single file (read_directory gets its path)
    multiline_predictions = False  # whether `format_prediction` may span lines (generated text)

    # --- sources ---------------------------------------------------------------------------

    def generate(self, n: int, seed: int, config=None) -> list:
        """`n` examples of the app's generator (the `synthetic` source) for `config`."""
        raise DataError(f"the {self.name} app has no synthetic source")

    def synthetic_splits(self, size: int, seed: int, config=None) -> dict:
        """{"train", "dev", "test"} -> generated examples: `size` for train and
        size // synthetic_held_out for dev and test, each split from a seed of its own."""
        held = max(size // self.synthetic_held_out, 1)
        return {name: self.generate(n, seed + k, config) for k, (name, n) in enumerate((("train", size), ("dev", held),
                                                                                 ("test", held)))}

    def read_directory(self, path: str, config, required: str = "train") -> tuple[dict, dict]:
        """A local directory -> (split -> examples, split -> file name) of the split files it
        has, of which `required` must be one."""
        raise DataError(f"the {self.name} app reads no local directory")

    def tfds_split(self, name: str, split: str, config) -> list:
        """The examples of one split of a TensorFlow Datasets dataset."""
        raise DataError(f"the {self.name} app has no tfds source")

    def load_splits(self, config, split: str | None = None) -> tuple[dict, str]:
        """All three splits of `config.data.source`, and a note of where each came from; with
        `split`, a directory that has that split's file needs nothing else (evaluation)."""
        spec = parse_source(config.data.source, file_ok=self.reads_files)
        if spec.kind == "synthetic":
            size, seed = spec.param("size", self.synthetic_size), spec.param("seed", config.seed)
            if size < 10:
                raise DataError(f"synthetic size must be at least 10, received size={size}")
            splits = self.synthetic_splits(size, seed, config)
            return splits, f"synthetic: train {size}, dev and test {len(splits['test'])} each (seed {seed})"
        if spec.kind == "tfds":
            found = split_names(spec.name)
            splits = {split: self.tfds_split(spec.name, name, config) for split, name in found.items()}
            for split, examples in splits.items():
                if not examples:
                    raise DataError(f"tfds:{spec.name} split {found[split]!r} is empty")
        else:
            try:
                splits, found = self.read_directory(spec.name, config, required=split or "train")
            except DataError:
                if split in (None, "train"):
                    raise
                # no file of its own: the split is made from train, as in training
                splits, found = self.read_directory(spec.name, config)
            if split in splits and split != "train":
                return {split: splits[split]}, f"{split}: {found[split]}"
        return self.complete_splits(splits, found, config)

    def complete_splits(self, splits: dict, found: dict, config) -> tuple[dict, str]:
        """Missing dev and test splits made from train (by default a random sample of its examples,
        with the config's seed), and a note of where each split came from."""
        d = config.data
        return complete_splits(splits, found, d.dev_fraction, d.test_fraction, config.seed)

    # --- preprocessing, model ----------------------------------------------------------------

    def make_preprocessor(self, config):
        """An unfitted preprocessor (`preprocessor_class`, from `pipelines`) for `config`; with
        `model.embeddings` set, it aligns its input vocabulary to those word vectors."""
        preprocessor = self.preprocessor_class(config.data, **self.preprocessor_options(config))
        if getattr(config.model, "embeddings", ""):
            preprocessor.use_vectors(config.model.embeddings, config.model.embeddings_words)
        return preprocessor

    def load_preprocessor(self, directory: pathlib.Path, config):
        return self.preprocessor_class.load(directory, config.data, **self.preprocessor_options(config))

    def preprocessor_options(self, config) -> dict:
        return {"seed": config.seed, "shuffle_buffer": config.train.shuffle_buffer}

    def resolve(self, config, fitted: dict):
        """The config with what the preprocessor found on train (lengths, vocabulary sizes...)."""
        return config

    @abc.abstractmethod
    def build_model(self, config) -> keras.Model:
        """The Keras model of a resolved config (layers from `layers/`)."""

    @abc.abstractmethod
    def loss_and_metrics(self, config) -> tuple:
        """(loss, metrics) for `model.compile`."""

    def compile(self, model: keras.Model, config, loss_and_metrics: tuple | None = None) -> None:
        """Compiles `model` with the config's optimizer and `loss_and_metrics` (by default the
        app's `loss_and_metrics(config)`)."""
        loss, metrics = loss_and_metrics or self.loss_and_metrics(config)
        # Datasets that yield (inputs, targets, weights) weigh the metrics too (0 on padding).
        key = "weighted_metrics" if self.sample_weights else "metrics"
        jit = {"auto": "auto", "on": True, "off": False}[config.train.jit_compile]
        if jit is True and getattr(config.model, "native", False):
            raise ConfigError("model.native=true trains through a CPU op that XLA cannot compile: set "
                              "train.jit_compile=off (or auto), not on")
        model.compile(optimizer=make_optimizer(config.train), loss=loss, jit_compile=jit, **{key: metrics})

    def score(self, loaded: Loaded, examples: list, **options) -> dict:
        """Test metrics of `examples`: by default `model.evaluate`'s loss and metrics."""
        if getattr(loaded.model, "optimizer", None) is None:  # loaded with compile=False
            self.compile(loaded.model, loaded.config)
        progress = ScoringProgress(Progress(len(examples), "scoring"), loaded.config.data.batch_size)
        results = loaded.model.evaluate(loaded.preprocessor.dataset(examples, training=False), verbose=0,
                                        return_dict=True, callbacks=[progress])
        return {**{k: float(v) for k, v in results.items()}, "examples": len(examples)}

    # --- lifecycle ---------------------------------------------------------------------------

    def train(self, config, out, strategy: str = "default", callbacks=(), score_test: bool = True) -> dict:
        """Trains into the run directory `out` (resuming it if unfinished); returns test metrics
        (none without `score_test`: tuning trials never look at test)."""
        check_schedule(config.train)
        split_cpu(config.train.cpu_devices)  # before anything starts TensorFlow's runtime
        distribution = make_strategy(strategy)  # before any op: MultiWorkerMirroredStrategy needs it so
        keras.utils.set_random_seed(config.seed)
        splits, origin = self.load_splits(config)
        config = replace(config, **{"data.splits": origin})
        preprocessor = self.make_preprocessor(config)
        config = self.resolve(config, preprocessor.fit(splits["train"]))
        for note in preprocessor.notes:
            log(note)
        for matrix in preprocessor.pretrained.values():
            if config.model.embedding_dim != matrix.shape[1]:
                log(f"model.embedding_dim = {matrix.shape[1]} (the dimension of model.embeddings)")
                config = replace(config, **{"model.embedding_dim": int(matrix.shape[1])})
        _check_model_sizes(config)
        # Every split through the pipeline before the run exists: a label or token that only dev
        # or test has fails here, not after training.
        datasets = {name: preprocessor.dataset(splits[name], training=name == "train") for name in ("train", "dev")}
        preprocessor.dataset(splits["test"], training=False)
        source = self.load(config.train.init_from) if config.train.init_from else None
        with distribution.scope():  # a bad model or optimizer setting fails before the run exists
            model = self.build_model(config)
            self.start_embeddings(model, config, preprocessor)
            if source is not None:
                for note in copy_weights(model, source, preprocessor, self.embedding_layers):
                    log(note)
            self.compile(model, config)
            trained, datasets = self.fitted_part(model, config, preprocessor, splits, datasets)
        if model.distribute_strategy is not tf.distribute.get_strategy():  # built under a strategy: every
            # model that fit or evaluate runs (an ensemble trains as its members' model)
            from apps.internals import build_from_local_batch

            for built in (model,) if trained is model else (model, trained):
                build_from_local_batch(built)  # (see its docstring)
        directory, temporary = worker_directory(distribution, out)
        try:
            return self._train_into(RunDir(directory), config, model, trained, preprocessor, splits, datasets,
                                    callbacks, score_test)
        finally:
            if temporary:  # a worker other than the chief: its copy goes
                shutil.rmtree(directory, ignore_errors=True)

    def fitted_part(self, model, config, preprocessor, splits: dict, datasets: dict) -> tuple:
        """(the model `fit` trains, its {"train", "dev"} datasets), called in the strategy's scope
        with the model compiled: by default the model itself on `datasets`. An app may train a
        part that shares the model's layers, compiled, on inputs it computes once here."""
        return model, datasets

    def _train_into(self, run, config, model, trained, preprocessor, splits, datasets, callbacks,
                    score_test) -> dict:
        """The part of `train` that writes: the run directory, fit (of `trained`, the model or a
        part of it), plots, test metrics, the model."""
        run.start(config)
        preprocessor.save(run.assets)
        monitor, mode = self.monitor
        fit_run(trained, run, datasets["train"], datasets["dev"], config.train, monitor=monitor, mode=mode,
                callbacks=callbacks, members=getattr(config.model, "members", 1))
        plot_history(run, self.history_metrics)
        loaded = Loaded(run, config, model, preprocessor)
        if importlib.util.find_spec("tensorboard") is not None:
            with tf.summary.create_file_writer(str(run.logs / "images")).as_default():
                self.summarize(loaded, step=config.train.epochs)
        metrics = {}
        if score_test:
            metrics = self.score(loaded, splits["test"])
            atomic_write_json(run.metrics("test"), metrics)
        save_model_atomic(model, run.model)  # last: its presence marks the run as finished
        run.release()
        return metrics

    def start_embeddings(self, model, config, preprocessor) -> None:
        """Pretrained vectors into the embedding layers (`embedding_layers` names them per side),
        frozen unless `model.embeddings_trainable`."""
        for side, matrix in preprocessor.pretrained.items():
            for layer in member_layers(model, self.embedding_layers[side]):  # one per member of an ensemble
                layer.set_weights([matrix])
                layer.trainable = config.model.embeddings_trainable

    def load(self, run_dir) -> Loaded:
        run = RunDir(run_dir).require_complete()
        config = run.read_config(self.config_class)
        try:
            model = keras.saving.load_model(run.model, safe_mode=True, compile=False)
        except Exception as e:  # a file cut short, random bytes, a broken config.json, a Lambda layer
            lines = [line.strip() for line in str(e).splitlines() if line.strip()] or [type(e).__name__]
            why = next((line for line in lines if "Lambda" in line or "safe_mode" in line), lines[0])
            if "safe_mode" in why or "Lambda" in why:
                raise ConfigError(f"{run.model} is refused: it holds code (a Lambda layer) that safe mode does "
                                  "not run") from None
            raise ConfigError(f"{run.model} is corrupt: {type(e).__name__}: {why[:200]}") from None
        return Loaded(run, config, model, self.load_preprocessor(run.assets, config))

    def evaluate(self, run_dir, source: str | None = None, split: str = "test", **options) -> dict:
        """Metrics of a split of the run's data (or of `source`, split as in training)."""
        loaded = self.load(run_dir)
        if source is not None:
            loaded.config = replace(loaded.config, **{"data.source": source})
        splits, _ = self.load_splits(loaded.config, split)
        if split not in splits:
            raise ConfigError(f"--split must be one of {sorted(splits)}, received {split!r}")
        metrics = self.score(loaded, splits[split], **options)
        atomic_write_json(loaded.run.metrics(split), metrics)
        return metrics

    # --- serving and prediction --------------------------------------------------------------

    @abc.abstractmethod
    def serving(self, loaded: Loaded) -> tf.Module:
        """A `tf.Module` from raw input to readable output (used by `predict` and the SavedModel)."""

    @abc.abstractmethod
    def predict_rows(self, loaded: Loaded, serving: tf.Module, inputs: list[str], **options) -> list[dict]:
        """One dict per input (the input, then the readable prediction), as `predict --json` prints."""

    def predict(self, run_dir, inputs: list[str], **options) -> list[dict]:
        if not inputs:
            raise DataError("nothing to predict: give inputs as arguments or --file PATH")
        loaded = self.load(run_dir)
        serving = self.serving(loaded)  # held here: its tf.functions bind it weakly
        return self.predict_rows(loaded, serving, list(inputs), **options)

    def summarize(self, loaded: Loaded, step: int) -> None:
        """After training, app-specific TensorBoard summaries (`tf.summary.*`, a writer is set):
        attention maps, activations. Nothing by default."""

    def format_prediction(self, row: dict) -> str:
        """One prediction as the CLI prints it."""
        return "  ".join(f"{k}: {v}" for k, v in row.items())

    def add_arguments(self, parser, command: str) -> None:
        """Options of this app for `command` ("evaluate", "predict"), beside the shared ones."""

    def options_give_inputs(self, options: dict) -> bool:
        """Whether `predict`'s own options (those of `add_arguments`) say what to predict, so that
        the command line reads no inputs from standard input."""
        return False

    def search_space(self) -> dict:
        """Config keys worth tuning -> values: a list of choices, or {"min", "max", "log"}."""
        return {"train.learning_rate": {"min": 1e-4, "max": 1e-2, "log": True},
                "data.batch_size": [16, 32, 64],
                "regularization.input_dropout": [0.0, 0.1, 0.25],
                "regularization.output_dropout": [0.0, 0.1, 0.25],
                "train.clipping": ["global_norm", "adaptive"]}

    # --- export ------------------------------------------------------------------------------

    @abc.abstractmethod
    def export_targets(self, loaded: Loaded, serving: tf.Module) -> ExportTargets:
        """The SavedModel signatures, ONNX and TFLite targets and their assets.json description."""

    def check_export(self, fmt: str, loaded: Loaded, serving: tf.Module, out: pathlib.Path,
                     fused: bool = True) -> dict:
        """Extra files or end-to-end checks of a format after its targets passed parity
        (returned as more parity.json entries); raise ExportError to fail the export. `fused`:
        as `export`'s, for the files made here."""
        return {}

    def export(self, run_dir, out_dir, formats: list[str], fused: bool = True) -> dict:
        """Writes `formats` and `assets.json` to `out_dir`, each checked against the Keras model;
        `fused`: ONNX recurrent layers as the runtime's LSTM/GRU nodes where parity holds.

        Everything is written to a staging folder first and swapped in whole: an export
        directory holds one export of one run, and a failed export leaves the old one as it was.
        """
        unknown = [f for f in formats if f not in self.formats]
        if unknown:
            raise ConfigError(f"the {self.name} app exports {', '.join(self.formats)}; not {', '.join(unknown)}")
        loaded = self.load(run_dir)
        out = pathlib.Path(out_dir)
        run_info = {"path": str(loaded.run.path.resolve()), "model_sha256": file_sha256(loaded.run.model)}
        _check_export_destination(out, run_info)
        staged = out.with_name(f".{out.name}.staging-{os.getpid()}")
        shutil.rmtree(staged, ignore_errors=True)
        staged.mkdir(parents=True)
        try:
            serving = self.serving(loaded)
            targets = self.export_targets(loaded, serving)
            report = {}
            if "savedmodel" in formats:
                reference = {k: v.numpy() for k, v in targets.signatures["serving_default"](
                    **{k: tf.constant(v) for k, v in targets.serving_inputs.items()}).items()}
                report["savedmodel"] = export_savedmodel(tf.Module(), targets.signatures, staged / "savedmodel",
                                                         targets.serving_inputs, reference, trackable=targets.trackable)
            for fmt, export_one in (("onnx", _export_onnx_target), ("tflite", _export_tflite_target)):
                if fmt in formats:
                    for target in getattr(targets, fmt):
                        report[target.name] = export_one(target, staged, loaded.model, fused)
            for fmt in formats:
                report.update(self.check_export(fmt, loaded, serving, staged, fused=fused))
            requires = ("savedmodel: `import tensorflow_text` before loading (its tokenizer ops); numeric "
                        "signature, ONNX and TFLite: nothing beyond their runtime"
                        + ("; tokenizer.kind subwords: the `sentencepiece` package encodes the inputs "
                           "(pipelines/subwords.py)" if getattr(loaded.preprocessor, "subwords", None) else ""))
            write_assets(staged, self.name, run_info, loaded.preprocessor.assets(), targets.files, requires=requires,
                         **targets.extra)
            write_report(staged / "parity.json", report)
            replace_dir_atomic(staged, out)
        finally:
            shutil.rmtree(staged, ignore_errors=True)
        return report

    @abc.abstractmethod
    def predict_exported(self, export_dir: pathlib.Path, assets: dict, runtime: str, inputs: list[str],
                         **options) -> list[dict]:
        """The rows of `predict_rows` from an export directory through one runtime (`assets`: its
        assets.json), with the app's pre- and post-processing and without the Keras model."""

    def predict_export(self, export_dir, runtime: str, inputs: list[str], **options) -> list[dict]:
        """Predictions from an export directory through one runtime."""
        if not inputs:
            raise DataError("nothing to predict: give inputs as arguments or --file PATH")
        return self.predict_exported(pathlib.Path(export_dir), read_assets(export_dir), runtime, list(inputs),
                                     **options)

    # --- demo --------------------------------------------------------------------------------

    def demo_config(self):
        return self.config_class()

    def describe(self, run_dir) -> str:
        """One line on a finished run's model: what runs, its sizes and its parameters."""
        loaded = self.load(run_dir)
        m = dataclasses.asdict(loaded.config.model)
        sizes = ", ".join(f"{k} {v}" for k, v in m.items() if k in ("cell", "encoder_cell", "decoder_cell", "units",
                                                                     "num_layers", "bidirectional", "attention"))
        return f"{sizes}; {loaded.model.count_params():,} parameters; {m.get('implementation', '')}"


class ScoringProgress(keras.callbacks.Callback):
    """`model.evaluate`'s progress on stderr (Keras's own goes to stdout, which `--json` keeps for
    the result): examples counted a batch at a time (bucketed batches are full but the last)."""

    def __init__(self, progress: Progress, batch_size: int):
        super().__init__()
        self.progress, self.batch_size = progress, batch_size

    def on_test_batch_end(self, batch, logs=None):
        self.progress.update(self.batch_size)


def _check_model_sizes(config) -> None:
    """Every whole-number setting of the model section is a size: positive (named when not,
    rather than a Keras error about an argument the user never wrote); counts may be 0."""
    counts = {"embeddings_words", "conv_filters", "ngrams"}  # may be 0: none
    for field in dataclasses.fields(config.model):
        value, minimum = getattr(config.model, field.name), 0 if field.name in counts else 1
        if isinstance(value, int) and not isinstance(value, bool) and value < minimum:
            raise ConfigError(f"model.{field.name} must be {'positive' if minimum else 'at least 0'}, "
                              f"received {value}")


def _export_onnx_target(target: Target, out: pathlib.Path, model, fused: bool) -> dict:
    return export_onnx(target.function, target.signature, out / target.file, target.inputs, target.reference(),
                       atol=target.atol, fusion=fuse_recurrent if fused else None)


def _export_tflite_target(target: Target, out: pathlib.Path, model, fused: bool) -> dict:
    return export_tflite(target.function, target.signature, out / target.file, target.inputs, target.reference(),
                         atol=target.atol, trackable_obj=model, fusion=fuse_recurrent if fused else None)


def _check_export_destination(out: pathlib.Path, run_info: dict) -> None:
    """An export directory is replaced only by an export of the same run."""
    if not out.exists():
        return
    if not out.is_dir():
        raise ExportError(f"--out {out} is a file")
    if not any(out.iterdir()):
        return
    if not (out / ASSETS_FILE).exists():
        raise ExportError(f"--out {out} is not empty and holds no export: choose another directory")
    try:
        previous = read_assets(out).get("run", {})
    except ExportError:
        previous = {}
    if previous.get("model_sha256") != run_info["model_sha256"]:
        raise ExportError(f"--out {out} holds an export of another run ({previous.get('path', 'unknown')}): "
                          "choose another directory or remove it")
