"""Text generation from a trained character model: the in-graph sampler (the SavedModel's
serving_default), the step model that ONNX and TFLite get, and `generate_numpy`, which drives
such a step model from Python with the same draws (`layers/decoding.py`)."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from apps.config import ConfigError
from layers.decoding import NEG_INF, counter_uniform_numpy, inverse_cdf_numpy, sample, sampling_probabilities_numpy
from layers.streaming import cell_step_function
from pipelines.char_preprocessor import CharPreprocessor


class Generator(tf.Module):
    """Prompts in, generated text out (`generate`, the SavedModel's serving_default), and the
    step model (`step`: one character id per row and the states in; logits and new states out)
    that ONNX and TFLite get, and that `generate_numpy` drives like `generate` does."""

    def __init__(self, model: keras.Model, preprocessor: CharPreprocessor):
        super().__init__()
        self.model, self.preprocessor = model, preprocessor
        self.cell_step, self.state_sizes = cell_step_function(model.get_layer("embedding"),
                                                              model.get_layer("carried_state").stack)
        if self.cell_step is None:
            raise ConfigError(f"this model cannot generate one character at a time: {self.state_sizes}")
        self.head = model.get_layer("logits")
        self.tables = preprocessor.tables()  # tracked: the SavedModel saves them
        self.chars = tf.constant(preprocessor.chars)
        self.empty_prompt_id = empty_prompt_id(preprocessor.assets())

    def logits_step(self, char_ids, states):
        """(logits (batch, vocab) with padding never drawn, new states)."""
        outputs, states = self.cell_step(char_ids, states)
        logits = self.head(outputs)
        return tf.concat([tf.fill([tf.shape(logits)[0], 1], NEG_INF), logits[:, 1:]], axis=1), states

    def zero_states(self, batch):
        return [tf.zeros([batch, size]) for size in self.state_sizes.values()]

    @tf.function
    def step(self, char_ids, *states):
        logits, new = self.logits_step(char_ids, list(states))
        return {"logits": logits, **{f"next_{name}": state for name, state in zip(self.state_sizes, new)}}

    def prime(self, prompts):
        """States after every character of each prompt but its last, and that last character:
        an empty prompt is a newline (or train's most frequent character)."""
        if self.preprocessor.data.lowercase:
            prompts = tf.strings.lower(prompts, encoding="utf-8")
        ids = tf.ragged.map_flat_values(lambda chars: tf.cast(self.tables["chars"].lookup(chars), tf.int32),
                                        tf.strings.unicode_split(prompts, "UTF-8"))
        lengths = tf.cast(ids.row_lengths(), tf.int32)
        ids = ids.to_tensor(0)
        ids = tf.where(lengths[:, None] > 0, ids, self.empty_prompt_id)
        ids = tf.pad(ids, [[0, 0], [0, 1]])  # at least one column
        lengths = tf.maximum(lengths, 1)
        batch = tf.shape(ids)[0]

        def body(t, states):
            _, new = self.cell_step(ids[:, t], states)
            inside = (t < lengths - 1)[:, None]
            return t + 1, [tf.where(inside, n, s) for n, s in zip(new, states)]

        _, states = tf.while_loop(lambda t, s: t < tf.reduce_max(lengths) - 1, body,
                                  (tf.constant(0), self.zero_states(batch)))
        return states, tf.gather(ids, lengths - 1, batch_dims=1)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="prompts"),
                                  tf.TensorSpec([], tf.int32, name="length"),
                                  tf.TensorSpec([], tf.float32, name="temperature"),
                                  tf.TensorSpec([], tf.int32, name="top_k"),
                                  tf.TensorSpec([], tf.float32, name="bias"),
                                  tf.TensorSpec([], tf.int32, name="seed")])
    def generate(self, prompts, length, temperature, top_k, bias, seed):
        states, last = self.prime(prompts)
        tokens, _, _ = sample(self.logits_step, states, tf.shape(prompts)[0], last, -1, length,
                              temperature=temperature, top_k=top_k, seed=seed, bias=bias, jit_compile=True)
        return {"generated": tf.strings.reduce_join(tf.gather(self.chars, tokens), axis=-1)}


def empty_prompt_id(assets: dict) -> int:
    """What an empty prompt starts from: a newline if train has one, else its most frequent character."""
    chars = assets["characters"]
    return chars.index("\n") + 2 if "\n" in chars else 2


def generate_numpy(step, assets: dict, prompts: list[str], length: int, temperature: float, top_k: int,
                   bias: float, seed: int) -> list[str]:
    """`Generator.generate` without TensorFlow: `step(char_ids=..., **states) -> {"logits",
    "next_" + each state}` (an ONNX or TFLite step model) driven a prompt at a time, with the
    same draws."""
    names = list(assets["states"])
    out = []
    for row, prompt in enumerate(prompts):
        ids = list(CharPreprocessor.encode_assets(assets, prompt)) or [empty_prompt_id(assets)]
        states = {name: np.zeros((1, size), np.float32) for name, size in assets["states"].items()}
        for char_id in ids[:-1]:
            result = step(char_ids=np.array([char_id], np.int32), **states)
            states = {k: result[f"next_{k}"] for k in names}
        previous, chars = ids[-1], []
        for t in range(length):
            result = step(char_ids=np.array([previous], np.int32), **states)
            states = {k: result[f"next_{k}"] for k in names}
            logits = result["logits"].astype(np.float32)
            if temperature <= 0:
                previous = int(logits.argmax(-1)[0])
            else:
                probabilities = sampling_probabilities_numpy(logits, temperature, top_k, bias)
                previous = int(inverse_cdf_numpy(probabilities, counter_uniform_numpy(seed, t, [row]))[0])
            chars.append(assets["characters"][previous - 2] if previous >= 2 else assets["unknown_prints_as"])
        out.append("".join(chars))
    return out
