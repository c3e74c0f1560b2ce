"""MaskedStridedConv1D against a NumPy convolution of the valid steps, and its mask."""

import keras
import numpy as np
import pytest

from layers.strided_conv import MaskedStridedConv1D


def reference(x, valid, kernel, bias, strides):
    """out[i] = relu(sum_j x[i * strides - left + j] @ kernel[j] + bias), steps outside [0, valid) zero."""
    k = kernel.shape[0]
    left = (k - 1) // 2
    steps = -(-valid // strides)
    out = np.zeros((steps, kernel.shape[2]))
    for i in range(steps):
        for j in range(k):
            t = i * strides - left + j
            if 0 <= t < valid:
                out[i] += x[t] @ kernel[j]
    return np.maximum(out + bias, 0)


@pytest.mark.parametrize("kernel_size, strides", [(5, 2), (3, 3), (4, 2), (1, 1)])
def test_valid_steps_match_numpy_and_padding_changes_nothing(kernel_size, strides):
    rng = np.random.default_rng(0)
    layer = MaskedStridedConv1D(6, kernel_size, strides)
    x = rng.normal(size=(3, 17, 4)).astype("float32")
    valid = np.array([17, 9, 1])
    mask = np.arange(17)[None, :] < valid[:, None]
    x[~mask] = 7.0  # whatever padding holds
    y = keras.ops.convert_to_numpy(layer(x, mask=mask))
    out_mask = keras.ops.convert_to_numpy(layer.compute_mask(x, keras.ops.convert_to_tensor(mask)))
    kernel, bias = (keras.ops.convert_to_numpy(w) for w in layer.conv.weights)
    for row in range(3):
        expected = reference(x[row], valid[row], kernel, bias, strides)
        np.testing.assert_allclose(y[row, :len(expected)], expected, atol=1e-5)
        assert out_mask[row].tolist() == [i < len(expected) for i in range(out_mask.shape[1])]
    longer = np.concatenate([x, np.full((3, 6, 4), 3.0, "float32")], axis=1)
    y2 = keras.ops.convert_to_numpy(layer(longer, mask=np.pad(mask, [[0, 0], [0, 6]])))
    np.testing.assert_allclose(y2[:, :y.shape[1]] * out_mask[..., None], y * out_mask[..., None], atol=1e-5)


def test_round_trips_through_keras_saving(tmp_path):
    inputs = keras.Input((None, 4))
    model = keras.Model(inputs, MaskedStridedConv1D(3, 5, 2, name="conv")(keras.layers.Masking()(inputs)))
    model.save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras")
    x = np.random.default_rng(1).normal(size=(2, 9, 4)).astype("float32")
    np.testing.assert_allclose(again(x), model(x), atol=1e-6)
