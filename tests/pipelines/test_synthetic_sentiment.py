import collections

from pipelines import synthetic_sentiment as synth


def _polarity(clause: str) -> bool:
    words = clause.split()
    positive = any(w in synth.POSITIVE for w in words)
    return positive != any(w in synth.NEGATIONS for w in words)


def test_reproducible_and_seed_dependent():
    assert synth.generate(50, seed=1) == synth.generate(50, seed=1)
    assert synth.generate(50, seed=1) != synth.generate(50, seed=2)


def test_labels_follow_negation_and_contrast():
    samples = synth.generate(2000, seed=0)
    for s in samples:
        # The deciding clause is the last one: after "but", "and", or the comma of "although X , Y".
        deciding = s.text
        for joint in (" but ", " and "):
            deciding = deciding.split(joint)[-1]
        if "although" in deciding:
            deciding = deciding.rsplit(" , ", 1)[1]
        assert synth.LABELS[_polarity(deciding)] == s.label, s
    counts = collections.Counter(s.label for s in samples)
    assert abs(counts["positive"] - counts["negative"]) < 200
    assert 0.3 < sum(s.negated for s in samples) / len(samples) < 0.5
    assert 0.3 < sum(s.contrast for s in samples) / len(samples) < 0.5
