"""Tagged sentences from a small probabilistic grammar, for the POS tagging app's `synthetic` source.

Two things make it a tagging task rather than a lookup:

- **Ambiguous words** ("book", "run", "that", "back", "watch", "can") take their tag from the
  context: "the book" / "we book a room"; "that dog" / "saw that ." / "said that the ...";
  "came back" / "the back door" / "the back of the house".
- **Open-class words are made up** from stems and suffixes that mark their class (-tion, -ness
  nouns; -ize, -ate verbs; -ous, -ful adjectives; -ly adverbs), with capitals for names and
  digits for numbers. A separate `stem_seed` gives words never seen in training, whose tags only
  their spelling and context tell.

Tags are Universal Dependencies UPOS.
"""

from __future__ import annotations

import dataclasses
import random

AMBIGUOUS = ("book", "run", "that", "back", "watch", "can")
_CONSONANTS, _VOWELS = "bdfgklmnprstvz", "aeiou"
_SUFFIXES = {"NOUN": ("tion", "ness", "ment", "er", "ity"), "VERB": ("ize", "ate", "ify", "en"),
             "ADJ": ("ous", "ful", "ive", "al", "ic"), "ADV": ("ly",)}
_CLOSED = {"DET": ("the", "a", "every", "this"), "PRON": ("we", "they", "i", "you", "she"),
           "ADP": ("of", "in", "near", "with"), "AUX": ("will", "must", "should"), "CCONJ": ("and", "but"),
           "SCONJ": ("because", "if"), "PART": ("to", "not")}
_REPORTING = ("said", "knew", "thought")  # VERB, taking "that" + clause
_SEEING = ("saw", "liked", "took")  # VERB, taking an object (or "that" as a pronoun)


@dataclasses.dataclass(frozen=True)
class TaggedSample:
    words: tuple[str, ...]
    tags: tuple[str, ...]


class _Lexicon:
    """Made-up open-class words: a stem per word, a suffix per class."""

    def __init__(self, seed: int, size: int = 40):
        rng = random.Random(f"lexicon-{seed}")
        self.words = {}
        for tag, suffixes in _SUFFIXES.items():
            words = set()
            while len(words) < size:
                stem = "".join(rng.choice(_CONSONANTS) + rng.choice(_VOWELS) for _ in range(rng.randint(1, 2)))
                words.add(stem + rng.choice(suffixes))
            self.words[tag] = sorted(words)
        names = set()
        while len(names) < size // 2:
            names.add("".join(rng.choice(_CONSONANTS) + rng.choice(_VOWELS) for _ in range(2)).capitalize())
        self.words["PROPN"] = sorted(names)


class _Grammar:
    def __init__(self, rng: random.Random, lexicon: _Lexicon):
        self.rng, self.lexicon = rng, lexicon

    def pick(self, tag: str) -> tuple[str, str]:
        words = self.lexicon.words.get(tag) or _CLOSED[tag]
        return self.rng.choice(words), tag

    def noun_phrase(self, allow_pronoun: bool = True) -> list[tuple[str, str]]:
        r = self.rng.random()
        if allow_pronoun and r < 0.2:
            return [self.pick("PRON")]
        if r < 0.3:
            return [self.pick("PROPN")]
        if r < 0.36:
            return [(str(self.rng.randint(2, 99)), "NUM"), self.pick("NOUN")]
        det = ("that", "DET") if self.rng.random() < 0.15 else self.pick("DET")
        phrase = [det]
        if self.rng.random() < 0.4:
            phrase.append(("back", "ADJ") if self.rng.random() < 0.15 else self.pick("ADJ"))
        noun = self.rng.random()
        if noun < 0.12:
            phrase.append(("book", "NOUN"))
        elif noun < 0.2:
            phrase.append(("run", "NOUN"))
        elif noun < 0.26:
            phrase.append(("watch", "NOUN"))
        elif noun < 0.3:
            phrase.append(("can", "NOUN"))
        else:
            phrase.append(self.pick("NOUN"))
        if self.rng.random() < 0.15:  # "the back of the house"
            phrase = [det, ("back", "NOUN"), self.pick("ADP"), *self.noun_phrase(allow_pronoun=False)]
        return phrase

    def verb(self) -> list[tuple[str, str]]:
        r = self.rng.random()
        if r < 0.2:
            return [("book", "VERB")]
        if r < 0.35:
            return [("run", "VERB")]
        if r < 0.45:
            return [("watch", "VERB")]
        return [self.pick("VERB")]

    def verb_phrase(self, depth: int) -> list[tuple[str, str]]:
        r = self.rng.random()
        if r < 0.15 and depth < 2:  # "said that the dog ..."
            return [(self.rng.choice(_REPORTING), "VERB"), ("that", "SCONJ"), *self.clause(depth + 1)]
        if r < 0.25:  # "saw that" (a pronoun object)
            return [(self.rng.choice(_SEEING), "VERB"), ("that", "PRON")]
        head = self.verb()
        if self.rng.random() < 0.3:
            head = [("can", "AUX") if self.rng.random() < 0.4 else self.pick("AUX"), *head]
        elif self.rng.random() < 0.1:
            head = [(self.rng.choice(("want", "try")), "VERB"), ("to", "PART"), *head]
        if self.rng.random() < 0.25:  # "came back", "run back"
            return [*head, ("back", "ADV")]
        phrase = [*head, *self.noun_phrase()]
        if self.rng.random() < 0.3:
            phrase += [self.pick("ADP"), *self.noun_phrase(allow_pronoun=False)]
        if self.rng.random() < 0.2:
            phrase.append(self.pick("ADV"))
        return phrase

    def clause(self, depth: int = 0) -> list[tuple[str, str]]:
        return [*self.noun_phrase(), *self.verb_phrase(depth)]

    def sentence(self) -> list[tuple[str, str]]:
        words = self.clause()
        if self.rng.random() < 0.15:
            words += [self.pick("CCONJ"), *self.clause(1)]
        if self.rng.random() < 0.1:
            words = [self.pick("SCONJ"), *self.clause(1), (",", "PUNCT"), *words]
        return [*words, (self.rng.choice((".", ".", "!", "?")), "PUNCT")]


def generate(n: int, seed: int, stem_seed: int = 0) -> list[TaggedSample]:
    """`n` tagged sentences; sentences with the same `stem_seed` share their made-up words.

    Example:
    >>> sample = generate(1, seed=3)[0]
    >>> len(sample.words) == len(sample.tags), sample.tags[-1]
    (True, 'PUNCT')
    """
    grammar = _Grammar(random.Random(seed), _Lexicon(stem_seed))
    samples = []
    for _ in range(n):
        pairs = grammar.sentence()
        first_word, first_tag = pairs[0]
        if first_tag != "PROPN":  # sentence case: a capital says little about the first word
            pairs[0] = (first_word.capitalize(), first_tag)
        samples.append(TaggedSample(tuple(w for w, _ in pairs), tuple(t for _, t in pairs)))
    return samples
