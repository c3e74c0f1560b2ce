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

import tensorflow as tf

NEG_INF = -1e9


def _call(step_fn, token_ids, states):
    out = step_fn(token_ids, states)
    return (out[0], out[1], out[2]) if len(out) == 3 else (out[0], out[1], None)


def _loop(step_fn, initial_states, batch_size, start_id, end_id, max_length, choose):
    """The shared left-to-right loop of greedy search and sampling."""

    def body(t, prev, states, finished, scores, lengths, tokens):
        logits, states, _ = _call(step_fn, prev, states)
        log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32), axis=-1)
        chosen = tf.cast(choose(logits, t), tf.int32)
        chosen = tf.where(finished, tf.zeros_like(chosen), chosen)
        picked = tf.gather(log_probs, chosen, batch_dims=1)
        scores += tf.where(finished, 0.0, picked)
        lengths += tf.cast(~finished, tf.int32)
        tokens = tokens.write(t, chosen)
        return t + 1, chosen, states, finished | tf.equal(chosen, end_id), scores, lengths, tokens

    def cond(t, prev, states, finished, *rest):
        return tf.logical_not(tf.reduce_all(finished))

    start = tf.fill([batch_size], tf.constant(start_id, tf.int32))
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


def sample(step_fn: Callable, initial_states, batch_size, start_id: int, end_id: int, max_length: int,
           temperature: float = 1.0, top_k: int = 0, seed: int | None = None):
    """Draws each token from softmax(logits / temperature), optionally among the `top_k` most
    probable. `temperature=0` is greedy search. Returns as `greedy_search`."""
    if temperature < 0:
        raise ValueError(f"temperature must be non-negative, received temperature={temperature}")
    if temperature == 0:
        return greedy_search(step_fn, initial_states, batch_size, start_id, end_id, max_length)
    seed_pair = tf.constant([seed or 0, 1], tf.int32)

    def choose(logits, t):
        logits = tf.cast(logits, tf.float32) / temperature
        if top_k:
            kth = tf.math.top_k(logits, k=top_k).values[:, -1:]
            logits = tf.where(logits < kth, NEG_INF, logits)
        step_seed = seed_pair + tf.stack([0, t]) if seed is not None else None
        if step_seed is None:
            return tf.random.categorical(logits, 1)[:, 0]
        return tf.random.stateless_categorical(logits, 1, seed=step_seed)[:, 0]

    return _loop(step_fn, initial_states, batch_size, start_id, end_id, max_length, choose)


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
