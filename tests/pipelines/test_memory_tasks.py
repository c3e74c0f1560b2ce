import numpy as np

from pipelines.memory_tasks import adding_problem, binary_addition, copying_memory, from_bits, parity, to_bits


def test_adding_problem_targets_and_constant_baseline():
    x, y = adding_problem(20000, 50, seed=3)
    assert x.shape == (20000, 50, 2) and (x[..., 1].sum(1) == 2).all()
    assert (x[:, :25, 1].sum(1) == 1).all()  # one marker in each half
    np.testing.assert_allclose((x[..., 0] * x[..., 1]).sum(1), y, rtol=1e-6)
    assert abs(np.mean((y - 1.0) ** 2) - 1 / 6) < 0.01  # predicting 1 scores about 0.167


def test_binary_addition_and_bits():
    x, y, a, b = binary_addition(100, bits=8, seed=1)
    assert x.shape == (100, 9, 2) and y.shape == (100, 9, 1)
    assert (from_bits(x[..., 0]) == a).all() and (from_bits(y[..., 0]) == a + b).all()
    assert to_bits(np.array([6]), 4).tolist() == [[0, 1, 1, 0]]


def test_parity_and_copying_memory():
    x, y = parity(50, 12, seed=2)
    assert (y[:, 5, 0] == x[:, :6, 0].sum(1) % 2).all()
    x, y = copying_memory(4, delay=20, seed=0)
    assert x.shape == y.shape == (4, 40)
    assert (x[:, 29] == 9).all() and (y[:, -10:] == x[:, :10]).all() and (y[:, :-10] == 0).all()
