"""Spoken-word-like signals made in NumPy, that only the time course of the spectrum tells apart.

Every word is three vowels in a row, and the words are the orderings of the same three vowels
(`a i u`, `a u i`, `i a u`, ...): over a whole utterance each word has the same sounds for about
the same time, so the spectrum's average (or any statistic of the frames taken out of order) says
nothing of the word; the order of the sounds says everything.

A vowel is a harmonic sound (the speaker's pitch, gliding slightly) shaped by two formant
resonances (`VOWELS`, scaled by the speaker's vocal tract); the formants glide from one vowel to
the next. Speakers differ in pitch, vocal tract, speed, loudness and background noise; an
utterance also has random silence before and after, and segments of random length.

Example:
>>> words = generate(4, seed=0, rate=8000)
>>> [w.label for w in words][:2], words[0].samples.dtype
(['i-a-u', 'u-a-i'], dtype('float32'))
"""

from __future__ import annotations

import itertools

import numpy as np

from pipelines.wav_files import Utterance

VOWELS = {"a": (730.0, 1090.0), "i": (270.0, 2290.0), "u": (300.0, 870.0)}  # (F1, F2) in Hz
WORDS = tuple("-".join(p) for p in itertools.permutations(VOWELS))
BANDWIDTHS = (90.0, 110.0)  # of the two formants, Hz
SEGMENT_SECONDS = 0.13
GLIDE_SECONDS = 0.03


def _speaker(rng: np.random.Generator) -> dict:
    return {"pitch": rng.uniform(95, 240), "tract": rng.uniform(0.88, 1.15), "speed": rng.uniform(0.8, 1.25),
            "noise": rng.uniform(0.002, 0.02)}


def _smooth(track: np.ndarray, width: int) -> np.ndarray:
    kernel = np.ones(max(width, 1)) / max(width, 1)
    padded = np.pad(track, (width, width), mode="edge")
    return np.convolve(padded, kernel, mode="same")[width:-width]


def say(word: str, speaker: dict, rng: np.random.Generator, rate: int) -> np.ndarray:
    """One utterance of `word` (vowels joined by `-`) by `speaker`, at `rate` Hz."""
    vowels = word.split("-")
    lengths = [int(rate * SEGMENT_SECONDS * speaker["speed"] * rng.uniform(0.75, 1.3)) for _ in vowels]
    n = sum(lengths)
    formants = np.concatenate([np.repeat(np.array([VOWELS[v]]), k, axis=0) for v, k in zip(vowels, lengths)])
    formants = np.stack([_smooth(formants[:, j], int(rate * GLIDE_SECONDS)) for j in range(2)], axis=1)
    formants *= speaker["tract"]
    t = np.arange(n) / rate
    pitch = speaker["pitch"] * (1 + 0.08 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t + rng.uniform(0, 6.3)))
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    top = min(4000.0, rate / 2 - 200)
    harmonics = np.arange(1, int(top // pitch.min()) + 1, dtype=np.float32)[:, None]  # (k, 1)
    frequencies = harmonics * pitch[None, :].astype(np.float32)
    formants = formants.astype(np.float32)
    gain = sum(1.0 / (1.0 + ((frequencies - formants[None, :, j]) / BANDWIDTHS[j]) ** 2) for j in range(2))
    gain *= (frequencies < top) / harmonics  # a falling source spectrum, nothing above Nyquist
    voice = (gain * np.sin(harmonics * phase[None, :].astype(np.float32))).sum(axis=0)
    envelope = np.minimum(1.0, np.minimum(np.arange(n), np.arange(n)[::-1]) / (0.02 * rate))
    voice *= envelope / (np.abs(voice).max() + 1e-9) * rng.uniform(0.3, 0.9)
    before, after = (int(rate * rng.uniform(0.02, 0.12)) for _ in range(2))
    signal = np.concatenate([np.zeros(before), voice, np.zeros(after)])
    signal += rng.normal(0.0, speaker["noise"], signal.size)
    return np.clip(signal, -1, 1).astype(np.float32)


def generate(n: int, seed: int, rate: int = 16000, speakers: int = 24) -> list[Utterance]:
    """`n` utterances of the `WORDS` (about as many of each) by `speakers` made-up speakers."""
    rng = np.random.default_rng(seed)
    people = [_speaker(rng) for _ in range(speakers)]
    out = []
    for i in range(n):
        word, who = WORDS[rng.integers(len(WORDS))], int(rng.integers(speakers))
        out.append(Utterance(say(word, people[who], rng, rate), word, f"synthetic (seed {seed}) #{i}",
                             speaker=f"s{seed}-{who}"))
    return out
