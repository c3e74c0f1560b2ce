"""The classical baselines that README numbers are compared with: checked against known answers."""

import math

import numpy as np
import pytest

from benchmarks.kneser_ney import KneserNey


def markov_text(n, seed):
    """A first-order Markov chain over 4 characters with a known entropy rate."""
    alphabet = "abcd"
    transitions = np.array([[0.7, 0.1, 0.1, 0.1], [0.1, 0.1, 0.4, 0.4], [0.25] * 4, [0.5, 0.5, 0.0, 0.0]])
    rng = np.random.default_rng(seed)
    state, chars = 0, []
    for _ in range(n):
        state = rng.choice(4, p=transitions[state])
        chars.append(alphabet[state])
    # stationary distribution: the left eigenvector for eigenvalue 1
    values, vectors = np.linalg.eig(transitions.T)
    pi = np.real(vectors[:, np.argmax(np.real(values))])
    pi /= pi.sum()
    rate = -sum(pi[i] * p * math.log2(p) for i in range(4) for p in transitions[i] if p > 0)
    return "".join(chars), rate


def test_kneser_ney_is_a_distribution_and_reaches_the_entropy_rate():
    train, rate = markov_text(60000, seed=0)
    test, _ = markov_text(20000, seed=1)
    model = KneserNey(train, order=3)
    for history in ("", "a", "ab", "dd", "zz"):
        assert sum(model.probability(history, c) for c in "abcd?") == pytest.approx(1.0, abs=1e-9)
    bits = model.bits(test)
    print(f"\nKneser-Ney 3-gram: {bits:.4f} bits per character; the chain's entropy rate {rate:.4f}")
    assert abs(bits - rate) < 0.03  # the test sample's own entropy varies by about 0.01
    assert KneserNey(train, order=1).bits(test) > rate + 0.2  # no context: far from it
