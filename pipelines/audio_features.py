"""Log-mel (or MFCC) features of waveforms, in TensorFlow and in NumPy, from one set of settings.

    frames of frame_length samples every frame_step (a periodic Hann window)
    -> power spectrum (fft_length) -> mel filterbank (num_mel_bins triangles, HTK mel scale,
    lower_hz..upper_hz) -> log(. + 1e-6) -> [MFCC: the first num_mfccs of a DCT-II]
    -> [normalised per utterance: each bin to mean 0 and deviation 1 over its frames]

An utterance of n samples has `frame_count(n)` frames, every one of them inside the utterance
(the first frame at sample 0, no padding at the end); utterances shorter than two frames are
padded with silence to two. A last feature is 1 on every frame of the utterance: in a batch, the
frames past a row's count are padding, all zeros, which the model's `Masking` layer skips (the
spectral features alone can be all zero on a real frame: normalised silence or a steady tone).

The TensorFlow side (`tf_features`, in tf.data and in the SavedModel's graph) and the NumPy side
(`numpy_features`, for runtimes without TensorFlow) use the same filterbank and DCT matrices,
made here in NumPy; tests check the matrices against `tf.signal`'s own and the two sides against
each other.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from pipelines.errors import DataError

LOG_OFFSET = 1e-6  # log(mel power + this): silence is finite
NORM_EPSILON = 1e-6  # added to the variance when normalising


@dataclasses.dataclass(frozen=True)
class FeatureSettings:
    sample_rate: int = 16000
    frame_length: int = 400  # samples (25 ms at 16 kHz)
    frame_step: int = 160  # samples (10 ms)
    fft_length: int = 512
    num_mel_bins: int = 40
    lower_hz: float = 20.0
    upper_hz: float = 7600.0
    num_mfccs: int = 0  # 0: log-mel features; n: the first n MFCCs
    normalize: bool = True

    @classmethod
    def from_ms(cls, sample_rate: int, frame_ms: float, step_ms: float, **options) -> "FeatureSettings":
        """Settings with frames given in milliseconds; fft_length the next power of two."""
        length, step = int(round(sample_rate * frame_ms / 1000)), int(round(sample_rate * step_ms / 1000))
        fft = 1 << max(length - 1, 1).bit_length()
        settings = cls(sample_rate, length, step, fft, **options)
        settings.check()
        return settings

    def check(self) -> None:
        if self.sample_rate < 1000:
            raise DataError(f"data.sample_rate must be at least 1000 Hz, received {self.sample_rate}")
        if not 0 < self.frame_step <= self.frame_length <= self.fft_length:
            raise DataError(f"frames need 0 < step ({self.frame_step}) <= length ({self.frame_length}) samples "
                            "(data.frame_ms, data.step_ms)")
        if not 0 <= self.lower_hz < self.upper_hz <= self.sample_rate / 2:
            raise DataError(f"data.lower_hz and data.upper_hz must satisfy 0 <= {self.lower_hz} < {self.upper_hz} "
                            f"<= {self.sample_rate / 2} (half the sample rate)")
        if self.num_mel_bins < 2 or not 0 <= self.num_mfccs <= self.num_mel_bins:
            raise DataError(f"data.num_mel_bins must be at least 2 and data.num_mfccs in [0, num_mel_bins], received "
                            f"{self.num_mel_bins} and {self.num_mfccs}")

    @property
    def num_features(self) -> int:
        """Per frame: the spectral features and the frame's validity flag (1)."""
        return (self.num_mfccs or self.num_mel_bins) + 1

    @property
    def min_samples(self) -> int:
        return self.frame_length + self.frame_step

    def frame_count(self, samples):
        """Frames of utterances of `samples` samples (an int or an array of them)."""
        return 1 + (np.maximum(samples, self.min_samples) - self.frame_length) // self.frame_step

    def samples_for(self, frames: int) -> int:
        """The fewest samples that give `frames` frames."""
        return self.frame_length + (max(frames, 2) - 1) * self.frame_step

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "FeatureSettings":
        return cls(**{f.name: d[f.name] for f in dataclasses.fields(cls)})


def hertz_to_mel(hz):
    return 1127.0 * np.log1p(np.asarray(hz, np.float64) / 700.0)


def mel_matrix(s: FeatureSettings) -> np.ndarray:
    """(fft_length // 2 + 1, num_mel_bins) triangular filters on the HTK mel scale, the DC bin 0:
    the matrix of `tf.signal.linear_to_mel_weight_matrix`."""
    bins = s.fft_length // 2 + 1
    mel = hertz_to_mel(np.linspace(0.0, s.sample_rate / 2, bins))[1:, None]
    edges = np.linspace(hertz_to_mel(s.lower_hz), hertz_to_mel(s.upper_hz), s.num_mel_bins + 2)
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    weights = np.maximum(0.0, np.minimum((mel - lower) / (center - lower), (upper - mel) / (upper - center)))
    return np.concatenate([np.zeros((1, s.num_mel_bins)), weights]).astype(np.float32)


def dct_matrix(s: FeatureSettings) -> np.ndarray:
    """(num_mel_bins, num_mfccs): the DCT-II of `tf.signal.mfccs_from_log_mel_spectrograms`."""
    n = s.num_mel_bins
    k, i = np.arange(s.num_mfccs)[None, :], np.arange(n)[:, None]
    return (2.0 * np.cos(np.pi * k * (2 * i + 1) / (2 * n)) / np.sqrt(2.0 * n)).astype(np.float32)


def hann_window(length: int) -> np.ndarray:
    """The periodic Hann window of `tf.signal.hann_window`."""
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(length) / length)).astype(np.float32)


def tf_features(waveforms, lengths, s: FeatureSettings, max_frames: int | None = None):
    """(batch, samples) float32 waveforms, right-padded, and their lengths -> (features (batch,
    frames, num_features) float32, the last one 1 and padding frames zero, frame counts (batch,)
    int32);
    `max_frames` keeps each utterance's first frames."""
    import tensorflow as tf

    waveforms = tf.convert_to_tensor(waveforms, tf.float32)
    short = tf.maximum(s.min_samples - tf.shape(waveforms)[1], 0)
    waveforms = tf.pad(waveforms, [[0, 0], [0, short]])
    frames = tf.signal.frame(waveforms, s.frame_length, s.frame_step)
    counts = 1 + (tf.maximum(tf.cast(lengths, tf.int32), s.min_samples) - s.frame_length) // s.frame_step
    if max_frames is not None:
        frames, counts = frames[:, :max_frames], tf.minimum(counts, max_frames)
    spectrum = tf.signal.rfft(frames * tf.constant(hann_window(s.frame_length)), [s.fft_length])
    power = tf.math.real(spectrum) ** 2 + tf.math.imag(spectrum) ** 2
    x = tf.math.log(tf.tensordot(power, tf.constant(mel_matrix(s)), 1) + LOG_OFFSET)
    if s.num_mfccs:
        x = tf.tensordot(x, tf.constant(dct_matrix(s)), 1)
    mask = tf.sequence_mask(counts, tf.shape(x)[1], tf.float32)[..., None]
    if s.normalize:
        n = tf.cast(counts, tf.float32)[:, None, None]
        mean = tf.reduce_sum(x * mask, axis=1, keepdims=True) / n
        variance = tf.reduce_sum(((x - mean) * mask) ** 2, axis=1, keepdims=True) / n
        x = (x - mean) * tf.math.rsqrt(variance + NORM_EPSILON)
    return tf.concat([x, tf.ones_like(x[..., :1])], axis=-1) * mask, counts


def numpy_features(waveforms, s: FeatureSettings, max_frames: int | None = None,
                   length: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The features of `tf_features` without TensorFlow, from a list of 1-D waveforms: (features
    (batch, frames, num_features), frame counts); padded to `length` frames (default the most)."""
    window, mel = hann_window(s.frame_length), mel_matrix(s)  # once, not per utterance
    dct = dct_matrix(s) if s.num_mfccs else None
    rows = []
    for w in waveforms:
        w = np.asarray(w, np.float32)
        w = np.pad(w, (0, max(s.min_samples - w.size, 0)))
        count = int(s.frame_count(w.size))
        if max_frames is not None:
            count = min(count, max_frames)
        frames = np.lib.stride_tricks.sliding_window_view(w, s.frame_length)[::s.frame_step][:count]
        power = np.abs(np.fft.rfft(frames * window, n=s.fft_length)) ** 2
        x = np.log(power @ mel + LOG_OFFSET)
        if dct is not None:
            x = x @ dct
        if s.normalize:
            x = (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + NORM_EPSILON)
        rows.append(np.concatenate([x, np.ones_like(x[:, :1])], axis=1).astype(np.float32))
    counts = np.array([len(r) for r in rows], np.int32)
    length = length or max(counts, default=1)
    out = np.zeros((len(rows), length, s.num_features), np.float32)
    for i, r in enumerate(rows):
        out[i, :min(len(r), length)] = r[:length]
    return out, counts


def pad_waveforms(waveforms) -> tuple[np.ndarray, np.ndarray]:
    """A list of 1-D waveforms -> ((batch, longest) float32 right-padded with 0, lengths int32)."""
    lengths = np.array([len(w) for w in waveforms], np.int32)
    out = np.zeros((len(waveforms), max(lengths, default=1)), np.float32)
    for i, w in enumerate(waveforms):
        out[i, :len(w)] = w
    return out, lengths
