import keras
import numpy as np
import pytest

from layers.masked_pooling import MaskedPooling


def reference_pool(x: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray:
    out = np.zeros((x.shape[0], x.shape[2]))
    for b in range(x.shape[0]):
        steps = x[b][mask[b]]
        if len(steps) == 0:
            continue
        out[b] = {"last": steps[-1], "max": steps.max(0), "mean": steps.mean(0)}[mode]
    return out


@pytest.mark.parametrize("mode", ["last", "max", "mean"])
def test_matches_numpy_reference(mode):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(4, 6, 3)).astype("float32") - 5.0  # all negative: max must skip padding zeros
    mask = np.array([[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1], [0, 0, 0, 0, 0, 0], [1, 0, 1, 1, 0, 0]], bool)
    out = MaskedPooling(mode)(x, mask=mask)
    np.testing.assert_allclose(out, reference_pool(x.astype(np.float64), mask, mode), atol=1e-6)
    np.testing.assert_allclose(MaskedPooling(mode)(x), reference_pool(x, np.ones_like(mask), mode), atol=1e-6)


def test_rejects_unknown_mode():
    with pytest.raises(ValueError, match="received mode='median'"):
        MaskedPooling("median")


@pytest.mark.parametrize("mode", ["last", "max", "mean"])
def test_config_round_trip_and_keras_file(tmp_path, mode):
    layer = MaskedPooling(mode, name="pool")
    assert MaskedPooling.from_config(layer.get_config()).mode == mode
    ids = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(10, 4, mask_zero=True)(ids)
    model = keras.Model(ids, layer(x))
    batch = np.array([[1, 2, 3, 0], [4, 0, 0, 0]])
    model.save(tmp_path / "m.keras")
    reloaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_allclose(reloaded(batch), model(batch), atol=1e-7)
    # The mask arrives from the embedding: padding never changes the result.
    np.testing.assert_allclose(model(batch)[1], model(np.array([[4]]))[0], atol=1e-6)
