"""Built-in translation data: an English-like source and an invented target language that
needs real alignment.

Source: `the [ADJ] NOUN [near the [ADJ] NOUN] VERB the [ADJ] NOUN`, nouns singular or plural,
verbs agreeing with the subject (SVO). Target: every word substituted, the order changed to
subject-object-verb, adjectives after their noun, "near" a postposition, and the verb carrying
an agreement suffix chosen by the *subject's* number: e.g.

    the big dog near the cats chases the bird  ->  lo kani grando lo misoj cerka lo piru kasan

A word-by-word model cannot score well: the verb comes last and its suffix depends on a word
at the start. Each target token records the source position it translates (`alignment`).
"""

from __future__ import annotations

import dataclasses
import random

NOUNS = {"dog": "kani", "cat": "miso", "bird": "piru", "fox": "vulpo", "horse": "hevo", "mouse": "muso",
         "frog": "rano", "wolf": "lupo", "bear": "urso", "lion": "leono", "goat": "kapro", "duck": "anado"}
VERBS = {"see": "vid", "chase": "kas", "like": "am", "follow": "sekv", "hear": "aud", "find": "trov",
         "help": "help", "watch": "rigard"}
ADJECTIVES = {"big": "grando", "small": "eta", "red": "ruga", "old": "malnova", "young": "juna",
              "quick": "rapida", "lazy": "pigra", "happy": "felica"}
SINGULAR_SUFFIX, PLURAL_SUFFIX = "an", "aru"
PLURAL_NOUN_SUFFIX = "j"


@dataclasses.dataclass(frozen=True)
class TranslationSample:
    source: str
    target: str
    alignment: tuple[int, ...]  # for each target token, the index of the source token it translates


def _noun_phrase(rng: random.Random, src: list[str], tgt: list[tuple[str, int]], allow_pp: bool) -> bool:
    """Appends `the [ADJ] NOUN [near the [ADJ] NOUN]`; returns whether the head noun is plural."""
    noun = rng.choice(list(NOUNS))
    plural = rng.random() < 0.4
    adjective = rng.choice(list(ADJECTIVES)) if rng.random() < 0.5 else None
    the = len(src)
    src.append("the")
    if adjective:
        src.append(adjective)
    src.append(noun + ("s" if plural else ""))
    tgt.append(("lo", the))
    tgt.append((NOUNS[noun] + (PLURAL_NOUN_SUFFIX if plural else ""), len(src) - 1))
    if adjective:
        tgt.append((ADJECTIVES[adjective], the + 1))
    if allow_pp and rng.random() < 0.3:
        near = len(src)
        src.append("near")
        inner: list[tuple[str, int]] = []
        _noun_phrase(rng, src, inner, allow_pp=False)
        tgt.extend(inner)
        tgt.append(("cerka", near))
    return plural


def generate(size: int, seed: int) -> list[TranslationSample]:
    """`size` sentence pairs, reproducible from `seed`.

    Example:
    >>> sample = generate(1, seed=0)[0]
    >>> len(sample.target.split()) == len(sample.alignment)
    True
    """
    if size < 1:
        raise ValueError(f"size must be positive, received size={size}")
    rng = random.Random(seed)
    samples = []
    for _ in range(size):
        src: list[str] = []
        subject: list[tuple[str, int]] = []
        plural = _noun_phrase(rng, src, subject, allow_pp=True)
        verb = rng.choice(list(VERBS))
        verb_position = len(src)
        src.append(verb if plural else verb + ("es" if verb.endswith(("ch", "sh")) else "s"))
        obj: list[tuple[str, int]] = []
        _noun_phrase(rng, src, obj, allow_pp=True)
        tgt = subject + obj + [(VERBS[verb] + (PLURAL_SUFFIX if plural else SINGULAR_SUFFIX), verb_position)]
        samples.append(TranslationSample(" ".join(src), " ".join(w for w, _ in tgt), tuple(i for _, i in tgt)))
    return samples
