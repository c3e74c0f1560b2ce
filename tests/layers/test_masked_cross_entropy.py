import keras
import numpy as np

from layers.masked_cross_entropy import MaskedCrossEntropy


def test_masked_label_smoothed_loss_matches_numpy():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 3, 5)).astype("float32")
    targets = np.array([[2, 4, 0], [1, 0, 0]])
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    eps = 0.1
    per_token = -(1 - eps) * np.take_along_axis(log_p, targets[..., None], -1)[..., 0] - eps * log_p.mean(-1)
    mask = targets != 0
    expected = (per_token * mask).sum(-1) / mask.sum(-1)
    np.testing.assert_allclose(MaskedCrossEntropy(eps).call(targets, logits), expected, rtol=1e-5)



def test_round_trips_through_its_config():
    loss = keras.losses.deserialize(keras.losses.serialize(MaskedCrossEntropy(0.2, pad_id=3)))
    assert isinstance(loss, MaskedCrossEntropy) and (loss.label_smoothing, loss.pad_id) == (0.2, 3)


def test_weighted_token_cross_entropy_is_kerass_weighted_mean_on_one_device():
    from layers.masked_cross_entropy import WeightedTokenCrossEntropy

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 5, 7)).astype("float32")
    targets = rng.integers(0, 7, size=(3, 5))
    weights = (rng.uniform(size=(3, 5)) > 0.3).astype("float32")
    expected = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="mean_with_sample_weight")(
        targets, logits, sample_weight=weights)
    got = WeightedTokenCrossEntropy()(targets, logits, sample_weight=weights)
    np.testing.assert_allclose(float(got), float(expected), rtol=1e-6)
    assert float(WeightedTokenCrossEntropy()(targets, logits, sample_weight=np.zeros((3, 5), "float32"))) == 0.0
