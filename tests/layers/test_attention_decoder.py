"""AttentionDecoder against a NumPy loop written from its docstring equations."""

import numpy as np
import pytest

from layers.attention_decoder import AttentionDecoder
from tests.layers.reference_cells import lstm
from tests.layers.test_attention import reference_bahdanau, reference_luong

RNG = np.random.default_rng(7)
BATCH, SOURCE, TARGET, MEMORY_DIM, UNITS, VOCAB, EMBED = 3, 5, 4, 6, 4, 9, 3


def reference_decoder(decoder, attention, input_feeding, target_ids, memory, mask, first_h):
    """Teacher-forced steps: attention with h_{i-1}, the cell on [embed(y_{i-1}); c_i], logits of [h_i; c_i]."""
    w = lambda v: np.asarray(v, np.float64)  # noqa: E731
    cell = {"kernel": w(decoder.cell.kernel), "recurrent_kernel": w(decoder.cell.recurrent_kernel),
            "bias": w(decoder.cell.bias)}
    embeddings, out_kernel, out_bias = (w(decoder.embedding.embeddings), w(decoder.output_layer.kernel),
                                        w(decoder.output_layer.bias))
    states = [first_h, np.zeros_like(first_h)]
    all_logits, all_weights = [], []
    for t in range(target_ids.shape[1]):
        if attention == "bahdanau":
            context, weights = reference_bahdanau(states[0], memory, w(decoder.attention.query_kernel),
                                                  w(decoder.attention.key_kernel), w(decoder.attention.score_vector),
                                                  mask)
        elif attention == "luong":
            context, weights = reference_luong(states[0], memory, mask, w(decoder.attention.kernel))
        else:
            weights = np.zeros(mask.shape)
            context = (memory * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
        x = embeddings[target_ids[:, t]]
        if input_feeding:
            x = np.concatenate([x, context], -1)
        h, states = lstm(x, states, cell)
        all_logits.append(np.concatenate([h, context], -1) @ out_kernel + out_bias)
        all_weights.append(weights)
    return np.stack(all_logits, 1), np.stack(all_weights, 1)


@pytest.mark.parametrize("attention, input_feeding", [("bahdanau", True), ("bahdanau", False), ("luong", True),
                                                      ("none", True)])
def test_teacher_forced_steps_match_numpy(attention, input_feeding):
    decoder = AttentionDecoder(VOCAB, EMBED, UNITS, cell="lstm", attention=attention, attention_units=5,
                               input_feeding=input_feeding)
    target_ids = RNG.integers(1, VOCAB, size=(BATCH, TARGET)).astype("int32")
    memory = RNG.normal(size=(BATCH, SOURCE, MEMORY_DIM)).astype("float32")
    mask = np.arange(SOURCE)[None, :] < np.array([[5], [2], [3]])
    first_h = RNG.normal(scale=0.5, size=(BATCH, UNITS)).astype("float32")
    decoder(target_ids, memory, memory_mask=mask, initial_state=first_h)
    decoder.set_weights([RNG.normal(scale=0.6, size=v.shape).astype("float32") for v in decoder.get_weights()])
    logits, weights = decoder(target_ids, memory, memory_mask=mask, initial_state=first_h, return_attention=True)
    expected_logits, expected_weights = reference_decoder(decoder, attention, input_feeding, target_ids,
                                                          memory.astype(np.float64), mask, first_h.astype(np.float64))
    np.testing.assert_allclose(logits, expected_logits, atol=1e-4)
    np.testing.assert_allclose(weights, expected_weights, atol=1e-5)
    if attention != "none":
        assert np.all(np.asarray(weights)[:, :, 2:][~mask[:, None, 2:].repeat(TARGET, 1)] < 1e-6)  # padding unseen

    # One `step` at a time (what greedy and beam search call) gives the same logits.
    keys = decoder.prepare_memory(memory, mask)
    states = decoder.initial_states(first_h)
    for t in range(TARGET):
        step_logits, states, _ = decoder.step(target_ids[:, t], states, memory, keys, mask)
        np.testing.assert_allclose(step_logits, expected_logits[:, t], atol=1e-4)

