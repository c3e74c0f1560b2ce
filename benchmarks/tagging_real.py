"""The POS tagging app on a real treebank, next to classical baselines on the same split.

    python -m benchmarks.tagging_real DATA_DIR [--set model.units=256 ...] [--split test|dev]

DATA_DIR holds `*train*.conllu`, `*dev*.conllu` and `*test*.conllu` (for UD English-GUM, whose
snapshots lack the train file, `python -m benchmarks.prepare_gum REPO DATA_DIR` assembles it).
Trains the tagger with its defaults (and `--set` overrides: tune them with `--split dev`, never on
test), then prints UPOS accuracy and OOV accuracy (words whose case-folded form train lacks) of:

- the most frequent tag of each word form (unknown words: the most frequent tag of train);
- an averaged perceptron with the usual word-shape and context features, greedy left to right
  (Collins, 2002; the feature set of Honnibal's "A good part-of-speech tagger in about 200
  lines of Python", 2013), 5 passes over train;
- our tagger: word embeddings, a character CNN per word and a BiLSTM (`apps/tagging.py`).
"""

from __future__ import annotations

import collections
import random
import time

from apps.tagging import Tagging
from benchmarks.real_data import config_and_splits, parse_args, print_table, train_ours
from pipelines.text_rules import case_fold


def _normalize(word: str) -> str:
    if any(c.isdigit() for c in word):
        return "!DIGITS" if not word.isdigit() or len(word) != 4 else "!YEAR"
    return case_fold(word)


class AveragedPerceptron:
    """A greedy left-to-right tagger with averaged weights (the averaging makes it generalise)."""

    def __init__(self):
        self.weights: dict[str, dict[str, float]] = {}
        self.totals: collections.Counter = collections.Counter()
        self.stamps: collections.Counter = collections.Counter()
        self.tags: list[str] = []
        self.updates = 0

    @staticmethod
    def features(i: int, words: list[str], raw: list[str], prev: str, prev2: str) -> list[str]:
        w = words[i]
        context = ["-START2-", "-START-", *words, "-END-", "-END2-"]
        j = i + 2
        shape = "".join("X" if c.isupper() else "x" if c.islower() else "d" if c.isdigit() else c for c in raw[i])[:6]
        return ["bias", f"w={w}", f"suf={w[-3:]}", f"pre={w[:1]}", f"p1={prev}", f"p2={prev2}",
                f"p1p2={prev} {prev2}", f"p1w={prev} {w}", f"w-1={context[j - 1]}", f"suf-1={context[j - 1][-3:]}",
                f"w-2={context[j - 2]}", f"w+1={context[j + 1]}", f"suf+1={context[j + 1][-3:]}",
                f"w+2={context[j + 2]}", f"shape={shape}", f"cap={raw[i][:1].isupper()} first={i == 0}"]

    def _scores(self, features: list[str]) -> dict[str, float]:
        scores = collections.defaultdict(float)
        for f in features:
            for tag, weight in self.weights.get(f, {}).items():
                scores[tag] += weight
        return scores

    def predict_tag(self, features: list[str]) -> str:
        scores = self._scores(features)
        return max(self.tags, key=lambda t: (scores.get(t, 0.0), t))

    def _update(self, truth: str, guess: str, features: list[str]) -> None:
        self.updates += 1
        if truth == guess:
            return
        for f in features:
            row = self.weights.setdefault(f, {})
            for tag, delta in ((truth, 1.0), (guess, -1.0)):
                key = (f, tag)
                self.totals[key] += (self.updates - self.stamps[key]) * row.get(tag, 0.0)
                self.stamps[key] = self.updates
                row[tag] = row.get(tag, 0.0) + delta

    def _average(self) -> None:
        for f, row in self.weights.items():
            for tag, weight in row.items():
                key = (f, tag)
                total = self.totals[key] + (self.updates - self.stamps[key]) * weight
                row[tag] = total / self.updates

    def tag(self, raw: list[str]) -> list[str]:
        words = [_normalize(w) for w in raw]
        prev, prev2, out = "-START-", "-START2-", []
        for i in range(len(words)):
            guess = self.predict_tag(self.features(i, words, raw, prev, prev2))
            out.append(guess)
            prev2, prev = prev, guess
        return out

    def train(self, sentences, passes: int = 5, seed: int = 0) -> None:
        self.tags = sorted({t for s in sentences for t in s.tags})
        order = list(sentences)
        for _ in range(passes):
            random.Random(seed + _).shuffle(order)
            for s in order:
                words, raw = [_normalize(w) for w in s.words], list(s.words)
                prev, prev2 = "-START-", "-START2-"
                for i, truth in enumerate(s.tags):
                    features = self.features(i, words, raw, prev, prev2)
                    self._update(truth, self.predict_tag(features), features)
                    prev2, prev = prev, truth  # trained on the gold history
        self._average()


def _accuracy(predicted: list[list[str]], sentences, train_forms: set[str]) -> dict:
    right = total = oov_right = oov = 0
    for tags, s in zip(predicted, sentences):
        for guess, truth, word in zip(tags, s.tags, s.words):
            total += 1
            right += guess == truth
            if case_fold(word) not in train_forms:
                oov += 1
                oov_right += guess == truth
    return {"accuracy": right / total, "accuracy_oov": oov_right / max(oov, 1), "words": total, "oov_words": oov}


def main(argv=None) -> None:
    args = parse_args(__doc__, "directory with *train*, *dev*, *test* .conllu files", argv)
    app = Tagging()
    config, splits = config_and_splits(app, args)
    train, scored = splits["train"], splits[args.split]
    train_forms = {case_fold(w) for s in train for w in s.words}
    print(f"{args.data}: train {len(train)} sentences, {args.split} {len(scored)} sentences", flush=True)
    results = {} if args.no_baselines else _baselines(train, scored, train_forms)
    name, ours = train_ours(app, config, args)
    results[name] = ours
    print(f"\n{args.split} split, {ours['words']} words ({ours['oov_words']} not in train):\n")
    print_table(results, {"accuracy": "accuracy", "accuracy_oov": "OOV accuracy"})


def _baselines(train, scored, train_forms) -> dict:
    results = {}
    counts = collections.defaultdict(collections.Counter)
    for s in train:
        for w, t in zip(s.words, s.tags):
            counts[case_fold(w)][t] += 1
    overall = collections.Counter(t for s in train for t in s.tags).most_common(1)[0][0]
    start = time.perf_counter()
    guesses = [[counts[case_fold(w)].most_common(1)[0][0] if case_fold(w) in counts else overall for w in s.words]
               for s in scored]
    results["most frequent tag per word"] = {**_accuracy(guesses, scored, train_forms),
                                             "seconds": time.perf_counter() - start}
    start = time.perf_counter()
    perceptron = AveragedPerceptron()
    perceptron.train(train)
    results["averaged perceptron"] = {**_accuracy([perceptron.tag(list(s.words)) for s in scored], scored,
                                                  train_forms), "seconds": time.perf_counter() - start}
    print(f"baselines done: {results}", flush=True)
    return results


if __name__ == "__main__":
    main()
