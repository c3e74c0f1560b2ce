"""Decoders on toy step functions with known probabilities."""

import numpy as np
import pytest
import tensorflow as tf

from layers.decoding import (beam_search, counter_uniform, counter_uniform_numpy, greedy_search, inverse_cdf,
                             inverse_cdf_numpy, sample, sampling_probabilities, sampling_probabilities_numpy)

PAD, EOS, BOS, A, B, C = 0, 1, 2, 3, 4, 5
NAMES = {EOS: "<eos>", A: "A", B: "B", C: "C"}

# Next-token probabilities after each prefix (the course example): greedy follows A, B, C,
# <eos> with probability 0.5 * 0.4 * 0.4 * 0.6 = 0.048, while A, C, B, <eos> has
# 0.5 * 0.3 * 0.6 * 0.6 = 0.054.
TABLE = {
    (): {A: 0.5, B: 0.3, C: 0.1, EOS: 0.1},
    (A,): {B: 0.4, C: 0.3, A: 0.2, EOS: 0.1},
    (B,): {A: 0.3, B: 0.3, C: 0.3, EOS: 0.1},
    (A, B): {C: 0.4, A: 0.2, B: 0.2, EOS: 0.2},
    (A, C): {B: 0.6, A: 0.2, C: 0.1, EOS: 0.1},
    (A, B, C): {EOS: 0.6, A: 0.2, B: 0.1, C: 0.1},
    (A, C, B): {EOS: 0.6, A: 0.2, B: 0.1, C: 0.1},
}
DEFAULT = {EOS: 0.7, A: 0.1, B: 0.1, C: 0.1}
VOCAB = 6


def toy_step_function():
    """A trie over prefixes: the state is the node id; tables give log probabilities."""
    nodes = {(): 0}
    for prefix in TABLE:
        for i in range(len(prefix) + 1):
            nodes.setdefault(prefix[:i], len(nodes))
    fallback = len(nodes)
    log_probs = np.full((fallback + 1, VOCAB), -1e9, np.float32)
    children = np.full((fallback + 1, VOCAB), fallback, np.int32)
    for prefix, node in list(nodes.items()) + [(None, fallback)]:
        for token, p in (TABLE.get(prefix, DEFAULT) if prefix is not None else DEFAULT).items():
            log_probs[node, token] = np.log(p)
            if prefix is not None and prefix + (token,) in nodes:
                children[node, token] = nodes[prefix + (token,)]
    log_probs, children = tf.constant(log_probs), tf.constant(children)

    def step(token_ids, states):
        node, started = states
        node = tf.where(started, tf.gather_nd(children, tf.stack([node, token_ids], -1)), node)
        return tf.gather(log_probs, node), (node, tf.ones_like(started))

    return step


def initial(batch):
    return (tf.zeros([batch], tf.int32), tf.zeros([batch], tf.bool))


def spell(tokens):
    return " ".join(NAMES[t] for t in tokens if t != PAD)


def test_greedy_takes_the_locally_best_path():
    tokens, lengths, scores = greedy_search(toy_step_function(), initial(2), 2, BOS, EOS, max_length=10)
    assert [spell(row) for row in tokens.numpy()] == ["A B C <eos>"] * 2
    assert lengths.numpy().tolist() == [4, 4]
    np.testing.assert_allclose(np.exp(scores.numpy()), 0.048, rtol=1e-5)


def test_beam_of_two_finds_the_better_sequence():
    tokens, lengths, log_probs, _ = beam_search(toy_step_function(), initial(3), 3, BOS, EOS, max_length=10,
                                                beam_width=2, n_best=2)
    assert [spell(t) for t in tokens.numpy()[0]] == ["A C B <eos>", "A B C <eos>"]
    np.testing.assert_allclose(np.exp(log_probs.numpy()[0]), [0.054, 0.048], rtol=1e-5)
    assert lengths.numpy()[0].tolist() == [4, 4]


def test_beam_width_one_equals_greedy():
    greedy, _, greedy_scores = greedy_search(toy_step_function(), initial(1), 1, BOS, EOS, 10)
    beam, _, beam_scores, _ = beam_search(toy_step_function(), initial(1), 1, BOS, EOS, 10, beam_width=1)
    assert spell(beam.numpy()[0, 0]) == spell(greedy.numpy()[0])
    np.testing.assert_allclose(beam_scores.numpy()[0, 0], greedy_scores.numpy()[0], rtol=1e-6)


def test_length_penalty_prefers_longer_hypotheses():
    # Stopping at once has probability 0.1, more than any longer sequence: the raw score picks
    # it; the GNMT length penalty (alpha=2: log 0.054 / 2.25 > log 0.1 / 1) picks A C B <eos>.
    tokens, lengths, log_probs, _ = beam_search(toy_step_function(), initial(1), 1, BOS, EOS, 10, beam_width=4)
    assert spell(tokens.numpy()[0, 0]) == "<eos>" and lengths.numpy()[0, 0] == 1
    np.testing.assert_allclose(np.exp(log_probs.numpy()[0, 0]), 0.1, rtol=1e-5)
    tokens, _, _, ranking = beam_search(toy_step_function(), initial(1), 1, BOS, EOS, 10, beam_width=4, alpha=2.0)
    assert spell(tokens.numpy()[0, 0]) == "A C B <eos>"
    np.testing.assert_allclose(ranking.numpy()[0, 0], np.log(0.054) / 2.25, rtol=1e-5)


def test_sampling_at_low_temperature_is_greedy():
    tokens, _, _ = sample(toy_step_function(), initial(4), 4, BOS, EOS, 10, temperature=1e-3, seed=3)
    assert [spell(row) for row in tokens.numpy()] == ["A B C <eos>"] * 4
    tokens, _, _ = sample(toy_step_function(), initial(2), 2, BOS, EOS, 10, temperature=0)
    assert [spell(row) for row in tokens.numpy()] == ["A B C <eos>"] * 2


def test_sampled_frequencies_match_the_softmax():
    n = 4000
    tokens, _, _ = sample(toy_step_function(), initial(n), n, BOS, EOS, 1, temperature=1.0, seed=7)
    first = tokens.numpy()[:, 0]
    expected = np.array([TABLE[()][t] for t in (A, B, C, EOS)]) * n
    observed = np.array([(first == t).sum() for t in (A, B, C, EOS)])
    chi_square = float(((observed - expected) ** 2 / expected).sum())
    print(f"\nfirst-token counts {observed.tolist()} vs expected {expected.tolist()}: chi-square {chi_square:.2f}")
    assert chi_square < 16.27  # 3 degrees of freedom, p = 0.001
    # top-k = 1 leaves only the best token
    tokens, _, _ = sample(toy_step_function(), initial(50), 50, BOS, EOS, 1, top_k=1, seed=1)
    assert (tokens.numpy()[:, 0] == A).all()


def test_decoders_run_inside_tf_function():
    step = toy_step_function()

    @tf.function
    def decode():
        return beam_search(step, initial(2), 2, BOS, EOS, 10, beam_width=2)[0], \
            greedy_search(step, initial(2), 2, BOS, EOS, 10)[0]

    beam, greedy = decode()
    assert spell(beam.numpy()[1, 0]) == "A C B <eos>" and spell(greedy.numpy()[1]) == "A B C <eos>"


def test_bad_arguments():
    with pytest.raises(ValueError, match="n_best <= beam_width"):
        beam_search(toy_step_function(), initial(1), 1, BOS, EOS, 10, beam_width=2, n_best=3)
    with pytest.raises(ValueError, match="temperature must be non-negative"):
        sample(toy_step_function(), initial(1), 1, BOS, EOS, 10, temperature=-1.0)


def test_coverage_penalty_uses_the_attention_of_each_hypothesis():
    base = toy_step_function()

    def step(token_ids, states):
        logits, states = base(token_ids, states)
        return logits, states, tf.one_hot(token_ids % 2, 2)  # attends to source position (input token) mod 2

    # "<eos>" alone attended only position 0 (coverage [1, 0]): log(min(0, 1)) is a huge penalty.
    # "A A <eos>" (0.5 * 0.2 * 0.7 = 0.07) covers both positions (inputs BOS, A, A -> 0, 1, 1): none.
    tokens, _, log_probs, ranking = beam_search(step, initial(1), 1, BOS, EOS, 10, beam_width=4, beta=1.0)
    assert spell(tokens.numpy()[0, 0]) == "A A <eos>"
    np.testing.assert_allclose(np.exp(log_probs.numpy()[0, 0]), 0.07, rtol=1e-5)
    np.testing.assert_allclose(ranking.numpy()[0, 0], log_probs.numpy()[0, 0], atol=1e-5)
    tokens, *_ = beam_search(step, initial(1), 1, BOS, EOS, 10, beam_width=4, beta=0.0)
    assert spell(tokens.numpy()[0, 0]) == "<eos>"


def test_counter_draws_are_uniform_and_the_same_in_numpy():
    rows = np.arange(20000)
    drawn = counter_uniform(tf.constant(7), tf.constant(3), tf.constant(rows)).numpy()
    np.testing.assert_array_equal(drawn, counter_uniform_numpy(7, 3, rows))
    counts = np.histogram(drawn, bins=10, range=(0, 1))[0]
    chi_square = float(((counts - 2000) ** 2 / 2000).sum())
    assert 0 <= drawn.min() and drawn.max() < 1 and chi_square < 27.88  # 9 degrees of freedom, p = 0.001
    assert not np.array_equal(drawn, counter_uniform_numpy(7, 4, rows))  # another step, other draws
    logits = np.random.default_rng(0).normal(size=(50, 9)).astype(np.float32) * 3
    for temperature, top_k, bias in ((1.0, 0, 0.0), (0.7, 3, 0.5)):
        p_tf = sampling_probabilities(tf.constant(logits), temperature, tf.constant(top_k), bias).numpy()
        p_np = sampling_probabilities_numpy(logits, temperature, top_k, bias)
        np.testing.assert_allclose(p_tf, p_np, atol=1e-6)
        assert ((p_np > 0).sum(-1) == (top_k or 9)).all()
        u = counter_uniform_numpy(1, 0, np.arange(50))
        np.testing.assert_array_equal(inverse_cdf(tf.constant(p_np), tf.constant(u)).numpy(), inverse_cdf_numpy(p_np, u))


def test_bias_sharpens_like_a_lower_temperature_and_tensor_settings_work():
    n = 64
    plain = sample(toy_step_function(), initial(n), n, BOS, EOS, 10, seed=5)[0].numpy()
    assert (sample(toy_step_function(), initial(n), n, BOS, EOS, 10, seed=5, bias=0.0)[0].numpy() == plain).all()
    biased = sample(toy_step_function(), initial(n), n, BOS, EOS, 10, seed=5, bias=1.0)[0].numpy()
    cooled = sample(toy_step_function(), initial(n), n, BOS, EOS, 10, seed=5, temperature=0.5)[0].numpy()
    np.testing.assert_array_equal(biased, cooled)
    assert not np.array_equal(biased, plain)
    # settings as tensors (an exported signature's inputs): 0 is greedy
    greedy = sample(toy_step_function(), initial(2), 2, BOS, EOS, 10, temperature=tf.constant(0.0),
                    top_k=tf.constant(0), seed=tf.constant(1), bias=tf.constant(0.0))[0]
    assert [spell(row) for row in greedy.numpy()] == ["A B C <eos>"] * 2


def test_sampling_compiled_with_xla_draws_the_same_tokens():
    """jit_compile=True makes each step one XLA computation (top-k by a sort, for a k that is a
    tensor); the draws, the top-k cut and the scores stay those of the plain loop."""
    n, settings = 64, dict(temperature=tf.constant(0.8), top_k=tf.constant(2), seed=tf.constant(9),
                           bias=tf.constant(0.3))

    @tf.function
    def run(jit_compile):
        return sample(toy_step_function(), initial(n), n, BOS, EOS, 10, jit_compile=jit_compile, **settings)

    (plain, plain_lengths, plain_scores), (compiled, lengths, scores) = run(False), run(True)
    np.testing.assert_array_equal(compiled.numpy(), plain.numpy())
    np.testing.assert_array_equal(lengths.numpy(), plain_lengths.numpy())
    np.testing.assert_allclose(scores.numpy(), plain_scores.numpy(), atol=1e-5)
    assert len({spell(row) for row in compiled.numpy()}) > 1  # drawn, not all greedy
    assert not np.isin(compiled.numpy()[:, 0], [C, EOS]).any()  # top-2 of the first step: A or B
