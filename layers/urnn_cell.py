"""Unitary evolution RNN. Reference: Arjovsky, Shah & Bengio, 2016, "Unitary Evolution
Recurrent Neural Networks", https://arxiv.org/abs/1511.06464."""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

from layers import PACKAGE
from layers.recurrent_cell import RecurrentCell


def _rotate(re, im, theta):
    """diag(exp(i theta)) applied to (re, im)."""
    cos, sin = ops.cos(theta), ops.sin(theta)
    return re * cos - im * sin, re * sin + im * cos


def _unitary_dft(re, im, inverse: bool = False):
    """F h (or F^-1 h) with the unitary scaling 1/sqrt(n); F^-1 h = conj(F conj(h))."""
    scale = 1.0 / math.sqrt(re.shape[-1])
    sign = -1.0 if inverse else 1.0
    re, im = ops.fft((re, sign * im))
    return re * scale, sign * im * scale


def _reflect(re, im, v_re, v_im):
    """(I - 2 v v^H / |v|^2) applied to (re, im)."""
    dot_re = ops.sum(v_re * re + v_im * im, axis=-1, keepdims=True)  # Re(v^H h)
    dot_im = ops.sum(v_re * im - v_im * re, axis=-1, keepdims=True)  # Im(v^H h)
    scale = 2.0 / ops.sum(v_re * v_re + v_im * v_im)
    return (re - scale * (v_re * dot_re - v_im * dot_im),
            im - scale * (v_re * dot_im + v_im * dot_re))


@keras.saving.register_keras_serializable(package=PACKAGE)
class URNNCell(RecurrentCell):
    """A complex hidden state h (`units` complex numbers) evolved by a unitary matrix:

        W = D3 R2 F^-1 D2 Pi R1 F D1
        h_t = modReLU(W h_{t-1} + V x_t; b),  modReLU(z; b) = z / |z| * max(|z| + b, 0)

    D_k = diag(exp(i theta_k)) are phase rotations, R_k = I - 2 v_k v_k^H / |v_k|^2 complex
    reflections, F the unitary discrete Fourier transform, Pi a fixed permutation (drawn from
    `permutation_seed`). W is never formed: one step costs O(units log units). Complex numbers
    are carried as real pairs, so the cell runs wherever real tensors do.

    Args:
        units: number of complex hidden units.  permutation_seed: seed of Pi.
        kernel_initializer: for V, a (features, 2 * units) kernel giving [Re V x, Im V x].

    Call arguments: inputs (batch, features), states [[Re h, Im h]] (batch, 2 * units), training.
    Returns: ([Re h, Im h] (batch, 2 * units), [[Re h, Im h]]).
    Masking: handled by the wrapping RNN; the cell never sees it.

    Example:
    >>> tuple(keras.layers.RNN(URNNCell(4))(keras.ops.ones((2, 5, 3))).shape)
    (2, 8)
    """

    has_recurrent_kernel = False  # W is a product of unitary factors, not a matrix weight

    projection_blocks = 2
    projection_bias = False  # the bias of the uRNN is modReLU's

    def __init__(self, units: int, permutation_seed: int = 0, **kwargs):
        super().__init__(units, **kwargs)
        self.permutation_seed = permutation_seed
        self.state_size = [2 * units]
        self.output_size = 2 * units
        self._permutation = np.random.default_rng(permutation_seed).permutation(units).astype("int32")

    def build_recurrent(self):
        n = self.units
        self.theta = self.add_weight(shape=(3, n), name="theta",
                                     initializer=keras.initializers.RandomUniform(-math.pi, math.pi))
        self.reflection = self.add_weight(shape=(2, 2, n), name="reflection",  # [R1, R2] x [re, im]
                                          initializer=keras.initializers.RandomUniform(-1.0, 1.0))
        self.modrelu_bias = self.add_weight(shape=(n,), name="modrelu_bias", initializer="zeros")

    def apply_unitary(self, re, im):
        """W h for h = re + i im, each (batch, units)."""
        re, im = _rotate(re, im, self.theta[0])
        re, im = _unitary_dft(re, im)
        re, im = _reflect(re, im, self.reflection[0, 0], self.reflection[0, 1])
        re, im = ops.take(re, self._permutation, axis=-1), ops.take(im, self._permutation, axis=-1)
        re, im = _rotate(re, im, self.theta[1])
        re, im = _unitary_dft(re, im, inverse=True)
        re, im = _reflect(re, im, self.reflection[1, 0], self.reflection[1, 1])
        return _rotate(re, im, self.theta[2])

    def recurrent_step(self, projected, states, training=False, state_mask=None):
        n = self.units
        h_prev = states[0]
        h_in = self.masked(h_prev, state_mask)
        re, im = self.apply_unitary(h_in[:, :n], h_in[:, n:])
        re, im = re + projected[:, :n], im + projected[:, n:]
        magnitude = ops.sqrt(re * re + im * im + 1e-12)
        scale = ops.relu(magnitude + self.modrelu_bias) / magnitude
        h = ops.concatenate([re * scale, im * scale], axis=-1)  # (batch, 2 * units)
        return h, [h]

    def get_config(self):
        return {**super().get_config(), "permutation_seed": self.permutation_seed}
