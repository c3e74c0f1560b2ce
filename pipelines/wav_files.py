"""WAV files: read (any PCM width or float, mono or stereo, any sample rate) and found in folders.

`read_wav` reads with `soundfile` (libsndfile), mixes channels down to mono and resamples to the
configured rate with a polyphase filter (`scipy.signal.resample_poly`). What cannot be read is a
`DataError` that names the file: an empty file, one that is not WAV, a header cut short, a data
chunk cut short (libsndfile reads what is there and says so in its log: we refuse it), no samples.

Two layouts (`find_wav_splits`):

- `label_from="folder"`: `train/`, `dev/`, `test/`, each holding one folder of `.wav` files per
  label (Speech Commands' layout; folders named `_like_this_`, such as `_background_noise_`,
  are not labels and are skipped);
- `label_from="filename"`: the `.wav` files lie directly in `train/` (`dev/`, `test/`), or in the
  directory itself, named `<label>_<speaker>_<n>.wav`; the speaker keeps all of a speaker's
  files in one split when dev or test are made from train.

Files that are not `.wav` (`.DS_Store`, `README.md`, ...) are ignored.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re

import numpy as np

from pipelines.errors import DataError

SPLITS = ("train", "dev", "test")
SPLIT_ALIASES = {"dev": ("dev", "valid", "validation")}
_CUT = re.compile(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)


@dataclasses.dataclass(frozen=True)
class Utterance:
    """One recording: mono float32 samples at the configured rate, its label, and where it came from."""

    samples: np.ndarray
    label: str
    where: str  # the file (or tfds row) for errors
    speaker: str = ""  # groups utterances when dev or test are made from train


def resample(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    """`samples` at `rate` Hz -> at `target` Hz (polyphase, with scipy's anti-aliasing filter).

    Example:
    >>> resample(np.zeros(8000, np.float32), 8000, 16000).shape
    (16000,)
    """
    if rate == target:
        return samples.astype(np.float32, copy=False)
    from scipy.signal import resample_poly

    g = math.gcd(int(rate), int(target))
    return resample_poly(samples, target // g, rate // g).astype(np.float32)


def read_wav(path: str, rate: int) -> np.ndarray:
    """The samples of a WAV file as mono float32 in [-1, 1] at `rate` Hz; a one-line `DataError`
    naming the file when it cannot be read."""
    import soundfile

    if os.path.getsize(path) == 0:
        raise DataError(f"{path}: the file is empty (0 bytes)")
    try:
        info = soundfile.info(path)
        samples, file_rate = soundfile.read(path, dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as e:
        why = str(e).split(": ", 1)[-1].strip() or type(e).__name__
        raise DataError(f"{path}: not a readable WAV file ({why})") from None
    if info.format not in ("WAV", "WAVEX", "RF64", "W64"):
        raise DataError(f"{path}: a {info.format} file, not WAV")
    cut = _CUT.search(info.extra_info)
    if cut and 0 < int(cut.group(2)) < int(cut.group(1)) < 0xFFFFFFFF:  # 0 and 2^32-1: streamed, size unknown
        raise DataError(f"{path}: the data chunk is cut short (its header says {cut.group(1)} bytes, the file "
                        f"holds {cut.group(2)})")
    if samples.shape[0] == 0:
        raise DataError(f"{path}: the file has no samples")
    return resample(samples.mean(axis=1), file_rate, rate)


def _wavs(folder: str) -> list[str]:
    return sorted(os.path.join(folder, f) for f in os.listdir(folder)
                  if f.lower().endswith(".wav") and os.path.isfile(os.path.join(folder, f)))


def label_of_filename(name: str) -> tuple[str, str]:
    """(label, speaker) of `<label>_<speaker>_<n>.wav`; a name with no `_` is its own label.

    Example:
    >>> label_of_filename("seven_jo_3.wav")
    ('seven', 'jo')
    """
    parts = os.path.splitext(os.path.basename(name))[0].split("_")
    return parts[0], (parts[1] if len(parts) > 2 else "")


def list_split(folder: str, label_from: str) -> list[tuple[str, str, str]]:
    """(path, label, speaker) of every `.wav` of one split's folder."""
    if label_from == "filename":
        files = [(path, *label_of_filename(path)) for path in _wavs(folder)]
        if not files:
            raise DataError(f"{folder} holds no .wav files (data.label_from=filename: <label>_<speaker>_<n>.wav)")
        return files
    labels = sorted(d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d))
                    and not d.startswith((".", "_")))
    if not labels:
        raise DataError(f"{folder} holds no label folders (data.label_from=folder: {folder}/<label>/*.wav)")
    files = []
    for label in labels:
        paths = _wavs(os.path.join(folder, label))
        if not paths:
            raise DataError(f"{os.path.join(folder, label)} holds no .wav files")
        # Speech Commands: <speaker>_nohash_<n>.wav
        names = [os.path.basename(p) for p in paths]
        files += [(p, label, n.split("_nohash_")[0] if "_nohash_" in n else "") for p, n in zip(paths, names)]
    return files


def find_wav_splits(path: str, label_from: str, required: str = "train") -> dict[str, str]:
    """split -> folder of the splits that `path` has, of which `required` must be one."""
    if label_from not in ("folder", "filename"):
        raise DataError(f"data.label_from must be 'folder' or 'filename', received {label_from!r}")
    found = {}
    for split in SPLITS:
        for name in SPLIT_ALIASES.get(split, (split,)):
            if os.path.isdir(os.path.join(path, name)):
                found[split] = os.path.join(path, name)
                break
    if not found and label_from == "filename" and _wavs(path):
        found["train"] = path  # a flat folder: dev and test are made from it
    if required not in found:
        layout = ("train/<label>/*.wav" if label_from == "folder" else "<label>_<speaker>_<n>.wav files (in train/)")
        raise DataError(f"{path} has no {required}/ folder (expected {layout}, and dev/, test/ alike)")
    return found


def read_split(folder: str, label_from: str, rate: int, skip_bad: bool = False) -> tuple[list[Utterance], list[str]]:
    """The utterances of one split, and the errors of the files skipped (`skip_bad`; otherwise the
    first unreadable file raises)."""
    utterances, skipped = [], []
    for path, label, speaker in list_split(folder, label_from):
        try:
            utterances.append(Utterance(read_wav(path, rate), label, path, speaker))
        except DataError as e:
            if not skip_bad:
                raise
            skipped.append(str(e))
    if not utterances:
        raise DataError(f"{folder}: no readable .wav files ({len(skipped)} skipped)")
    return utterances, skipped


def complete_speaker_splits(splits: dict, origins: dict[str, str], dev_fraction: float, test_fraction: float,
                            seed: int) -> tuple[dict, str]:
    """`sources.complete_splits` with whole speakers: when every training utterance names its
    speaker, missing dev and test splits take about `fraction` of train's speakers (fixed seed),
    so that no speaker is in two splits; otherwise a random sample of utterances.

    Example:
    >>> train = [Utterance(np.zeros(1), "yes", f"{s}.wav", s) for s in "aabbccddeeffgghhiijj"]
    >>> splits, note = complete_speaker_splits({"train": train}, {"train": "train/"}, 0.1, 0.1, seed=0)
    >>> [len(splits[k]) for k in ("train", "dev", "test")], note.split("; ")[1]
    ([16, 2, 2], 'test: 1 of 10 speakers of train (seed 0)')
    """
    from pipelines.sources import complete_splits, split_off

    speakers = sorted({u.speaker for u in splits["train"]})
    if any(not u.speaker for u in splits["train"]) or len(speakers) < 3:
        return complete_splits(splits, origins, dev_fraction, test_fraction, seed)
    notes = [f"{split}: {origin}" for split, origin in origins.items()]
    for split, fraction in (("test", test_fraction), ("dev", dev_fraction)):
        if split not in splits:
            _, held = split_off(sorted({u.speaker for u in splits["train"]}), fraction, seed)
            held = set(held)
            splits[split] = [u for u in splits["train"] if u.speaker in held]
            splits["train"] = [u for u in splits["train"] if u.speaker not in held]
            notes.append(f"{split}: {len(held)} of {len(speakers)} speakers of train (seed {seed})")
    return splits, "; ".join(notes)
