"""A linear model over the bag of word n-grams, next to a recurrent classifier.

On small review sets a linear model over word n-grams (what TF-IDF + logistic regression is)
learns a rare word's polarity from the few sentences that hold it, where an embedding and a
recurrent layer need more of them. Its scores are added to the recurrent classifier's logits
("wide and deep", Cheng et al. 2016; bigrams by the hashing trick, as fastText, Joulin et al.
2017).
"""

from __future__ import annotations

import keras
from keras import ops

from layers import PACKAGE

HASH_MULTIPLIER = 7919  # odd: with a power-of-two bucket count, (a * M + b) mod B hits every bucket


@keras.saving.register_keras_serializable(package=PACKAGE)
class BagOfNgrams(keras.layers.Layer):
    """Token ids (batch, time) -> (batch, outputs): the sum over the text's word n-grams of each
    n-gram's weights, divided by the square root of the number of n-grams (so that the scores
    of short and long texts are of one scale):

        out = (sum_t U[x_t] + sum_t B[hash(x_t, x_{t+1})]) / sqrt(n)

    Unigrams have a row each in U (vocab_size, outputs); bigrams share `buckets` rows of B,
    hash(a, b) = ((a mod buckets) * 7919 + b) mod buckets in int32 (no overflow below 2**18
    buckets and a vocabulary of 70 million). Ids equal to `pad_id` are padding: no n-gram
    includes them. Weights start at zero, so a new bag adds nothing until trained.

    Args:
        vocab_size: token ids are in [0, vocab_size).
        outputs: the width of the scores (a classifier's number of classes).
        order: 1 for unigrams, 2 for unigrams and bigrams.
        buckets: the rows bigrams hash into (a power of two, at most 2**18).
        pad_id: the id of padding.

    Call arguments:
        token_ids: int (batch, time).

    Returns:
        float (batch, outputs); no mask.

    Example:
    >>> bag = BagOfNgrams(vocab_size=5, outputs=2, order=1)
    >>> bag.build((None, None))
    >>> _ = bag.unigrams.assign([[0, 0], [0, 0], [1, 0], [0, 1], [3, 3]])
    >>> bag(keras.ops.convert_to_tensor([[2, 3, 3, 0]])).numpy().round(4)
    array([[0.5774, 1.1547]], dtype=float32)
    """

    # Rows by token id: a run starting from another over another vocabulary (`train.init_from`)
    # takes them word by word; the bigram rows are hashes of ids, valid for the same vocabulary only.
    token_indexed_weights = ("unigrams",)

    def __init__(self, vocab_size: int, outputs: int, order: int = 2, buckets: int = 2 ** 18, pad_id: int = 0,
                 **kwargs):
        super().__init__(**kwargs)
        if order not in (1, 2):
            raise ValueError(f"order must be 1 (unigrams) or 2 (and bigrams), received {order!r}")
        if buckets <= 0 or buckets & (buckets - 1) or buckets > 2 ** 18:
            raise ValueError(f"buckets must be a power of two up to 2**18, received {buckets!r}")
        self.vocab_size, self.outputs, self.order = vocab_size, outputs, order
        self.buckets, self.pad_id = buckets, pad_id

    def build(self, input_shape):
        self.unigrams = self.add_weight(shape=(self.vocab_size, self.outputs), initializer="zeros", name="unigrams")
        if self.order == 2:
            self.bigrams = self.add_weight(shape=(self.buckets, self.outputs), initializer="zeros", name="bigrams")

    def call(self, token_ids):
        token_ids = ops.cast(token_ids, "int32")
        present = ops.cast(ops.not_equal(token_ids, self.pad_id), self.compute_dtype)  # (batch, time)
        scores = ops.sum(ops.take(self.unigrams, token_ids, axis=0) * present[..., None], axis=1)
        count = ops.sum(present, axis=1, keepdims=True)
        if self.order == 2:
            first, second = token_ids[:, :-1], token_ids[:, 1:]
            rows = ops.mod(ops.mod(first, self.buckets) * HASH_MULTIPLIER + second, self.buckets)
            both = present[:, :-1] * present[:, 1:]
            scores = scores + ops.sum(ops.take(self.bigrams, rows, axis=0) * both[..., None], axis=1)
            count = count + ops.sum(both, axis=1, keepdims=True)
        return scores / ops.sqrt(ops.maximum(count, 1.0))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.outputs)

    def get_config(self):
        return {**super().get_config(), "vocab_size": self.vocab_size, "outputs": self.outputs, "order": self.order,
                "buckets": self.buckets, "pad_id": self.pad_id}
