"""The speech app's preprocessor: waveforms -> log-mel (or MFCC) frames, labels -> ids.

Features are computed once per utterance in the tf.data pipeline (`pipelines/audio_features.py`)
and cached; training then draws SpecAugment-style masks (Park et al., 2019,
https://arxiv.org/abs/1904.08779) on the cached features: `spec_time_masks` spans of up to
`spec_time_mask_frames` frames (at most a fifth of the utterance each) and `spec_freq_masks`
bands of up to `spec_freq_mask_bins` features, set to 0, the mean of a normalised feature (the
frame's validity flag stays 1: a masked frame is still a frame). Batches are bucketed by frame
count.

`data` is the app's data config: `sample_rate`, `frame_ms`, `step_ms`, `num_mel_bins`,
`num_mfccs`, `lower_hz`, `upper_hz`, `normalize`, the `spec_*` settings, `max_length` (frames;
None: the `length_percentile` of train's), `batch_size`, `bucketing`, `num_buckets`.
"""

from __future__ import annotations

import pathlib

import numpy as np
import tensorflow as tf

from pipelines.audio_features import FeatureSettings, numpy_features, tf_features
from pipelines.batching import bucket_boundaries, pad_and_bucket
from pipelines.errors import DataError
from pipelines.lengths import length_stats
from pipelines.text_preprocessors import read_json, write_json

SETTINGS = "speech.json"


def feature_settings(data) -> FeatureSettings:
    """The feature settings of a speech data config."""
    upper = data.upper_hz if data.upper_hz > 0 else data.sample_rate / 2
    return FeatureSettings.from_ms(data.sample_rate, data.frame_ms, data.step_ms, num_mel_bins=data.num_mel_bins,
                                   lower_hz=data.lower_hz, upper_hz=min(upper, data.sample_rate / 2),
                                   num_mfccs=data.num_mfccs, normalize=data.normalize)


def spec_augment(features, time_masks: int, time_width: int, freq_masks: int, freq_width: int):
    """Zeroes random spans of frames and bands of features of one utterance (frames, features),
    the last feature (the frame's validity flag) left as it is."""
    x, flag = features[:, :-1], features[:, -1:]
    frames, bins = tf.shape(x)[0], tf.shape(x)[1]
    for count, width, size, axis in ((time_masks, time_width, frames, 0), (freq_masks, freq_width, bins, 1)):
        limit = tf.minimum(width, size // 5) if axis == 0 else tf.minimum(width, size)
        positions = tf.range(size)
        for _ in range(count):
            w = tf.random.uniform([], 0, limit + 1, tf.int32)
            start = tf.random.uniform([], 0, tf.maximum(size - w, 0) + 1, tf.int32)
            keep = tf.cast((positions < start) | (positions >= start + w), x.dtype)
            x = x * (keep[:, None] if axis == 0 else keep[None, :])
    return tf.concat([x, flag], axis=-1)


class SpeechPreprocessor:
    """Utterances (`.samples` at the data's rate, `.label`) -> (features (frames, num_features),
    label id) batches, padded with zero frames and bucketed by frame count.

    Example:
    >>> from types import SimpleNamespace as S
    >>> data = S(sample_rate=8000, frame_ms=25, step_ms=10, num_mel_bins=20, num_mfccs=0, lower_hz=20.0,
    ...          upper_hz=0.0, normalize=True, max_length=None, length_percentile=100.0, batch_size=2,
    ...          bucketing=False, num_buckets=1)
    >>> p = SpeechPreprocessor(data)
    >>> p.fit([S(samples=np.zeros(8000, np.float32), label="yes", where="a.wav"),
    ...        S(samples=np.zeros(4000, np.float32), label="no", where="b.wav")])
    {'max_length': 98, 'num_classes': 2, 'num_features': 21}
    """

    def __init__(self, data, seed: int = 0, shuffle_buffer: int = 20000):
        self.data, self.seed, self.shuffle_buffer = data, seed, shuffle_buffer
        self.settings = feature_settings(data)
        self.labels: list[str] = []
        self.max_length: int | None = data.max_length  # frames
        self.boundaries: list[int] | None = None
        self.notes: list[str] = []
        self.pretrained: dict = {}  # no embeddings to start from

    def fit(self, utterances) -> dict:
        d, s = self.data, self.settings
        self.labels = sorted({u.label for u in utterances})
        if len(self.labels) < 2:
            raise DataError(f"train has a single label {self.labels!r}: a classifier needs at least two")
        frames = [int(s.frame_count(u.samples.size)) for u in utterances]
        seconds = sum(u.samples.size for u in utterances) / s.sample_rate
        self.notes = [f"train: {len(utterances)} utterances ({seconds / 60:.1f} minutes), labels {self.labels}",
                      f"features: {s.num_features} {'MFCCs' if s.num_mfccs else 'log-mel bins'} every "
                      f"{1000 * s.frame_step / s.sample_rate:g} ms; frames per utterance "
                      + length_stats(frames, d.length_percentile).describe().split(": ", 1)[1]]
        if self.max_length is None:
            self.max_length = length_stats(frames, d.length_percentile).at_percentile
        cut = sum(f > self.max_length for f in frames)
        self.notes.append(f"max_length = {self.max_length} frames" + (
            f" (warning: {cut} of {len(frames)} training utterances are longer and keep their first "
            f"{self.max_length} frames)" if cut else ""))
        self.boundaries = (bucket_boundaries(frames, d.num_buckets, self.max_length)
                           if d.bucketing and d.num_buckets > 1 else None)
        return {"max_length": self.max_length, "num_classes": len(self.labels), "num_features": s.num_features}

    def label_ids(self, utterances) -> list[int]:
        index = {label: i for i, label in enumerate(self.labels)}
        for u in utterances:
            if u.label not in index:
                raise DataError(f"{u.where}: label {u.label!r} never appears in train (train labels: {self.labels})")
        return [index[u.label] for u in utterances]

    def features(self, waveforms, lengths):
        """TensorFlow: (batch, samples) waveforms and lengths -> (features, frame counts)."""
        return tf_features(waveforms, lengths, self.settings, self.max_length)

    def numpy_features(self, waveforms, length: int | None = None):
        """The same without TensorFlow, from a list of 1-D waveforms."""
        return numpy_features(waveforms, self.settings, self.max_length, length)

    def dataset(self, utterances, training: bool) -> tf.data.Dataset:
        """(features, label id) batches; shuffled and SpecAugment-masked when `training`."""
        d = self.data
        labels = self.label_ids(utterances)
        lengths = np.array([u.samples.size for u in utterances], np.int64)
        samples = np.concatenate([u.samples for u in utterances] or [[]]).astype(np.float32)
        waveforms = tf.RaggedTensor.from_row_lengths(samples, lengths)
        ds = tf.data.Dataset.from_tensor_slices((waveforms, np.array(labels, np.int32)))

        def featurize(waveform, label):
            features, _ = self.features(waveform[None], tf.shape(waveform)[:1])
            return features[0], label

        ds = ds.map(featurize, num_parallel_calls=tf.data.AUTOTUNE).cache()
        if training:
            ds = ds.shuffle(min(len(utterances), self.shuffle_buffer) or 1, seed=self.seed,
                            reshuffle_each_iteration=True)
            if d.spec_time_masks or d.spec_freq_masks:
                ds = ds.map(lambda x, y: (spec_augment(x, d.spec_time_masks, d.spec_time_mask_frames,
                                                       d.spec_freq_masks, d.spec_freq_mask_bins), y),
                            num_parallel_calls=tf.data.AUTOTUNE)
        return ds.apply(pad_and_bucket(d.batch_size, self.boundaries)).prefetch(tf.data.AUTOTUNE)

    def save(self, directory: pathlib.Path) -> None:
        write_json(directory / SETTINGS, {"labels": self.labels, "max_length": self.max_length,
                                          "boundaries": self.boundaries, "features": self.settings.to_dict()})

    @classmethod
    def load(cls, directory: pathlib.Path, data, **options) -> "SpeechPreprocessor":
        p = cls(data, **options)
        saved = read_json(directory / SETTINGS)
        p.labels, p.max_length, p.boundaries = saved["labels"], saved["max_length"], saved["boundaries"]
        p.settings = FeatureSettings.from_dict(saved["features"])
        return p

    def assets(self) -> dict:
        """What `assets.json` needs to compute the features without TensorFlow (`from_assets`)."""
        return {"labels": self.labels, "max_length": self.max_length, "features": self.settings.to_dict()}

    @staticmethod
    def features_from_assets(assets: dict, waveforms, length: int | None = None):
        """`numpy_features` with an export's `assets.json` settings."""
        return numpy_features(waveforms, FeatureSettings.from_dict(assets["features"]), assets["max_length"], length)
