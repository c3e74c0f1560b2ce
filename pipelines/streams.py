"""Documents laid out as parallel streams for truncated backpropagation through time.

Row i of every batch continues row i of the batch before, so a model that carries its state
from one batch to the next (`layers.CarriedState`) sees each document as one sequence, cut into
chunks of `steps`. A document starts at the beginning of a chunk, flagged by `reset`; its last
chunk is padded (id 0, weight 0). Documents go to the row with the fewest chunks so far, and
rows that run out early get empty (fully padded) chunks, so every batch is full and every
epoch starts with a reset in every row.

Example:
>>> s = stream_layout([[5, 6, 7], [8, 9]], batch_size=2, steps=2)
>>> s.inputs.tolist()  # (batches, batch, steps)
[[[5, 6], [8, 9]], [[7, 0], [0, 0]]]
>>> s.reset.tolist()
[[True, True], [False, True]]
"""

from __future__ import annotations

import dataclasses
import heapq
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from pipelines.errors import DataError


@dataclasses.dataclass(frozen=True)
class StreamLayout:
    inputs: np.ndarray  # (batches, batch_size, steps) int32, 0 = padding
    targets: np.ndarray  # (batches, batch_size, steps)
    weights: np.ndarray  # (batches, batch_size, steps) float32: 1 on real positions
    reset: np.ndarray  # (batches, batch_size) bool: the chunk starts a document (or is empty)

    @property
    def padding_fraction(self) -> float:
        return float(1.0 - self.weights.mean())

    def dataset(self) -> tf.data.Dataset:
        """({"tokens", "reset"}, targets, sample weights) batches, in stream order."""
        return tf.data.Dataset.from_tensor_slices(
            ({"tokens": self.inputs, "reset": self.reset}, self.targets, self.weights)).prefetch(tf.data.AUTOTUNE)


def stream_layout(inputs: Sequence[Sequence[int]], batch_size: int, steps: int,
                  targets: Sequence[Sequence[int]] | None = None, seed: int | None = None) -> StreamLayout:
    """Lays documents (lists of ids > 0, with per-position `targets` of the same lengths;
    None: the inputs themselves) out as `batch_size` streams cut into chunks of `steps`.
    `seed` shuffles the documents first (None: keep their order)."""
    if batch_size < 1 or steps < 1:
        raise ValueError(f"batch_size and steps must be positive, received {batch_size} and {steps}")
    targets = inputs if targets is None else targets
    if len(targets) != len(inputs):
        raise DataError(f"{len(inputs)} input documents but {len(targets)} target documents")
    order = np.arange(len(inputs))
    if seed is not None:
        np.random.default_rng(seed).shuffle(order)
    rows: list[list[tuple[int, int]]] = [[] for _ in range(batch_size)]  # (document, chunk) per row
    heap = [(0, row) for row in range(batch_size)]
    for doc in order:
        length = len(inputs[doc])
        if length != len(targets[doc]):
            raise DataError(f"document {doc}: {length} inputs but {len(targets[doc])} targets")
        if length == 0:
            continue
        if min(inputs[doc]) <= 0:
            raise DataError(f"document {doc}: ids must be positive (0 is padding)")
        chunks, row = -(-length // steps), heapq.heappop(heap)[1]
        rows[row].extend((int(doc), k) for k in range(chunks))
        heapq.heappush(heap, (len(rows[row]), row))
    batches = max(len(r) for r in rows)
    if batches == 0:
        raise DataError("no document has any token")
    shape = (batches, batch_size, steps)
    x, y, w = np.zeros(shape, np.int32), np.zeros(shape, np.int32), np.zeros(shape, np.float32)
    reset = np.ones((batches, batch_size), bool)
    for row, chunks in enumerate(rows):
        for k, (doc, chunk) in enumerate(chunks):
            part = slice(chunk * steps, (chunk + 1) * steps)
            values = np.asarray(inputs[doc][part])
            x[k, row, :len(values)] = values
            y[k, row, :len(values)] = np.asarray(targets[doc][part])
            w[k, row, :len(values)] = 1.0
            reset[k, row] = chunk == 0
    return StreamLayout(x, y, w, reset)
