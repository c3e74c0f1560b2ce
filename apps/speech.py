"""Spoken-word classification (many-to-one over vectors): log-mel frames in, one label out.

Data: `synthetic` (three-vowel words that differ only in the order of their vowels:
`pipelines/synthetic_speech.py`), `tfds:speech_commands`, `tfds:spoken_digit`, or a directory
with `train/`, `dev/`, `test/` holding one folder of `.wav` files per label (or, with
`--set data.label_from=filename`, files named `<label>_<speaker>_<n>.wav`). Missing dev and
test splits are made from train's speakers. Metric: `accuracy`.

    rnnapps train speech --data path/to/words --out runs/speech
    rnnapps predict runs/speech recording.wav another.wav
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import typing

import keras
import numpy as np
import tensorflow as tf

from apps.app import App, ExportTargets, Loaded, Target
from apps.config import ConfigError, RegularizationConfig, TrainConfig, choice, replace
from apps.encoders import classification_loss_and_metrics, encoder_implementation, pooled_classifier
from apps.training import log
from export import ExportError
from export.runtimes import NUMERIC_SIGNATURE, load_runner
from layers import cells
from layers.strided_conv import MaskedStridedConv1D
from pipelines import synthetic_speech
from pipelines.audio_features import pad_waveforms
from pipelines.errors import DataError
from pipelines.speech_preprocessor import SpeechPreprocessor
from pipelines.tfds_source import load_tfds_split
from pipelines.wav_files import Utterance, complete_speaker_splits, find_wav_splits, read_split, read_wav, resample

FEATURE_ATOL = 1e-4  # the NumPy features of an export against TensorFlow's


@dataclasses.dataclass(frozen=True)
class SpeechDataConfig:
    source: str = "synthetic"  # `synthetic[?size=N&seed=S]`, `tfds:NAME` or a directory
    label_from: str = choice("folder", ("folder", "filename"))  # train/<label>/*.wav, or <label>_<speaker>_<n>.wav
    skip_bad: bool = False  # skip unreadable .wav files (and say which) instead of stopping
    sample_rate: int = 16000  # every file is resampled to it; serving takes waveforms at this rate
    frame_ms: float = 25.0
    step_ms: float = 10.0
    num_mel_bins: int = 40
    num_mfccs: int = 0  # 0: log-mel features; n: the first n MFCCs of them
    lower_hz: float = 20.0
    upper_hz: float = 0.0  # 0: half the sample rate
    normalize: bool = True  # each feature to mean 0, deviation 1 over the utterance
    # SpecAugment in training: spans of frames and bands of features set to 0 (see
    # pipelines/speech_preprocessor.py); 0 masks: none.
    spec_time_masks: int = 2
    spec_time_mask_frames: int = 10
    spec_freq_masks: int = 2
    spec_freq_mask_bins: int = 6
    max_length: typing.Optional[int] = None  # frames (None: the length_percentile of train's)
    length_percentile: float = 100.0
    batch_size: int = 32
    bucketing: bool = True
    num_buckets: int = 4
    dev_fraction: float = 0.1  # of train's speakers, when the source has no dev split
    test_fraction: float = 0.1
    splits: str = ""  # resolved: where each split came from


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    # A strided convolution before the recurrence (layers.MaskedStridedConv1D): conv_stride times
    # fewer recurrent steps; 0 filters: none.
    conv_filters: int = 0
    conv_kernel: int = 5
    conv_stride: int = 2
    cell: str = choice("lstm", cells.names())
    units: int = 128  # per direction
    num_layers: int = 1
    bidirectional: bool = True
    pooling: str = choice("max", ("last", "max", "mean"))  # over the frames, mask-aware
    dropout: float = 0.3  # before the classifier
    num_classes: int = 0  # resolved
    num_features: int = 0  # resolved: features per frame
    implementation: str = ""  # resolved


@dataclasses.dataclass(frozen=True)
class SpeechConfig:
    app: str = choice("speech", ("speech",))
    seed: int = 42
    data: SpeechDataConfig = SpeechDataConfig()
    model: ModelConfig = ModelConfig()
    regularization: RegularizationConfig = RegularizationConfig(input_dropout=0.1, output_dropout=0.2)
    train: TrainConfig = TrainConfig(epochs=30, learning_rate=2e-3, early_stopping_patience=6, lr_patience=2)

    @classmethod
    def smoke(cls) -> "SpeechConfig":
        return replace(cls(), **{"data.source": "synthetic?size=60", "data.sample_rate": 8000, "data.batch_size": 16,
                                 "data.num_buckets": 2, "data.num_mel_bins": 16, "model.units": 8,
                                 "model.conv_filters": 8, "train.epochs": 2})


class Recognizer(tf.Module):
    """Waveforms in, labels and probabilities out: used by `predict` and as the SavedModel."""

    def __init__(self, model: keras.Model, preprocessor: SpeechPreprocessor):
        super().__init__()
        self.model, self.preprocessor = model, preprocessor
        self.labels = tf.constant(preprocessor.labels)

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32, name="waveforms"),
                                  tf.TensorSpec([None], tf.int32, name="lengths")])
    def classify(self, waveforms, lengths):
        features, _ = self.preprocessor.features(waveforms, lengths)
        probabilities = self.numeric(features)["probabilities"]
        best = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
        return {"label": tf.gather(self.labels, best), "probability": tf.reduce_max(probabilities, axis=-1),
                "probabilities": probabilities}

    @tf.function
    def numeric(self, features):
        """What ONNX and TFLite get: features (batch, frames, features) in, probabilities out."""
        return {"probabilities": tf.nn.softmax(self.model(features, training=False), axis=-1)}


def wav_inputs(inputs: list[str]) -> list[str]:
    """The paths to predict: files as given, and the `.wav` files of a directory, sorted."""
    paths = []
    for p in inputs:
        if os.path.isdir(p):
            paths += sorted(os.path.join(p, f) for f in os.listdir(p) if f.lower().endswith(".wav"))
        elif not os.path.exists(p):
            raise DataError(f"{p}: no such file (predict takes .wav paths)")
        else:
            paths.append(p)
    if not paths:
        raise DataError(f"no .wav files in {', '.join(inputs)}")
    return paths


class Speech(App):
    name = "speech"
    config_class = SpeechConfig
    preprocessor_class = SpeechPreprocessor
    synthetic_size = 1200

    @property
    def demo_inputs(self) -> tuple[str, ...]:
        """Two synthetic words of a speaker no split has, written once as WAV files (16 kHz)."""
        import soundfile

        folder = os.path.join(tempfile.gettempdir(), "rnnapps-speech-demo")
        os.makedirs(folder, exist_ok=True)
        paths, words = [], {u.label: u for u in synthetic_speech.generate(12, seed=10**6)}
        for i, utterance in enumerate(list(words.values())[:2]):  # two different words
            path = os.path.join(folder, f"{utterance.label}_demo_{i}.wav")
            if not os.path.exists(path):
                tmp = f"{path}.{os.getpid()}.tmp"
                soundfile.write(tmp, utterance.samples, 16000, format="WAV", subtype="PCM_16")
                os.replace(tmp, path)
            paths.append(path)
        return tuple(paths)

    # --- sources -------------------------------------------------------------------------------

    def generate(self, n, seed, config=None):
        return synthetic_speech.generate(n, seed, config.data.sample_rate if config is not None else 16000)

    def read_directory(self, path, config, required="train"):
        d = config.data
        folders = find_wav_splits(path, d.label_from, required)
        splits, found = {}, {}
        for split, folder in folders.items():
            splits[split], skipped = read_split(folder, d.label_from, d.sample_rate, d.skip_bad)
            found[split] = os.path.relpath(folder, path) + "/" + (f" ({len(skipped)} unreadable files skipped)"
                                                                    if skipped else "")
            if skipped:
                log(f"warning: {split}: skipped {len(skipped)} unreadable files (data.skip_bad):\n  "
                    + "\n  ".join(skipped))
        return splits, found

    def complete_splits(self, splits, found, config):
        d = config.data
        return complete_speaker_splits(splits, found, d.dev_fraction, d.test_fraction, config.seed)

    def tfds_split(self, name, split, config):
        ds, info = load_tfds_split(name, split)
        if "audio" not in info.features or "label" not in info.features:
            raise ConfigError(f"tfds:{name} has no 'audio' and 'label' features")
        rate = getattr(info.features["audio"], "sample_rate", None) or config.data.sample_rate
        names = getattr(info.features["label"], "names", None)
        out = []
        for i, row in enumerate(ds.as_numpy_iterator()):
            audio = np.asarray(row["audio"])
            samples = audio.astype(np.float32) / 32768.0 if audio.dtype.kind in "iu" else audio.astype(np.float32)
            if samples.ndim == 2:
                samples = samples.mean(axis=-1)
            if samples.size == 0:
                continue
            filename = row.get("audio/filename", b"")
            speaker = os.path.basename(filename.decode("utf-8", "replace")).split("_")[1] \
                if isinstance(filename, bytes) and filename.count(b"_") >= 2 else ""
            out.append(Utterance(resample(samples, rate, config.data.sample_rate),
                                 names[int(row["label"])] if names else str(row["label"]),
                                 f"tfds:{name}[{split}] #{i}", speaker))
        return out

    # --- preprocessing and model -----------------------------------------------------------------

    def resolve(self, config, fitted):
        m = config.model
        implementation = encoder_implementation(m.cell, config.regularization)
        return replace(config, **{"data.max_length": fitted["max_length"], "model.num_classes": fitted["num_classes"],
                                  "model.num_features": fitted["num_features"],
                                  "model.implementation": implementation})

    def build_model(self, config) -> keras.Model:
        """features (batch, frames, features), zero frames as padding -> [strided convolution]
        -> recurrent stack -> pooling over frames -> logits."""
        m, reg = config.model, config.regularization
        if m.num_classes < 2 or m.num_features < 1:
            raise ConfigError(f"model.num_classes and model.num_features are resolved from the data, received "
                              f"{m.num_classes} and {m.num_features}")
        features = keras.Input((None, m.num_features), dtype="float32", name="features")
        x = keras.layers.Masking(0.0, name="padding")(features)
        if m.conv_filters:
            x = MaskedStridedConv1D(m.conv_filters, m.conv_kernel, m.conv_stride, name="conv")(x)
        return keras.Model(features, pooled_classifier(x, m, reg, config.seed, "encoder"), name=self.name)

    def loss_and_metrics(self, config):
        return classification_loss_and_metrics()

    def search_space(self):
        return {**super().search_space(), "model.cell": cells.names(), "model.units": [64, 128, 256],
                "model.num_layers": [1, 2], "model.pooling": ["last", "max", "mean"],
                "model.conv_filters": [0, 64, 128], "data.num_mfccs": [0, 13],
                "data.spec_time_masks": [0, 2], "data.spec_freq_masks": [0, 2]}

    def demo_config(self):
        """Synthetic words at 8 kHz, a 64-unit model: about a minute on 2 cores."""
        return replace(SpeechConfig(), **{"data.sample_rate": 8000, "data.num_mel_bins": 24, "model.units": 64,
                                          "model.conv_filters": 32, "train.epochs": 8})

    # --- serving -------------------------------------------------------------------------------

    def serving(self, loaded: Loaded) -> Recognizer:
        return Recognizer(loaded.model, loaded.preprocessor)

    @staticmethod
    def _rows(paths, labels, probabilities):
        return [{"file": p, "label": label, "probability": round(float(q), 6)}
                for p, label, q in zip(paths, labels, probabilities)]

    def predict_rows(self, loaded, serving, inputs, **options):
        paths = wav_inputs(inputs)
        waveforms, lengths = pad_waveforms([read_wav(p, loaded.config.data.sample_rate) for p in paths])
        out = serving.classify(tf.constant(waveforms), tf.constant(lengths))
        return self._rows(paths, [x.decode("utf-8") for x in out["label"].numpy()], out["probability"].numpy())

    def format_prediction(self, row):
        return f"{row['label']:<12} {row['probability']:.3f}  {row['file']}"

    # --- export --------------------------------------------------------------------------------

    def _sample_waveforms(self, loaded) -> list[np.ndarray]:
        rate, p = loaded.config.data.sample_rate, loaded.preprocessor
        words = [u.samples for u in synthetic_speech.generate(3, seed=7, rate=rate)]
        return [*words, np.zeros(10, np.float32), np.tile(words[0], 2 + p.settings.samples_for(p.max_length)
                                                           // max(words[0].size, 1))]

    def export_targets(self, loaded, serving):
        """savedmodel: waveforms (batch, samples) and lengths -> label, probability,
        probabilities, and `numeric`; onnx: features (batch, frames, features) -> probabilities;
        tflite: the same at (1, max_length, features)."""
        p = loaded.preprocessor
        waveforms = self._sample_waveforms(loaded)
        padded, lengths = pad_waveforms(waveforms)
        features, _ = p.numpy_features(waveforms)
        fixed, _ = p.numpy_features(waveforms, p.max_length)

        def spec(frames=None, batch=None):
            return [tf.TensorSpec([batch, frames, p.settings.num_features], tf.float32, name="features")]

        features_in = (f"float32 (batch, frames, {p.settings.num_features}): assets features settings, the "
                       "last one 1 on the utterance's frames, frames past it all zero")
        out = "probabilities float32 (batch, classes), in the order of labels"
        return ExportTargets(
            {"serving_default": serving.classify.get_concrete_function(),
             NUMERIC_SIGNATURE: serving.numeric.get_concrete_function(*spec())},
            {"waveforms": padded, "lengths": lengths}, {"recognizer": serving},
            onnx=[Target("onnx", "model.onnx", serving.numeric, spec(), {"features": features})],
            tflite=[Target("tflite", "model.tflite", serving.numeric, spec(p.max_length, 1), {"features": fixed})],
            files={"savedmodel": {"serving_default": f"waveforms float32 (batch, samples) at "
                                                     f"{p.settings.sample_rate} Hz, lengths int32 (batch,) -> "
                                                     "label, probability, probabilities",
                                  NUMERIC_SIGNATURE: f"{features_in} -> {out}"},
                   "model.onnx": f"{features_in} -> {out}",
                   "model.tflite": f"the same at (1, {p.max_length}, {p.settings.num_features})"})

    def check_export(self, fmt, loaded, serving, out, fused=True):
        """Once for ONNX and TFLite (which are fed the same NumPy features): those features against
        TensorFlow's."""
        if fmt not in ("onnx", "tflite") or (fmt == "tflite" and (out / "model.onnx").exists()):
            return {}
        p = loaded.preprocessor
        waveforms = self._sample_waveforms(loaded)
        expected, counts = p.features(*pad_waveforms(waveforms))
        got, got_counts = p.numpy_features(waveforms, int(expected.shape[1]))
        diff = float(np.abs(got - expected.numpy()).max())
        if diff > FEATURE_ATOL or not np.array_equal(got_counts, counts.numpy()):
            raise ExportError(f"the NumPy features differ from TensorFlow's by {diff:.2g} (more than {FEATURE_ATOL})")
        return {f"{fmt}_numpy_features": {"max_abs_diff": diff, "atol": FEATURE_ATOL, "utterances": len(waveforms)}}

    def predict_exported(self, export_dir, assets, runtime, inputs, **options):
        paths = wav_inputs(inputs)
        waveforms = [read_wav(p, assets["features"]["sample_rate"]) for p in paths]
        if runtime == "savedmodel":
            padded, lengths = pad_waveforms(waveforms)
            out = load_runner(export_dir, runtime, signature="serving_default")(waveforms=padded, lengths=lengths)
            return self._rows(paths, [x.decode("utf-8") for x in out["label"]], out["probability"])
        features, _ = SpeechPreprocessor.features_from_assets(
            assets, waveforms, assets["max_length"] if runtime == "tflite" else None)
        scores = load_runner(export_dir, runtime)(features=features)["probabilities"]
        return self._rows(paths, [assets["labels"][i] for i in scores.argmax(-1)], scores.max(-1))
