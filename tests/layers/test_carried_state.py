"""Truncated BPTT: carried states continue a sequence exactly, and a model that carries them
learns what a model reset at every chunk cannot."""

import keras
import numpy as np
import pytest

from layers.carried_state import CarriedState
from layers.recurrent_stack import RecurrentStack
from pipelines.streams import stream_layout


def test_chunks_with_carried_state_equal_the_whole_sequence():
    rng = np.random.default_rng(0)
    stack = RecurrentStack("lstm", [5, 4], return_sequences=True, return_state=True)
    carried = CarriedState(stack, batch_size=2)
    x = rng.normal(size=(2, 9, 3)).astype("float32")
    mask = np.ones((2, 9), bool)
    mask[1, 7:] = False  # row 1's document ends inside the last chunk
    whole = np.asarray(stack(x, mask=mask)[0])
    starts = np.array([True, True])
    chunks = [np.asarray(carried(x[:, t:t + 3], starts if t == 0 else ~starts, inputs_mask=mask[:, t:t + 3]))
              for t in range(0, 9, 3)]
    np.testing.assert_allclose(np.concatenate(chunks, axis=1), whole, atol=1e-5)
    # a reset row starts again from zeros; the other keeps going
    again = np.asarray(carried(x[:, :3], np.array([True, False]), inputs_mask=mask[:, :3]))
    np.testing.assert_allclose(again[0], whole[0, :3], atol=1e-5)
    assert not np.allclose(again[1], whole[1, :3], atol=1e-3)


def test_padding_from_the_embedding_mask_carries_the_state_through():
    model = tbptt_model(2)
    carried = next(layer for layer in model.layers if isinstance(layer, CarriedState))
    padded = np.array([[3, 4, 5, 0, 0], [3, 4, 5, 6, 7]])
    model({"tokens": padded, "reset": np.array([True, True])})
    after_padding = carried.carried[0].numpy()
    model({"tokens": padded[:, :3], "reset": np.array([True, True])})
    np.testing.assert_allclose(after_padding[0], carried.carried[0].numpy()[0], atol=1e-6)  # pads skipped
    assert not np.allclose(after_padding[1], carried.carried[0].numpy()[1], atol=1e-4)


def test_refuses_bidirectional_stacks_and_wrong_batch_sizes():
    with pytest.raises(ValueError, match="unidirectional RecurrentStack"):
        CarriedState(RecurrentStack("gru", [3], bidirectional=True, return_sequences=True, return_state=True), 2)
    carried = CarriedState(RecurrentStack("gru", [3], return_sequences=True, return_state=True), batch_size=2)
    with pytest.raises(ValueError, match="built for batches of 2 rows"):
        carried(np.ones((3, 4, 1), "float32"), np.ones(3, bool))


def marker_documents(count, length, seed):
    """A marker (id 1 or 2) opens each document; then noise (ids 3-10). The target at every
    position is the marker's bit, so every chunk after the first needs the carried state."""
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 2, count)
    docs = [[1 + int(b)] + rng.integers(3, 11, length - 1).tolist() for b in bits]
    return docs, [[int(b)] * length for b in bits]


def tbptt_model(batch_size):
    tokens = keras.Input((None,), dtype="int32", name="tokens")
    reset = keras.Input((), dtype="bool", name="reset")
    x = keras.layers.Embedding(11, 8, mask_zero=True)(tokens)
    x = CarriedState(RecurrentStack("lstm", [16], return_sequences=True, return_state=True), batch_size)(x, reset)
    model = keras.Model({"tokens": tokens, "reset": reset}, keras.layers.Dense(2)(x))
    model.compile(keras.optimizers.Adam(0.01), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  weighted_metrics=["accuracy"], jit_compile=True)
    return model


def later_chunk_accuracy(model, layout, carry):
    """Accuracy on the chunks after a document's first (where only carried state can know)."""
    correct = total = 0
    for k in range(len(layout.inputs)):
        reset = layout.reset[k] if carry else np.ones_like(layout.reset[k])
        logits = np.asarray(model({"tokens": layout.inputs[k], "reset": reset}))
        later = (layout.weights[k] == 1) & ~layout.reset[k][:, None]
        correct += ((logits.argmax(-1) == layout.targets[k]) & later).sum()
        total += later.sum()
    return correct / total


def test_carried_state_learns_what_reset_chunks_cannot():
    keras.utils.set_random_seed(0)
    steps, batch = 8, 16
    docs, bits = marker_documents(320, 4 * steps, seed=1)
    train = stream_layout(docs, batch, steps, targets=bits, seed=0)
    docs, bits = marker_documents(64, 4 * steps, seed=2)
    test = stream_layout(docs, batch, steps, targets=bits)
    scores = {}
    for carry in (True, False):
        model = tbptt_model(batch)
        data = train.dataset()
        if not carry:  # the same model and data, the state reset at every chunk
            data = data.map(lambda x, y, w: ({"tokens": x["tokens"], "reset": x["reset"] | True}, y, w))
        model.fit(data, epochs=6, verbose=0)
        scores[carry] = later_chunk_accuracy(model, test, carry)
    print(f"\nlater-chunk accuracy: carried state {scores[True]:.3f}, reset every chunk {scores[False]:.3f}")
    assert scores[True] > 0.95
    assert scores[False] < 0.65  # chance is 0.5: the bit is out of reach


def test_fused_gru_stack_carries_its_single_state():
    stack = RecurrentStack("gru", [4, 3], prefer_fused=True, cell_options={"reset_after": True},
                           return_sequences=True, return_state=True)
    assert stack.num_states == 2
    carried = CarriedState(stack, batch_size=2)
    x = np.random.default_rng(0).normal(size=(2, 6, 5)).astype("float32")
    whole = np.asarray(stack(x)[0])
    halves = [np.asarray(carried(x[:, :3], np.array([True, True]))), np.asarray(carried(x[:, 3:], np.array([False] * 2)))]
    np.testing.assert_allclose(np.concatenate(halves, axis=1), whole, atol=1e-5)
