import collections

import keras
import numpy as np
import pytest

from layers.bag_of_ngrams import BagOfNgrams


def reference_bag(ids: np.ndarray, unigrams: np.ndarray, bigrams: np.ndarray | None, buckets: int) -> np.ndarray:
    """The n-grams of each row counted in Python, padding (0) excluded, bigrams hashed in int64."""
    out = np.zeros((len(ids), unigrams.shape[1]))
    for row, sequence in enumerate(ids.tolist()):
        words = [w for w in sequence if w != 0]  # padding is at the end
        grams = collections.Counter(("u", w) for w in words)
        if bigrams is not None:
            grams.update(("b", (a % buckets * 7919 + b) % buckets) for a, b in zip(words, words[1:]))
        total = sum(count * (unigrams[key] if kind == "u" else bigrams[key]) for (kind, key), count in grams.items())
        out[row] = total / np.sqrt(max(sum(grams.values()), 1))
    return out


@pytest.mark.parametrize("order", [1, 2])
def test_matches_counted_ngrams(order):
    rng = np.random.default_rng(0)
    vocab, buckets = 50_000, 2 ** 18  # ids past 46,341: a * vocab would overflow int32, the hash must not
    bag = BagOfNgrams(vocab, outputs=3, order=order, buckets=buckets)
    bag.build((None, None))
    bag.unigrams.assign(rng.normal(size=(vocab, 3)).astype("float32"))
    bigrams = None
    if order == 2:
        bigrams = rng.normal(size=(buckets, 3)).astype("float32")
        bag.bigrams.assign(bigrams)
    ids = rng.integers(1, vocab, size=(5, 9)).astype("int32")
    ids[1, 4:] = 0
    ids[2, :] = 0  # an empty text scores zeros
    ids[3, 1:] = 0  # one word: no bigram
    ids[4, 3] = ids[4, 5] = ids[4, 1]  # a repeated word counts twice
    expected = reference_bag(ids, bag.unigrams.numpy().astype(np.float64), bigrams, buckets)
    np.testing.assert_allclose(bag(ids).numpy(), expected, atol=1e-5)
    assert not np.any(expected[2])


def test_starts_at_zero_learns_and_round_trips_through_a_keras_file(tmp_path):
    ids = keras.Input((None,), dtype="int32")
    model = keras.Model(ids, BagOfNgrams(20, outputs=2, order=2, buckets=64, name="bag")(ids))
    batch = np.array([[3, 4, 0], [5, 6, 7]], "int32")
    np.testing.assert_array_equal(model(batch).numpy(), 0.0)
    model.compile(keras.optimizers.Adam(0.1), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(batch, np.array([0, 1]), epochs=20, verbose=0)
    assert list(np.argmax(model(batch).numpy(), -1)) == [0, 1]
    model.save(tmp_path / "bag.keras")
    np.testing.assert_allclose(keras.saving.load_model(tmp_path / "bag.keras")(batch).numpy(), model(batch).numpy())


@pytest.mark.parametrize("options, message", [({"order": 3}, "order must be 1"),
                                              ({"buckets": 1000}, "buckets must be a power of two"),
                                              ({"buckets": 2 ** 20}, "buckets must be a power of two")])
def test_refuses_what_it_cannot_hash(options, message):
    with pytest.raises(ValueError, match=message):
        BagOfNgrams(10, 2, **options)

