"""A recurrent loop whose backward pass computes the recurrent kernel's gradient once per
sequence, as cuDNN and oneDNN do, instead of once per step.

Autodiff of a time loop accumulates dU += h_{t-1}^T dz_t at every step: T small matmuls of
(units, batch) x (batch, gates) and a running sum. Here the backward loop only does what
depends on the step (the elementwise part of the cell and dh_{t-1} = dz_t U^T); it stores
dz_t, and dU = H^T dZ is one (units, time * batch) x (time * batch, gates) matmul after it. The
input kernel's gradient is already one matmul: `Recurrent` projects all steps at once.

It serves "template" cells (`RecurrentCell.fits_template`): a step that is

    recurrent = (h_{t-1} * state_mask) U          (`recurrent_matmul`, h = states[0])
    output, states = after_recurrent(projected_t, recurrent, states)

with any elementwise or small-weight work in `after_recurrent` (peepholes, layer norm, the GRU's
recurrent bias); the gradients of those weights are summed over the steps. Masking follows
`keras.layers.RNN` (a masked step keeps the states and repeats the previous output, or writes
zeros with `zero_output_for_mask`), and `go_backwards` runs the steps last position first, so
the results equal the plain loop's to rounding.
"""

from __future__ import annotations

import tensorflow as tf


def _where(mask, new, old):
    """`new` where mask (batch,) is true, `old` elsewhere; None mask: `new`."""
    return new if mask is None else tf.where(mask[:, None], new, old)


def _zeros_if_none(gradient, like):
    return tf.zeros_like(like) if gradient is None else gradient


def reversed_in_time(projected, mask=None):
    """`go_backwards`: (time, batch, ...) and the (time, batch) mask or None, last step first."""
    return tf.reverse(projected, [0]), None if mask is None else tf.reverse(mask, [0])


def batched_gradient_rnn(cell, projected, initial_state, mask=None, state_mask=None, go_backwards=False,
                         zero_output_for_mask=False, training=False):
    """Runs `cell` (a template cell) over `projected` (time, batch, projection_size), the
    sequence's input projection, from `initial_state` (list of (batch, size)). mask: (time,
    batch) bool or None; state_mask: recurrent dropout of h_{t-1}, (batch, units) or None.

    Returns (last_output, outputs (time, batch, output_size), final states) as
    Keras's backend `rnn(..., time_major=True)` does; outputs are in processing order
    (reversed with go_backwards, as Keras's).
    """
    if go_backwards:
        projected, mask = reversed_in_time(projected, mask)
    kernel = tf.convert_to_tensor(cell.recurrent_kernel)  # a DropConnect-ed tensor while one is substituted
    if state_mask is None:
        state_mask = tf.ones_like(initial_state[0])
    has_mask = mask is not None
    additive = getattr(cell, "additive_recurrent", False)

    def after(projected_t, recurrent, states):
        output, new_states = cell.after_recurrent(projected_t, recurrent, list(states), training=training)
        return output, list(new_states)

    @tf.custom_gradient
    def loop(projected, kernel, state_mask, *initial):
        steps = tf.shape(projected)[0]
        zero_output = tf.zeros([tf.shape(projected)[1], cell.output_size], projected.dtype)

        def forward(t, prev_output, states, outputs_ta, recurrent_ta, *states_tas):
            recurrent = tf.matmul(states[0] * state_mask, kernel)
            output, new_states = after(projected[t], recurrent, states)
            mask_t = mask[t] if has_mask else None
            output = _where(mask_t, output, zero_output if zero_output_for_mask else prev_output)
            new_states = [_where(mask_t, n, s) for n, s in zip(new_states, states)]
            states_tas = [ta.write(t, s) for ta, s in zip(states_tas, states)]  # the states before step t
            return t + 1, output, new_states, outputs_ta.write(t, output), recurrent_ta.write(t, recurrent), *states_tas

        def array(dtype=projected.dtype):
            return tf.TensorArray(dtype, size=steps)

        _, _, final, outputs_ta, recurrent_ta, *states_tas = tf.while_loop(
            lambda t, *_: t < steps, forward,
            (tf.constant(0), zero_output, list(initial), array(), array(), *[array() for _ in initial]))
        outputs, recurrents = outputs_ta.stack(), recurrent_ta.stack()
        history = [ta.stack() for ta in states_tas]  # history[0][t] * state_mask: what step t multiplied by U

        def grad(d_last, d_outputs, *d_final, variables=None):
            d_last, d_outputs = _zeros_if_none(d_last, outputs[-1]), _zeros_if_none(d_outputs, outputs)
            d_final = [_zeros_if_none(d, s) for d, s in zip(d_final, final)]
            d_outputs = tf.tensor_scatter_nd_add(d_outputs, [[steps - 1]], d_last[None])

            def backward(t, d_prev_output, d_states, d_variables, d_projected_ta, d_recurrent_ta):
                t_back = steps - 1 - t
                states = [h[t_back] for h in history]
                d_output = d_outputs[t_back] + d_prev_output
                if has_mask:  # a masked step passed its states and (unless zeroed) its output on unchanged
                    mask_t, zeros = mask[t_back][:, None], tf.zeros_like(d_output)
                    d_new_output = tf.where(mask_t, d_output, zeros)
                    d_prev_output = zeros if zero_output_for_mask else d_output - d_new_output
                    d_new_states = [tf.where(mask_t, d, tf.zeros_like(d)) for d in d_states]
                    d_kept = [d - n for d, n in zip(d_states, d_new_states)]
                else:
                    d_new_output, d_prev_output, d_new_states = d_output, tf.zeros_like(d_output), d_states
                    d_kept = [tf.zeros_like(d) for d in d_states]
                projected_t, recurrent = projected[t_back], recurrents[t_back]
                with tf.GradientTape() as tape:
                    tape.watch([projected_t, recurrent, *states])
                    output, new_states = after(projected_t, recurrent, states)
                # An additive cell (projected + recurrent, then the gates) has one gradient for both.
                sources = [recurrent] if additive else [projected_t, recurrent]
                grads = tape.gradient([output, *new_states], [*sources, *states, *(variables or [])],
                                      output_gradients=[d_new_output, *d_new_states],
                                      unconnected_gradients=tf.UnconnectedGradients.ZERO)
                d_projected_t, d_recurrent = grads[0], grads[len(sources) - 1]
                grads = grads[len(sources):]  # the states', then the variables'
                d_states = [k + g for k, g in zip(d_kept, grads[:len(states)])]
                d_states[0] += tf.matmul(d_recurrent, kernel, transpose_b=True) * state_mask
                d_variables = [a + g for a, g in zip(d_variables, grads[len(states):])]
                return (t + 1, d_prev_output, d_states, d_variables, d_projected_ta.write(t_back, d_projected_t),
                        d_recurrent_ta if additive else d_recurrent_ta.write(t_back, d_recurrent))

            _, _, d_initial, d_variables, d_projected_ta, d_recurrent_ta = tf.while_loop(
                lambda t, *_: t < steps, backward,
                (tf.constant(0), tf.zeros_like(d_last), list(d_final), [tf.zeros_like(v) for v in variables or []],
                 array(), array()))
            d_projected = d_projected_ta.stack()
            d_recurrent = d_projected if additive else d_recurrent_ta.stack()
            # The whole point: dU for every step at once, (units, time * batch) x (time * batch, gates).
            h_in = history[0] * state_mask
            units, gates = tf.shape(h_in)[-1], tf.shape(d_recurrent)[-1]
            d_kernel = tf.matmul(tf.reshape(h_in, [-1, units]), tf.reshape(d_recurrent, [-1, gates]), transpose_a=True)
            # state_mask is a dropout mask (no gradient); d_h_in's share of it is not needed.
            d_inputs = (d_projected, d_kernel, None, *d_initial)
            return d_inputs if variables is None else (d_inputs, d_variables)

        return (outputs[-1], outputs, *final), grad

    last_output, outputs, *states = loop(projected, kernel, state_mask, *initial_state)
    return last_output, outputs, states
