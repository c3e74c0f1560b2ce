"""In-graph decoding: greedy search, sampling (temperature, top-k) and beam search (GNMT length
and coverage penalties), for any decoder that exposes a step function.

A step function takes the previous token ids (batch,) int32 and the decoder states (any nest
of tensors with the batch first) and returns `(logits (batch, vocab), new_states)`, or
`(logits, new_states, attention (batch, source_time))` for the coverage penalty. Every loop is a
`tf.while_loop`, so the same code runs eagerly, inside `tf.function` and in an exported graph.

Outputs are right-padded with 0 after `end_id` (which is included).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tensorflow as tf

NEG_INF = -1e9


def _call(step_fn, token_ids, states):
    out = step_fn(token_ids, states)
    return (out[0], out[1], out[2]) if len(out) == 3 else (out[0], out[1], None)


def _loop(step_fn, initial_states, batch_size, start_id, end_id, max_length, choose, jit_compile=False):
    """The shared left-to-right loop of greedy search and sampling; with `jit_compile`, each
    step (the model's and the choice) is one XLA computation instead of dozens of small ops."""

    def advance(t, prev, states, finished):
        logits, states, _ = _call(step_fn, prev, states)
        log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32), axis=-1)
        chosen = tf.cast(choose(logits, t), tf.int32)
        chosen = tf.where(finished, tf.zeros_like(chosen), chosen)
        return chosen, states, tf.gather(log_probs, chosen, batch_dims=1)

    if jit_compile:
        advance = tf.function(advance, jit_compile=True)

    def body(t, prev, states, finished, scores, lengths, tokens):
        chosen, states, picked = advance(t, prev, states, finished)
        scores += tf.where(finished, 0.0, picked)
        lengths += tf.cast(~finished, tf.int32)
        tokens = tokens.write(t, chosen)
        return t + 1, chosen, states, finished | tf.equal(chosen, end_id), scores, lengths, tokens

    def cond(t, prev, states, finished, *rest):
        return tf.logical_not(tf.reduce_all(finished))

    start = tf.broadcast_to(tf.cast(start_id, tf.int32), [batch_size])  # one id, or one per row
    # A static element shape where the batch is known lets TFLite lower the list to builtin ops.
    element_shape = tf.TensorShape([tf.get_static_value(batch_size)])
    loop_vars = (tf.constant(0), start, initial_states, tf.zeros([batch_size], tf.bool),
                 tf.zeros([batch_size]), tf.zeros([batch_size], tf.int32),
                 tf.TensorArray(tf.int32, size=max_length, element_shape=element_shape))
    steps, _, _, _, scores, lengths, tokens = tf.while_loop(cond, body, loop_vars, maximum_iterations=max_length)
    tokens = tf.transpose(tokens.stack()[:steps])  # (batch, steps); unwritten rows were zeros
    return tf.reshape(tokens, [batch_size, -1]), lengths, scores


def greedy_search(step_fn: Callable, initial_states, batch_size, start_id: int, end_id: int, max_length: int):
    """The most probable token at every step.

    Returns:
        tokens (batch, steps) int32 (0 after `end_id`), lengths (batch,) counting `end_id`,
        log probabilities (batch,) of the returned sequences.
    """
    return _loop(step_fn, initial_states, batch_size, start_id, end_id, max_length,
                 lambda logits, t: tf.argmax(logits, axis=-1))


def sample(step_fn: Callable, initial_states, batch_size, start_id, end_id: int, max_length,
           temperature=1.0, top_k=0, seed: int | None = None, bias=0.0, jit_compile: bool = False):
    """Draws each token from softmax(logits x (1 + bias) / temperature), optionally among the
    `top_k` most probable (0: all). `temperature=0` is greedy search; `bias` is Graves's (2013)
    sharpening bias (0: plain sampling; bias b draws as temperature 1 / (1 + b)). Returns as
    `greedy_search`.

    With a `seed`, the draws are `counter_uniform(seed, step, row)`, the same in NumPy
    (`counter_uniform_numpy`, `sampling_probabilities_numpy`, `inverse_cdf_numpy`): a runtime
    without TensorFlow that runs the same step function draws the same tokens. Without one,
    `tf.random`. `start_id`, `max_length`, `temperature`, `top_k`, `bias` and `seed` may be
    tensors (an exported signature's inputs). `jit_compile`: each step one XLA computation
    (for a model and draws XLA can compile; 1.3x the characters a second of a 2x512 character
    LSTM at batch 1 on 2 CPU cores, `benchmarks/charlm_generation.py`).
    """
    if isinstance(temperature, (int, float)):
        if temperature < 0:
            raise ValueError(f"temperature must be non-negative, received temperature={temperature}")
        if temperature == 0:
            return greedy_search(step_fn, initial_states, batch_size, start_id, end_id, max_length)

    def choose(logits, t):
        logits = tf.cast(logits, tf.float32)
        probabilities = sampling_probabilities(logits, temperature, top_k, bias)
        if seed is None:
            uniform = tf.random.uniform([tf.shape(logits)[0]])
        else:
            uniform = counter_uniform(seed, t, tf.range(tf.shape(logits)[0]))
        drawn = inverse_cdf(probabilities, uniform)
        if isinstance(temperature, (int, float)):
            return drawn
        return tf.where(temperature > 0, drawn, tf.argmax(logits, axis=-1, output_type=tf.int32))

    return _loop(step_fn, initial_states, batch_size, start_id, end_id, max_length, choose, jit_compile)


# --- draws that TensorFlow and NumPy make alike ----------------------------------------------

_MASK31 = (1 << 31) - 1


def counter_uniform(seed, step, rows):
    """Uniform numbers in [0, 1) (float32, one per row) from a hash of (seed, step, row): int64
    arithmetic that `counter_uniform_numpy` repeats exactly."""
    mask = tf.constant(_MASK31, tf.int64)
    x = tf.bitwise.bitwise_and(tf.cast(seed, tf.int64) * 1_000_003 + tf.cast(step, tf.int64) * 7919
                               + tf.cast(rows, tf.int64) * 104_729 + 12_345, mask)
    for _ in range(3):
        x = tf.bitwise.bitwise_and(x * 1_103_515_245 + 12_345, mask)
        x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, tf.constant(13, tf.int64)))
    return tf.cast(tf.bitwise.right_shift(x, tf.constant(7, tf.int64)), tf.float32) / float(1 << 24)


def counter_uniform_numpy(seed: int, step: int, rows) -> np.ndarray:
    x = (np.int64(seed) * 1_000_003 + np.int64(step) * 7919 + np.asarray(rows, np.int64) * 104_729 + 12_345) & _MASK31
    for _ in range(3):
        x = (x * 1_103_515_245 + 12_345) & _MASK31
        x = x ^ (x >> 13)
    return (x >> 7).astype(np.float32) / np.float32(1 << 24)


def sampling_probabilities(logits, temperature=1.0, top_k=0, bias=0.0):
    """softmax(logits x (1 + bias) / temperature) over the `top_k` largest logits (0: all)."""
    scaled = logits * (1.0 + tf.cast(bias, tf.float32)) / tf.maximum(tf.cast(temperature, tf.float32), 1e-6)
    if not (isinstance(top_k, int) and top_k == 0):
        k = tf.clip_by_value(tf.cast(top_k, tf.int32), 1, tf.shape(scaled)[-1])
        # the k-th largest by a sort: XLA compiles it for any k (top_k needs a constant k)
        kth = tf.gather(tf.sort(scaled, axis=-1, direction="DESCENDING"), [k - 1], axis=-1)
        scaled = tf.where((tf.cast(top_k, tf.int32) > 0) & (scaled < kth), NEG_INF, scaled)
    return tf.nn.softmax(scaled, axis=-1)


def sampling_probabilities_numpy(logits: np.ndarray, temperature: float = 1.0, top_k: int = 0,
                                 bias: float = 0.0) -> np.ndarray:
    scaled = logits.astype(np.float32) * np.float32(1.0 + bias) / np.float32(max(temperature, 1e-6))
    if top_k > 0:
        kth = np.sort(scaled, axis=-1)[:, -min(top_k, scaled.shape[-1])][:, None]
        scaled = np.where(scaled < kth, np.float32(NEG_INF), scaled)
    e = np.exp(scaled - scaled.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def inverse_cdf(probabilities, uniform):
    """The id whose cumulative probability first exceeds `uniform` x the total, per row."""
    cumulative = tf.cumsum(probabilities, axis=-1)
    below = tf.cast(cumulative < uniform[:, None] * cumulative[:, -1:], tf.int32)
    return tf.minimum(tf.reduce_sum(below, axis=-1), tf.shape(probabilities)[-1] - 1)


def inverse_cdf_numpy(probabilities: np.ndarray, uniform: np.ndarray) -> np.ndarray:
    cumulative = np.cumsum(probabilities, axis=-1, dtype=np.float32)
    below = (cumulative < uniform[:, None] * cumulative[:, -1:]).sum(axis=-1)
    return np.minimum(below, probabilities.shape[-1] - 1)


def length_penalty(lengths, alpha: float):
    """GNMT: ((5 + |Y|) / 6) ** alpha."""
    return tf.pow((5.0 + tf.cast(lengths, tf.float32)) / 6.0, alpha)


def beam_search(step_fn: Callable, initial_states, batch_size, start_id: int, end_id: int, max_length: int,
                beam_width: int = 4, alpha: float = 0.0, beta: float = 0.0, n_best: int = 1):
    """Keeps the `beam_width` most probable prefixes; finished hypotheses stay in the beam with
    their score. Final ranking: log P(Y) / length_penalty(|Y|, alpha) + coverage penalty
    beta * sum_j log(min(sum_i a_ij, 1)) (GNMT; needs a step function that returns attention).

    Returns:
        tokens (batch, n_best, steps), lengths (batch, n_best), log probabilities (batch, n_best),
        and the ranking scores (batch, n_best), best first.
    """
    if beam_width < 1 or not 1 <= n_best <= beam_width:
        raise ValueError(f"need 1 <= n_best <= beam_width, received beam_width={beam_width}, n_best={n_best}")
    k = beam_width
    flat = batch_size * k

    def tile(x):  # (batch, ...) -> (batch * beam, ...), each row repeated k times
        return tf.repeat(x, k, axis=0)

    states = tf.nest.map_structure(tile, initial_states)
    # Only the first copy of each beam starts alive, so step 1 does not pick k identical prefixes.
    log_probs0 = tf.tile(tf.concat([[0.0], tf.fill([k - 1], NEG_INF)], 0)[None], [batch_size, 1])
    batch_offsets = tf.range(batch_size)[:, None] * k  # (batch, 1)

    def body(t, prev, states, finished, scores, lengths, coverage, history):
        logits, states, attention = _call(step_fn, prev, states)
        log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32), axis=-1)  # (flat, vocab)
        vocab = tf.shape(log_probs)[-1]
        # A finished hypothesis can only be extended by padding, at no cost.
        pad_only = tf.one_hot(tf.zeros([flat], tf.int32), vocab, on_value=0.0, off_value=NEG_INF)
        log_probs = tf.where(finished[:, None], pad_only, log_probs)
        total = tf.reshape(scores, [flat, 1]) + log_probs  # (flat, vocab)
        total = tf.reshape(total, [batch_size, k * vocab])
        top_scores, top_index = tf.math.top_k(total, k=k)  # (batch, k)
        origin = tf.reshape(top_index // vocab + batch_offsets, [flat])  # the beam each extends
        tokens = tf.reshape(top_index % vocab, [flat])
        states = tf.nest.map_structure(lambda s: tf.gather(s, origin), states)
        was_finished = tf.gather(finished, origin)
        lengths = tf.gather(lengths, origin) + tf.cast(~was_finished, tf.int32)
        if attention is not None and beta:
            attention = tf.where(was_finished[:, None], 0.0, tf.gather(attention, origin))
            coverage = tf.gather(coverage, origin) + tf.cast(attention, tf.float32)
        history = tf.gather(history, origin)  # (flat, t)
        history = tf.concat([history, tokens[:, None]], axis=1)
        finished = was_finished | tf.equal(tokens, end_id)
        return t + 1, tokens, states, finished, top_scores, lengths, coverage, history

    def cond(t, prev, states, finished, *rest):
        return tf.logical_not(tf.reduce_all(finished))

    # The coverage accumulator needs the source length: one probe step gives the attention shape.
    probe = _call(step_fn, tf.fill([flat], tf.constant(start_id, tf.int32)), states)[2] if beta else None
    coverage0 = tf.zeros_like(tf.cast(probe, tf.float32)) if probe is not None else tf.zeros([flat, 1])
    loop_vars = (tf.constant(0), tf.fill([flat], tf.constant(start_id, tf.int32)), states,
                 tf.zeros([flat], tf.bool), log_probs0, tf.zeros([flat], tf.int32), coverage0,
                 tf.zeros([flat, 0], tf.int32))
    shapes = tf.nest.map_structure(lambda v: tf.TensorShape(v.shape), loop_vars)
    shapes = (*shapes[:7], tf.TensorShape([None, None]))
    _, _, _, _, scores, lengths, coverage, history = tf.while_loop(
        cond, body, loop_vars, shape_invariants=shapes, maximum_iterations=max_length)

    scores = tf.reshape(scores, [batch_size, k])
    lengths = tf.reshape(lengths, [batch_size, k])
    ranking = scores / length_penalty(lengths, alpha)
    if probe is not None and beta:
        penalty = tf.reduce_sum(tf.math.log(tf.minimum(coverage, 1.0) + 1e-9), axis=-1)
        ranking += beta * tf.reshape(penalty, [batch_size, k])
    best = tf.math.top_k(ranking, k=n_best).indices  # (batch, n_best)
    history = tf.reshape(history, [batch_size, k, -1])
    return (tf.gather(history, best, batch_dims=1), tf.gather(lengths, best, batch_dims=1),
            tf.gather(scores, best, batch_dims=1), tf.gather(ranking, best, batch_dims=1))
