import math

import keras
import numpy as np

from layers.bits_per_character import BitsPerCharacter
from layers.char_language_model import char_language_model


def test_matches_numpy_over_weighted_pieces():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(2, 2, 5, 7)).astype("float32")  # two pieces of a text
    targets = rng.integers(0, 7, size=(2, 2, 5))
    weights = np.ones((2, 2, 5), "float32")
    weights[1, 1, 3:] = 0.0  # padding at the end of the last piece
    log_p = logits - np.log(np.exp(logits.astype(np.float64)).sum(-1, keepdims=True))
    nll = -np.take_along_axis(log_p, targets[..., None], -1)[..., 0]
    expected = (nll * weights).sum() / weights.sum() / math.log(2)
    metric = BitsPerCharacter()
    for piece in range(2):
        metric.update_state(targets[piece], logits[piece], weights[piece])
    np.testing.assert_allclose(float(metric.result()), expected, rtol=1e-5)
    assert float(metric.count.numpy()) == weights.sum()
    metric.reset_state()
    assert float(metric.result()) == 0.0


def test_char_language_model_carries_state_between_batches():
    model = char_language_model(11, [6], batch_size=2, seed=0)
    tokens = np.array([[3, 4, 5], [6, 7, 8]], "int32")
    first = model({"tokens": tokens, "reset": np.array([True, True])})
    carried = model({"tokens": tokens, "reset": np.array([False, True])})
    np.testing.assert_allclose(carried[1], first[1], atol=1e-6)  # row 1 was reset: as at the start
    assert np.abs(np.asarray(carried[0]) - np.asarray(first[0])).max() > 1e-5  # row 0 continued
    assert isinstance(keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(BitsPerCharacter())),
                      BitsPerCharacter)
