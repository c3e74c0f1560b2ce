import numpy as np
import pytest
import tensorflow as tf

from pipelines.batching import bucket_boundaries, pad_and_bucket, padding_fraction
from pipelines.errors import DataError
from pipelines.lengths import length_stats


def test_percentile_length_covers_the_requested_share():
    rng = np.random.default_rng(0)
    lengths = rng.lognormal(3.0, 0.6, size=5000).astype(int) + 1
    stats = length_stats(lengths, percentile=95)
    assert np.mean(lengths <= stats.at_percentile) >= 0.95
    assert np.mean(lengths <= stats.at_percentile - 1) < 0.95
    assert stats.max == lengths.max() and stats.count == 5000
    assert "95th percentile" in stats.describe()
    assert length_stats([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], percentile=50).at_percentile == 5


def test_length_stats_rejects_bad_input():
    with pytest.raises(DataError, match="empty"):
        length_stats([])
    with pytest.raises(DataError, match="received 0"):
        length_stats([1, 2], percentile=0)


def _skewed_dataset(n=2000, seed=0):
    rng = np.random.default_rng(seed)
    lengths = np.minimum(rng.lognormal(2.5, 0.8, size=n).astype(int) + 1, 200)
    ids = tf.ragged.constant([list(range(1, length + 1)) for length in lengths], dtype=tf.int32)
    ds = tf.data.Dataset.from_tensor_slices((ids, tf.zeros(n, tf.int32))).map(lambda x, y: (x, y))
    return ds, lengths


def test_bucketing_pads_less_than_global_maximum_on_skewed_lengths():
    ds, lengths = _skewed_dataset()
    # Padding every sequence to the longest one in the data set.
    global_max = ds.padded_batch(32, padded_shapes=([int(lengths.max())], []))
    per_batch = ds.apply(pad_and_bucket(32))
    bucketed = ds.apply(pad_and_bucket(32, bucket_boundaries(lengths, num_buckets=8)))
    fractions = {name: padding_fraction(d) for name, d in
                 (("global", global_max), ("per_batch", per_batch), ("bucketed", bucketed))}
    print("padding fractions:", {k: round(v, 3) for k, v in fractions.items()})
    assert fractions["global"] > 0.7
    assert fractions["bucketed"] < 0.5 * fractions["per_batch"]
    assert fractions["bucketed"] < 0.2
    # Nothing lost: every token arrives once.
    total = sum(int((x.numpy() != 0).sum()) for x, _ in bucketed)
    assert total == int(lengths.sum())


def test_pad_and_bucket_pads_on_the_right_with_zeros():
    ds = tf.data.Dataset.from_tensor_slices(tf.ragged.constant([[3], [4, 5], [6, 7, 8]])).map(lambda x: (x, 0))
    batches = [x.numpy().tolist() for x, _ in ds.apply(pad_and_bucket(3))]
    assert batches == [[[3, 0, 0], [4, 5, 0], [6, 7, 8]]]


def test_bucket_boundaries_are_increasing_and_within_max_length():
    boundaries = bucket_boundaries(list(range(1, 101)), num_buckets=4, max_length=60)
    assert boundaries == sorted(set(boundaries)) and max(boundaries) <= 60
    assert bucket_boundaries([5] * 10, num_buckets=4) == []


def test_a_classifier_cuts_training_texts_only():
    """`max_length` bounds training batches; dev, test, serving and the exports' encoders read
    whole texts (the TFLite model's fixed input is cut by its `length`)."""
    from types import SimpleNamespace as S

    from pipelines.text_preprocessors import TextClassificationPreprocessor

    data = S(lowercase=True, vocab_size=100, min_count=1, max_length=3, length_percentile=100.0, batch_size=4,
             bucketing=True, num_buckets=2, tokenizer="words")
    p = TextClassificationPreprocessor(data)
    examples = [S(text=" ".join(["good"] * n + ["film"]), label="pos" if n % 2 else "neg", where=f"line {n}")
                for n in range(1, 9)]
    p.fit(examples)
    widths = {training: max(int(x.shape[1]) for x, _ in p.dataset(examples, training=training))
              for training in (True, False)}
    assert widths == {True: 3, False: 9}
    long = "good " * 7 + "film"
    whole = p.tf_encode(tf.constant([long, "film"])).numpy()
    assert whole.shape == (2, 8) and whole[0, -1] == p.vocab.tokens.index("film")
    np.testing.assert_array_equal(p.encode_python([long, "film"]), whole)
    np.testing.assert_array_equal(TextClassificationPreprocessor.encode_assets(p.assets(), [long, "film"]), whole)
    np.testing.assert_array_equal(TextClassificationPreprocessor.encode_assets(p.assets(), [long], 3), whole[:1, :3])
