"""Audio: WAV files of every variant read to the same samples, bad files refused with one line,
the split layouts, and the log-mel / MFCC features against tf.signal and their NumPy twin."""

import io
import struct
import types
import wave

import numpy as np
import pytest
import soundfile
import tensorflow as tf

from pipelines.audio_features import (FeatureSettings, dct_matrix, hertz_to_mel, mel_matrix, numpy_features,
                                      pad_waveforms, tf_features)
from pipelines.errors import DataError
from pipelines.speech_preprocessor import SpeechPreprocessor, spec_augment
from pipelines.wav_files import find_wav_splits, read_split, read_wav, resample

RATE = 16000


def tone(hz, seconds=0.5, rate=RATE, amplitude=0.5):
    return (amplitude * np.sin(2 * np.pi * hz * np.arange(int(seconds * rate)) / rate)).astype(np.float32)


def pcm_bytes(samples: np.ndarray, width: int, rate: int = RATE) -> bytes:
    """A PCM WAV written with the standard library's `wave` (not the reader's library); samples
    (frames,) or (frames, channels) in [-1, 1)."""
    frames = samples if samples.ndim == 2 else samples[:, None]
    if width == 1:  # 8-bit WAV is unsigned
        raw = (np.round(frames * 127) + 128).astype(np.uint8).tobytes()
    else:
        ints = np.round(frames * (2 ** (8 * width - 1) - 1)).astype("<i4")
        raw = b"".join(i.tobytes()[:width] for i in ints.reshape(-1))
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(frames.shape[1])
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(raw)
    return out.getvalue()


def with_extra_chunk(data: bytes) -> bytes:
    """A LIST chunk (odd length, padded) between `fmt ` and `data`, the RIFF size fixed."""
    at = data.index(b"data")
    payload = b"INFOISFT\x05\x00\x00\x00test\x00"
    chunk = b"LIST" + struct.pack("<I", len(payload)) + payload + b"\x00" * (len(payload) % 2)
    out = data[:at] + chunk + data[at:]
    return out[:4] + struct.pack("<I", len(out) - 8) + out[8:]


def write(path, data: bytes):
    path.write_bytes(data)
    return str(path)


@pytest.mark.parametrize("width, step", [(1, 1 / 127), (2, 1 / 32767), (3, 1 / 8388607), (4, 1 / 2147483647)])
def test_pcm_of_every_width_reads_to_the_same_samples(tmp_path, width, step):
    x = tone(440, 0.1)
    got = read_wav(write(tmp_path / "a.wav", pcm_bytes(x, width)), RATE)
    np.testing.assert_allclose(got, x, atol=step)


def test_float_stereo_other_rates_and_extra_chunks(tmp_path):
    x = tone(440, 0.1)
    buf = io.BytesIO()
    soundfile.write(buf, x, RATE, format="WAV", subtype="FLOAT")
    np.testing.assert_array_equal(read_wav(write(tmp_path / "f.wav", buf.getvalue()), RATE), x)
    stereo = np.stack([x, np.zeros_like(x)], axis=1)
    np.testing.assert_allclose(read_wav(write(tmp_path / "s.wav", pcm_bytes(stereo, 2)), RATE), x / 2, atol=1e-4)
    extra = with_extra_chunk(pcm_bytes(x, 2))
    assert b"LIST" in extra
    np.testing.assert_allclose(read_wav(write(tmp_path / "x.wav", extra), RATE), x, atol=1e-4)
    # 8 kHz -> 16 kHz: twice the samples, the same tone
    low = read_wav(write(tmp_path / "r.wav", pcm_bytes(tone(440, 0.5, rate=8000), 2, rate=8000)), RATE)
    assert low.size == RATE // 2
    np.testing.assert_allclose(low[1000:-1000], tone(440, 0.5)[1000:-1000], atol=2e-3)


@pytest.mark.parametrize("hz, rate, target", [(440.0, 8000, 16000), (1000.0, 16000, 8000), (300.0, 44100, 16000)])
def test_resampling_keeps_a_tones_frequency(hz, rate, target):
    y = resample(tone(hz, 1.0, rate=rate), rate, target)
    assert abs(y.size - target) <= 1
    spectrum = np.abs(np.fft.rfft(y * np.hanning(y.size)))
    assert abs(np.argmax(spectrum) * target / y.size - hz) <= 1.0


@pytest.mark.parametrize("name, data, message", [
    ("empty.wav", b"", "empty"),
    ("text.wav", b"hello, I am not a sound\n" * 4, "not a readable WAV"),
    ("header.wav", pcm_bytes(tone(440, 0.1), 2)[:20], "not a readable WAV"),
    ("half.wav", pcm_bytes(tone(440, 0.1), 2)[:1644], "cut short"),
    ("silent.wav", pcm_bytes(np.zeros(0, np.float32), 2), "no samples"),
])
def test_unreadable_files_are_one_line_errors_naming_the_file(tmp_path, name, data, message):
    path = write(tmp_path / name, data)
    with pytest.raises(DataError, match=message) as e:
        read_wav(path, RATE)
    assert str(e.value).startswith(path) and "\n" not in str(e.value)


def _layout(root, files: dict):
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return str(root)


def test_split_layouts_and_stray_files(tmp_path):
    wav = pcm_bytes(tone(440, 0.1), 2)
    root = _layout(tmp_path / "a", {"train/yes/1.wav": wav, "train/no/2.wav": wav, "train/no/.DS_Store": b"\0\1",
                                    "train/_background_noise_/n.wav": wav, "train/README.md": b"# words",
                                    "valid/yes/3.wav": wav})
    folders = find_wav_splits(root, "folder")
    assert sorted(folders) == ["dev", "train"]
    utterances, skipped = read_split(folders["train"], "folder", RATE)
    assert sorted(u.label for u in utterances) == ["no", "yes"] and not skipped
    flat = _layout(tmp_path / "b", {"seven_jo_0.wav": wav, "two_al_1.wav": wav, "notes.txt": b"x"})
    utterances, _ = read_split(find_wav_splits(flat, "filename")["train"], "filename", RATE)
    assert [(u.label, u.speaker) for u in utterances] == [("seven", "jo"), ("two", "al")]


def test_bad_layouts_name_the_folder(tmp_path):
    wav = pcm_bytes(tone(440, 0.1), 2)
    with pytest.raises(DataError, match="has no train/ folder"):
        find_wav_splits(_layout(tmp_path / "a", {"dev/yes/1.wav": wav}), "folder")
    _layout(tmp_path / "b", {"train/yes/1.wav": wav})
    (tmp_path / "b" / "train" / "no").mkdir()
    with pytest.raises(DataError, match=r"train/no holds no \.wav files"):
        read_split(str(tmp_path / "b" / "train"), "folder", RATE)


def test_skip_bad_reports_which_files(tmp_path):
    wav = pcm_bytes(tone(440, 0.1), 2)
    root = _layout(tmp_path, {"train/yes/1.wav": wav, "train/yes/2.wav": b"", "train/no/3.wav": wav[:30]})
    with pytest.raises(DataError, match=r"3.wav: not a readable WAV"):  # no/ before yes/
        read_split(f"{root}/train", "folder", RATE)
    utterances, skipped = read_split(f"{root}/train", "folder", RATE, skip_bad=True)
    assert [u.where.rsplit("/", 1)[1] for u in utterances] == ["1.wav"]
    assert len(skipped) == 2 and any("3.wav" in s for s in skipped)


# --- features ------------------------------------------------------------------------------------

SETTINGS = FeatureSettings.from_ms(RATE, 25, 10, upper_hz=8000.0)


def test_filterbank_and_dct_are_tf_signals():
    np.testing.assert_allclose(mel_matrix(SETTINGS), tf.signal.linear_to_mel_weight_matrix(
        40, 257, RATE, 20.0, 8000.0).numpy(), atol=1e-5)
    s = FeatureSettings(**{**SETTINGS.to_dict(), "num_mfccs": 13})
    x = np.random.default_rng(0).normal(size=(2, 7, 40)).astype(np.float32)
    np.testing.assert_allclose(x @ dct_matrix(s), tf.signal.mfccs_from_log_mel_spectrograms(x)[..., :13].numpy(),
                               atol=1e-5)


@pytest.mark.parametrize("hz", [300.0, 1000.0, 3000.0])
def test_a_tone_peaks_in_the_mel_bin_around_its_frequency(hz):
    s = FeatureSettings(**{**SETTINGS.to_dict(), "normalize": False})
    features, _ = tf_features(tone(hz)[None], [RATE // 2], s)
    edges = np.linspace(hertz_to_mel(s.lower_hz), hertz_to_mel(s.upper_hz), s.num_mel_bins + 2)
    centers_hz = 700.0 * (np.exp(edges[1:-1] / 1127.0) - 1)
    assert np.argmax(features.numpy()[0, :, :-1].mean(axis=0)) == np.argmin(np.abs(centers_hz - hz))


def test_padding_frames_are_exactly_the_masked_ones():
    lengths = [RATE // 2, 4000, 700, 100]
    waveforms, lengths = pad_waveforms([tone(500, n / RATE) for n in lengths])
    waveforms[1] *= np.linspace(0.1, 1.0, waveforms.shape[1])  # not steady: features well away from 0
    waveforms[1, :4000] += np.random.default_rng(0).normal(0, 1e-3, 4000)  # every bin above float32's FFT noise
    features, counts = tf_features(waveforms, lengths, SETTINGS)
    expected = [1 + (n - 400) // 160 for n in (8000, 4000, 700)] + [2]  # 100 samples: padded to two frames
    assert counts.numpy().tolist() == expected
    # a steady tone normalises to all-zero spectral features: the last feature flags the frames
    nonzero = np.abs(features.numpy()).sum(-1) > 0
    np.testing.assert_array_equal(nonzero, np.arange(features.shape[1])[None, :] < np.array(expected)[:, None])
    np.testing.assert_array_equal(features.numpy()[..., -1], nonzero)
    # a row's features do not depend on the batch it is in
    alone, _ = tf_features(waveforms[1:2, :4000], lengths[1:2], SETTINGS)
    np.testing.assert_allclose(features.numpy()[1, :expected[1]], alone.numpy()[0], atol=1e-4)


@pytest.mark.parametrize("options", [{}, {"num_mfccs": 13}, {"normalize": False},
                                     {"num_mfccs": 20, "normalize": False}])
def test_the_numpy_twin_gives_tensorflows_features(options):
    s = FeatureSettings(**{**SETTINGS.to_dict(), **options})
    rng = np.random.default_rng(1)
    waveforms = [rng.normal(0, 0.1, n).astype(np.float32) * np.sin(np.arange(n) / 40) for n in (16000, 7001, 250)]
    expected, counts = tf_features(*pad_waveforms(waveforms), s, max_frames=60)
    got, got_counts = numpy_features(waveforms, s, max_frames=60)
    np.testing.assert_array_equal(got_counts, counts.numpy())
    scale = 1.0 if s.normalize else np.abs(got).max()
    np.testing.assert_allclose(got / scale, expected.numpy() / scale, atol=1e-4)


def test_spec_augment_only_in_training():
    data = types.SimpleNamespace(sample_rate=8000, frame_ms=25, step_ms=10, num_mel_bins=20, num_mfccs=0,
                                 lower_hz=20.0, upper_hz=0.0, normalize=True, max_length=None, length_percentile=100.0,
                                 batch_size=8, bucketing=False, num_buckets=1, spec_time_masks=2,
                                 spec_time_mask_frames=10, spec_freq_masks=2, spec_freq_mask_bins=5)
    rng = np.random.default_rng(0)  # not steady: normalised features well away from 0
    utterances = [types.SimpleNamespace(samples=tone(200 + 100 * i, 0.5, 8000) * rng.uniform(0, 1, 4000).cumsum()
                                        / 4000 + rng.normal(0, 0.01, 4000).astype(np.float32),
                                        label=str(i % 2), where=str(i)) for i in range(8)]
    p = SpeechPreprocessor(data)
    p.fit(utterances)
    (features, _), = p.dataset(utterances, training=False)
    expected, _ = p.numpy_features([u.samples for u in utterances])
    np.testing.assert_allclose(features.numpy(), expected, atol=1e-4)
    zero_frames = zero_bands = 0
    for _ in range(5):
        (x, _), = p.dataset(utterances, training=True)
        assert (x.numpy()[..., -1] == 1).all()  # every frame still a frame
        zero_frames += int((np.abs(x.numpy()[..., :-1]).sum(-1) == 0).sum())
        zero_bands += int((np.abs(x.numpy()[..., :-1]).sum(1) == 0).sum())
    assert zero_frames > 0 and zero_bands > 0


def test_spec_augment_masks_at_most_their_widths():
    x = tf.ones((50, 21))  # 20 features and the flag
    masked = []
    for seed in range(20):
        tf.random.set_seed(seed)
        y = spec_augment(x, 2, 30, 2, 3).numpy()  # time spans of at most 50 // 5 = 10 frames
        frames, bands = (y[:, :-1] == 0).all(axis=1).sum(), (y[:, :-1] == 0).all(axis=0).sum()
        assert frames <= 2 * 10 and bands <= 2 * 3 and (y[:, -1] == 1).all()
        assert set(np.unique(y)) <= {0.0, 1.0}
        masked.append((frames, bands))
    assert max(masked) > (0, 0)
