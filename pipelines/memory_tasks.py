"""Algorithmic tasks that need memory: generators of NumPy arrays, reproducible from a seed.

- adding problem (Hochreiter & Schmidhuber 1997; Le et al. 2015): the sum of the two values
  marked in a sequence of random numbers; predicting 1 scores an MSE of about 0.167.
- binary addition: two numbers, least significant bit first, in; their sum's bits out.
- parity: a bit string in; the running parity (XOR of all bits so far) out at every step.
- copying memory (Arjovsky et al. 2016): remember 10 symbols across `delay` blank steps.
"""

from __future__ import annotations

import numpy as np


def adding_problem(size: int, length: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """x (size, length, 2): [value in [0, 1), marker]; y (size,): the sum of the two marked values.

    One marker falls in the first half and one in the second, as in Le et al.

    Example:
    >>> x, y = adding_problem(3, 10)
    >>> x.shape, y.shape, bool(np.allclose((x[..., 0] * x[..., 1]).sum(1), y))
    ((3, 10, 2), (3,), True)
    """
    if length < 2:
        raise ValueError(f"length must be at least 2, received length={length}")
    rng = np.random.default_rng(seed)
    values = rng.uniform(0.0, 1.0, size=(size, length))
    markers = np.zeros((size, length))
    rows = np.arange(size)
    markers[rows, rng.integers(0, length // 2, size=size)] = 1.0
    markers[rows, rng.integers(length // 2, length, size=size)] = 1.0
    x = np.stack([values, markers], axis=-1).astype("float32")
    return x, (values * markers).sum(axis=1).astype("float32")


def to_bits(numbers: np.ndarray, bits: int) -> np.ndarray:
    """(n,) integers -> (n, bits) bits, least significant first."""
    return ((numbers[:, None] >> np.arange(bits)) & 1).astype("float32")


def from_bits(bits: np.ndarray) -> np.ndarray:
    """(n, bits) bits, least significant first -> (n,) integers."""
    return (np.rint(bits).astype(np.int64) << np.arange(bits.shape[1])).sum(axis=1)


def binary_addition(size: int, bits: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """x (size, bits + 1, 2): the bits of a and b; y (size, bits + 1, 1): the bits of a + b;
    also a and b. The extra step holds the final carry.

    Example:
    >>> x, y, a, b = binary_addition(4, bits=8)
    >>> bool((from_bits(y[..., 0]) == a + b).all())
    True
    """
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 2 ** bits, size=size)
    b = rng.integers(0, 2 ** bits, size=size)
    x = np.stack([to_bits(a, bits + 1), to_bits(b, bits + 1)], axis=-1)
    return x, to_bits(a + b, bits + 1)[..., None], a, b


def parity(size: int, length: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """x (size, length, 1) random bits; y (size, length, 1): the parity of the bits so far.

    Example:
    >>> x, y = parity(2, 6)
    >>> bool((y[:, -1, 0] == x[..., 0].sum(1) % 2).all())
    True
    """
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 2, size=(size, length, 1))
    return x.astype("float32"), (np.cumsum(x, axis=1) % 2).astype("float32")


def copying_memory(size: int, delay: int, seed: int = 0, symbols: int = 8, copy_length: int = 10
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Token ids: 1..symbols are data, 0 blank, symbols + 1 the "go" marker.

    x (size, copy_length + delay + copy_length): the data, `delay - 1` blanks, the marker,
    then blanks; y: blanks until the last `copy_length` steps, which repeat the data. Predicting
    blanks then random symbols scores a cross-entropy of copy_length * log(symbols) / total length.
    """
    rng = np.random.default_rng(seed)
    data = rng.integers(1, symbols + 1, size=(size, copy_length))
    total = 2 * copy_length + delay
    x = np.zeros((size, total), np.int32)
    y = np.zeros((size, total), np.int32)
    x[:, :copy_length] = data
    x[:, copy_length + delay - 1] = symbols + 1
    y[:, -copy_length:] = data
    return x, y
