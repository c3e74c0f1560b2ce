"""Built-in sentiment data: generated reviews whose label follows from their structure.

A clause is `subject verb [negation] [intensifier] adjective`; its polarity is the adjective's,
flipped by a negation ("was not good" is negative). A review is one clause, two clauses joined
by "and" (same polarity), or a contrast ("X but Y", "although X , Y") whose label is that of the
second clause. Word order therefore matters: a bag of words cannot tell "not good" from
"good", nor "good but boring" from "boring but good".
"""

from __future__ import annotations

import dataclasses
import random

LABELS = ("negative", "positive")

SUBJECTS = ("the movie", "this film", "the story", "the acting", "the plot", "the soundtrack",
            "the ending", "the cast", "the dialogue", "the pacing", "the script", "the direction")
VERBS = ("was", "is", "felt", "seemed", "looked")
NEGATIONS = ("not", "never", "hardly")
INTENSIFIERS = ("very", "really", "extremely", "incredibly", "quite", "so", "truly")
POSITIVE = ("good", "great", "wonderful", "brilliant", "charming", "moving", "funny",
            "delightful", "superb", "clever", "gripping", "beautiful")
NEGATIVE = ("bad", "boring", "awful", "dull", "terrible", "weak", "clumsy", "tedious",
            "bland", "predictable", "messy", "lifeless")
OPENERS = ("honestly ,", "i think", "in my opinion ,", "overall ,", "to be fair ,", "frankly ,")
CLOSERS = ("from start to finish", "in the end", "for most of the time", "at least to me",
           "if you ask me", "all things considered")


@dataclasses.dataclass(frozen=True)
class SentimentSample:
    text: str
    label: str
    negated: bool  # the clause that decides the label contains a negation
    contrast: bool  # the review contrasts two clauses


def _clause(rng: random.Random, positive: bool, negated: bool) -> str:
    words = [rng.choice(SUBJECTS), rng.choice(VERBS)]
    if negated:
        words.append(rng.choice(NEGATIONS))
    if rng.random() < 0.35:
        words.append(rng.choice(INTENSIFIERS))
    # A negated clause uses the adjective of the opposite polarity.
    words.append(rng.choice(POSITIVE if positive != negated else NEGATIVE))
    return " ".join(words)


def generate(size: int, seed: int, negation_rate: float = 0.4) -> list[SentimentSample]:
    """`size` reviews, reproducible from `seed`; labels are balanced in expectation.

    Example:
    >>> [s.label for s in generate(3, seed=0)]
    ['negative', 'negative', 'negative']
    """
    if size < 1:
        raise ValueError(f"size must be positive, received size={size}")
    rng = random.Random(seed)
    samples = []
    for _ in range(size):
        positive = rng.random() < 0.5
        negated = rng.random() < negation_rate
        kind = rng.random()
        contrast = False
        if kind < 0.4:
            text = _clause(rng, positive, negated)
        elif kind < 0.6:
            text = f"{_clause(rng, positive, rng.random() < negation_rate)} and {_clause(rng, positive, negated)}"
        else:
            contrast = True
            first = _clause(rng, not positive, rng.random() < negation_rate)
            second = _clause(rng, positive, negated)
            text = f"{first} but {second}" if rng.random() < 0.6 else f"although {first} , {second}"
        if rng.random() < 0.3:
            text = f"{rng.choice(OPENERS)} {text}"
        if rng.random() < 0.3:
            text = f"{text} {rng.choice(CLOSERS)}"
        samples.append(SentimentSample(text, LABELS[int(positive)], negated, contrast))
    return samples
