"""NumPy (float64) steps of every cell, written from the equations in the issue and the cell
docstrings, independently of the Keras code. Each takes (x, states, weights) -> (output, states)."""

import numpy as np


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def elman(x, states, w, activation=np.tanh):
    (h,) = states
    h = activation(x @ w["kernel"] + h @ w["recurrent_kernel"] + w["bias"])
    return h, [h]


def irnn(x, states, w):
    return elman(x, states, w, activation=lambda v: np.maximum(v, 0.0))


def lstm(x, states, w, peephole=None):
    h, c = states
    n = h.shape[-1]
    z = x @ w["kernel"] + h @ w["recurrent_kernel"] + w["bias"]
    i, f, g, o = z[:, :n], z[:, n:2 * n], z[:, 2 * n:3 * n], z[:, 3 * n:]
    p_i, p_f, p_o = peephole if peephole is not None else (0.0, 0.0, 0.0)
    c_new = sigmoid(f + p_f * c) * c + sigmoid(i + p_i * c) * np.tanh(g)
    h_new = sigmoid(o + p_o * c_new) * np.tanh(c_new)
    return h_new, [h_new, c_new]


def peephole_lstm(x, states, w):
    return lstm(x, states, w, peephole=tuple(w["peephole_kernel"]))


def layer_norm(x, gamma, beta, eps=1e-5):
    mean = x.mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(((x - mean) ** 2).mean(-1, keepdims=True) + eps) * gamma + beta


def layernorm_lstm(x, states, w):
    h, c = states
    n = h.shape[-1]
    z = (layer_norm(x @ w["kernel"], w["input_gamma"], w["input_beta"])
         + layer_norm(h @ w["recurrent_kernel"], w["recurrent_gamma"], w["recurrent_beta"]) + w["bias"])
    i, f, g, o = z[:, :n], z[:, n:2 * n], z[:, 2 * n:3 * n], z[:, 3 * n:]
    c_new = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
    h_new = sigmoid(o) * np.tanh(layer_norm(c_new, w["cell_gamma"], w["cell_beta"]))
    return h_new, [h_new, c_new]


def cifg_lstm(x, states, w):
    h, c = states
    n = h.shape[-1]
    z = x @ w["kernel"] + h @ w["recurrent_kernel"] + w["bias"]
    f, g, o = sigmoid(z[:, :n]), np.tanh(z[:, n:2 * n]), sigmoid(z[:, 2 * n:])
    c_new = f * c + (1 - f) * g
    h_new = o * np.tanh(c_new)
    return h_new, [h_new, c_new]


def gru(x, states, w, reset_after=False):
    (h,) = states
    n = h.shape[-1]
    a = x @ w["kernel"] + w["bias"]
    u = w["recurrent_kernel"]
    if reset_after:
        rec = h @ u + w["recurrent_bias"]
        z, r = sigmoid(a[:, :n] + rec[:, :n]), sigmoid(a[:, n:2 * n] + rec[:, n:2 * n])
        candidate = np.tanh(a[:, 2 * n:] + r * rec[:, 2 * n:])
    else:
        z = sigmoid(a[:, :n] + h @ u[:, :n])
        r = sigmoid(a[:, n:2 * n] + h @ u[:, n:2 * n])
        candidate = np.tanh(a[:, 2 * n:] + (r * h) @ u[:, 2 * n:])
    h_new = (1 - z) * h + z * candidate
    return h_new, [h_new]


def gru_reset_after(x, states, w):
    return gru(x, states, w, reset_after=True)


def urnn_matrix(w, permutation):
    """W = D3 R2 F^-1 D2 Pi R1 F D1 as an explicit complex matrix."""
    n = w["theta"].shape[1]
    d = [np.diag(np.exp(1j * w["theta"][k])) for k in range(3)]
    f = np.fft.fft(np.eye(n), axis=0, norm="ortho")
    r = []
    for k in range(2):
        v = (w["reflection"][k, 0] + 1j * w["reflection"][k, 1])[:, None]
        r.append(np.eye(n) - 2 * (v @ v.conj().T) / (v.conj().T @ v))
    pi = np.zeros((n, n))
    pi[np.arange(n), permutation] = 1.0
    return d[2] @ r[1] @ f.conj().T @ d[1] @ pi @ r[0] @ f @ d[0]


def urnn(x, states, w, permutation):
    (h,) = states
    n = h.shape[-1] // 2
    z = (h[:, :n] + 1j * h[:, n:]) @ urnn_matrix(w, permutation).T + (x @ w["kernel"][:, :n] + 1j * x @ w["kernel"][:, n:])
    magnitude = np.abs(z)
    z = z / magnitude * np.maximum(magnitude + w["modrelu_bias"], 0.0)
    h_new = np.concatenate([z.real, z.imag], axis=-1)
    return h_new, [h_new]


def scrn(x, states, w, context_units, alpha):
    h, s = states
    projected = x @ w["kernel"] + w["bias"]
    b, a = projected[:, :context_units], projected[:, context_units:]
    s_new = (1 - alpha) * b + alpha * s
    h_new = sigmoid(s_new @ w["context_kernel"] + a + h @ w["recurrent_kernel"])
    return np.concatenate([h_new, s_new], axis=-1), [h_new, s_new]


def run(step, xs, mask, initial_states):
    """A masked sequence: where mask is False the states and the output carry over."""
    states = [np.array(s, np.float64) for s in initial_states]
    output = None
    outputs = []
    for t in range(xs.shape[1]):
        out, new_states = step(xs[:, t], states)
        keep = mask[:, t][:, None]
        if output is None:
            output = np.zeros_like(out)
        output = np.where(keep, out, output)
        states = [np.where(keep, new, old) for new, old in zip(new_states, states)]
        outputs.append(output)
    return np.stack(outputs, axis=1), states
