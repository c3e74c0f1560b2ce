"""Interpolated modified Kneser-Ney character n-gram models (Chen & Goodman, 1998): the classical
baseline of `charlm_real.py`, in plain Python.

P(c | h) = max(N(hc) - D(N(hc)), 0) / N(h.) + gamma(h) P(c | h'), where h' drops h's first
character, N counts n-grams at the top order and distinct left neighbours (continuation counts)
below it, D takes three values per order (for counts 1, 2 and 3+, from the counts of counts),
and gamma(h) = (D1 N1(h.) + D2 N2(h.) + D3 N3+(h.)) / N(h.). The recursion ends at the uniform
distribution over train's characters plus one unseen character.

Example:
>>> model = KneserNey("abracadabra " * 50, order=3)
>>> round(model.bits("abracadabra"), 2) < 0.5  # seen text: nearly free
True
>>> sum(model.probability("ab", c) for c in model.alphabet | {"?"}) > 0.999  # a distribution
True
"""

from __future__ import annotations

import collections
import math


class KneserNey:
    def __init__(self, text: str, order: int):
        self.order = order
        self.alphabet = set(text)
        self.uniform = 1.0 / (len(self.alphabet) + 1)
        self.counts: list[dict[str, int]] = [{} for _ in range(order + 1)]  # k -> k-gram -> (continuation) count
        top = collections.Counter(text[i:i + order] for i in range(len(text) - order + 1))
        self.counts[order] = dict(top)
        for k in range(order - 1, 0, -1):  # distinct characters before each k-gram
            self.counts[k] = dict(collections.Counter(gram[1:] for gram in self.counts[k + 1]))
        self.discounts = [self._discounts(self.counts[k]) for k in range(order + 1)]
        # per context: total count and how many continuations have count 1, 2, 3+
        self.contexts: list[dict[str, list[int]]] = [{} for _ in range(order + 1)]
        for k in range(1, order + 1):
            table = self.contexts[k]
            for gram, n in self.counts[k].items():
                row = table.setdefault(gram[:-1], [0, 0, 0, 0])
                row[0] += n
                row[min(n, 3)] += 1

    @staticmethod
    def _discounts(counts: dict[str, int]) -> tuple[float, float, float]:
        n = collections.Counter(c for c in counts.values() if c <= 4)  # counts of counts 1..4
        if not all(n[i] for i in (1, 2, 3, 4)):
            return (0.5, 1.0, 1.5)
        y = n[1] / (n[1] + 2 * n[2])
        d = (1 - 2 * y * n[2] / n[1], 2 - 3 * y * n[3] / n[2], 3 - 4 * y * n[4] / n[3])
        return tuple(min(max(v, 0.05), i + 1.0) for i, v in enumerate(d))

    def probability(self, history: str, char: str) -> float:
        """P(char | the last order - 1 characters of history)."""
        p = self.uniform
        history = history[len(history) - self.order + 1:] if self.order > 1 else ""
        for k in range(1, self.order + 1):  # from the unigram up, each order interpolating the one below
            if k - 1 > len(history):
                break
            context = history[len(history) - (k - 1):] if k > 1 else ""
            row = self.contexts[k].get(context)
            if row is None:
                continue
            total, d = row[0], self.discounts[k]
            n = self.counts[k].get(context + char, 0)
            gamma = (d[0] * row[1] + d[1] * row[2] + d[2] * row[3]) / total
            p = max(n - d[min(n, 3) - 1], 0.0) / total * (n > 0) + gamma * p
        return p

    def bits(self, text: str, history: str = "") -> float:
        """Bits per character of `text` (each character given the ones before it, and `history`)."""
        full, total = history + text, 0.0
        for i in range(len(history), len(full)):
            total -= math.log2(self.probability(full[max(0, i - self.order + 1):i], full[i]))
        return total / max(len(text), 1)
