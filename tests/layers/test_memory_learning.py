"""Cells learn the algorithmic tasks that need memory, and generalise to longer inputs.

Small versions sized for the test suite; `benchmarks/memory_tasks.py` runs the long ones.
"""

import keras
import numpy as np

from layers import cells
from layers.recurrent import Recurrent
from pipelines.memory_tasks import adding_problem, binary_addition, from_bits, parity


def _model(cell, features, return_sequences):
    model = keras.Sequential([
        keras.Input((None, features)),
        Recurrent(cells.get(cell, 32 if not return_sequences else 16), return_sequences=return_sequences),
        keras.layers.Dense(1),
    ])
    loss = keras.losses.BinaryCrossentropy(from_logits=True) if return_sequences else "mse"
    model.compile(keras.optimizers.Adam(0.01, global_clipnorm=1.0), loss)
    return model


def test_lstm_solves_the_adding_problem_at_length_50():
    x, y = adding_problem(16000, 50, seed=0)
    x_test, y_test = adding_problem(1000, 50, seed=1)
    model = _model("lstm", 2, return_sequences=False)
    model.fit(x, y, batch_size=32, epochs=2, verbose=0)
    mse = model.evaluate(x_test, y_test, verbose=0)
    baseline = float(np.mean((y_test - 1.0) ** 2))
    print(f"\nadding problem, length 50: lstm MSE {mse:.4f}, predicting 1: {baseline:.4f}")
    assert mse < 0.02 and baseline > 0.15


def test_binary_addition_trained_on_8_bits_adds_16_bit_numbers():
    x, y, _, _ = binary_addition(4000, bits=8, seed=0)
    x_test, _, a, b = binary_addition(1000, bits=16, seed=1)
    model = _model("lstm", 2, return_sequences=True)
    model.fit(x, y, batch_size=32, epochs=5, verbose=0)
    sums = from_bits((model.predict(x_test, verbose=0)[..., 0] > 0).astype("float32"))
    accuracy = float(np.mean(sums == a + b))
    print(f"\nbinary addition: trained on 8-bit numbers, {accuracy:.3f} of 16-bit sums exactly right")
    assert accuracy >= 0.99


def test_parity_trained_on_10_bits_generalises_to_40():
    x, y = parity(4000, 10, seed=0)
    x_test, y_test = parity(1000, 40, seed=1)
    model = _model("lstm", 1, return_sequences=True)
    model.fit(x, y, batch_size=32, epochs=6, verbose=0)
    correct = ((model.predict(x_test, verbose=0)[..., 0] > 0) == y_test[..., 0].astype(bool)).all(axis=1)
    print(f"\nparity: trained on 10 bits, {correct.mean():.3f} of 40-bit strings right at every step")
    assert correct.mean() >= 0.99
