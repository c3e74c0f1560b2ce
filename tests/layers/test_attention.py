import numpy as np
import pytest

from layers.bahdanau_attention import BahdanauAttention
from layers.luong_attention import LuongAttention


def softmax_masked(e, mask):
    e = np.where(mask, e, -np.inf)
    w = np.exp(e - e.max(-1, keepdims=True))
    return w / w.sum(-1, keepdims=True)


def reference_bahdanau(q, h, w, u, v, mask):
    e = np.tanh((q @ w)[:, None, :] + h @ u) @ v  # (batch, time)
    a = softmax_masked(e, mask)
    return (a[..., None] * h).sum(1), a


def reference_luong(q, h, mask, kernel=None):
    keys = h @ kernel if kernel is not None else h
    a = softmax_masked((q[:, None, :] * keys).sum(-1), mask)
    return (a[..., None] * h).sum(1), a


LENGTHS = [1, 2, 3, 4]
RNG = np.random.default_rng(0)
Q = RNG.normal(size=(4, 3)).astype("float32")
H = RNG.normal(size=(4, 4, 5)).astype("float32")
MASK = np.arange(4)[None, :] < np.array(LENGTHS)[:, None]


def _randomize(layer):
    layer.set_weights([RNG.normal(scale=0.7, size=w.shape).astype("float32") for w in layer.get_weights()])


def test_bahdanau_matches_numpy_with_masks():
    attention = BahdanauAttention(6)
    attention(Q, H)
    _randomize(attention)
    context, weights = attention(Q, H, values_mask=MASK)
    w, u, v = (x.numpy().astype(np.float64) for x in (attention.query_kernel, attention.key_kernel,
                                                     attention.score_vector))
    expected_context, expected_weights = reference_bahdanau(Q.astype(np.float64), H.astype(np.float64), w, u, v, MASK)
    np.testing.assert_allclose(weights, expected_weights, atol=1e-6)
    np.testing.assert_allclose(context, expected_context, atol=1e-5)
    weights = np.asarray(weights)
    assert np.all(weights[~MASK] < 1e-7)  # beyond each length: ~0
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-6)
    # keys projected once give the same result
    context2, _ = attention(Q, H, keys=attention.project_keys(H), values_mask=MASK)
    np.testing.assert_allclose(context2, context, atol=1e-6)


@pytest.mark.parametrize("score", ["dot", "general"])
def test_luong_matches_numpy_with_masks(score):
    q = RNG.normal(size=(4, 5)).astype("float32")
    attention = LuongAttention(score)
    attention(q, H)
    if score == "general":
        _randomize(attention)
    context, weights = attention(q, H, values_mask=MASK)
    kernel = attention.kernel.numpy().astype(np.float64) if score == "general" else None
    expected_context, expected_weights = reference_luong(q.astype(np.float64), H.astype(np.float64), MASK, kernel)
    np.testing.assert_allclose(weights, expected_weights, atol=1e-6)
    np.testing.assert_allclose(context, expected_context, atol=1e-5)


def test_attention_config_round_trip_and_errors():
    assert BahdanauAttention.from_config(BahdanauAttention(7).get_config()).units == 7
    assert LuongAttention.from_config(LuongAttention("dot").get_config()).score == "dot"
    with pytest.raises(ValueError, match="received units=0"):
        BahdanauAttention(0)
    with pytest.raises(ValueError, match="received score='cosine'"):
        LuongAttention("cosine")
