"""Documents laid out as parallel streams for truncated backpropagation through time.

Row i of every batch continues row i of the batch before, so a model that carries its state
from one batch to the next (`layers.CarriedState`) sees each document as one sequence, cut into
chunks of `steps`. A document starts at the beginning of a chunk, flagged by `reset`; its last
chunk is padded (id 0, weight 0). A document longer than a row's fair share (all chunks /
batch_size) is cut into pieces of at most that share, each starting with a reset. Pieces go,
longest first, to the row with the fewest chunks so far (LPT scheduling), so the rows end
within one piece of each other; rows that run out early get empty (fully padded) chunks, so
every batch is full and every epoch starts with a reset in every row.

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
                  targets: Sequence[Sequence[int]] | None = None, seed: int | None = None,
                  cut: bool = True) -> StreamLayout:
    """Lays documents (lists of ids > 0, with per-position `targets` of the same lengths;
    None: the inputs themselves) out as `batch_size` streams cut into chunks of `steps`.
    `seed` shuffles the order of the documents within each row (None: the given order).
    `cut=False` keeps every document whole in one row (one reset per document, as exact
    whole-text evaluation needs), at the price of rows that end unevenly."""
    if batch_size < 1 or steps < 1:
        raise ValueError(f"batch_size and steps must be positive, received {batch_size} and {steps}")
    targets = inputs if targets is None else targets
    if len(targets) != len(inputs):
        raise DataError(f"{len(inputs)} input documents but {len(targets)} target documents")
    for doc in range(len(inputs)):
        if len(inputs[doc]) != len(targets[doc]):
            raise DataError(f"document {doc}: {len(inputs[doc])} inputs but {len(targets[doc])} targets")
        if len(inputs[doc]) and min(inputs[doc]) <= 0:
            raise DataError(f"document {doc}: ids must be positive (0 is padding)")
    chunk_counts = [-(-len(doc) // steps) for doc in inputs]
    share = max(1, -(-sum(chunk_counts) // batch_size), *([] if cut else chunk_counts))
    pieces = [(doc, first, min(share, chunk_counts[doc] - first))  # (document, first chunk, chunks)
              for doc in range(len(inputs)) for first in range(0, chunk_counts[doc], share)]
    # Longest first to the least loaded row: no row ends far behind the others.
    row_pieces: list[list[tuple[int, int, int]]] = [[] for _ in range(batch_size)]
    heap = [(0, row) for row in range(batch_size)]
    for piece in sorted(pieces, key=lambda p: -p[2]):
        load, row = heapq.heappop(heap)
        row_pieces[row].append(piece)
        heapq.heappush(heap, (load + piece[2], row))
    rng = np.random.default_rng(seed) if seed is not None else None
    rows: list[list[tuple[int, int, bool]]] = []  # (document, chunk, starts a piece) per row
    for row in row_pieces:
        row = sorted(row)
        if rng is not None:
            rng.shuffle(row)
        rows.append([(doc, first + k, k == 0) for doc, first, count in row for k in range(count)])
    batches = max(len(r) for r in rows)
    if batches == 0:
        raise DataError("no document has any token")
    shape = (batches, batch_size, steps)
    x, y, w = np.zeros(shape, np.int32), np.zeros(shape, np.int32), np.zeros(shape, np.float32)
    reset = np.ones((batches, batch_size), bool)
    for row, chunks in enumerate(rows):
        for k, (doc, chunk, starts) in enumerate(chunks):
            part = slice(chunk * steps, (chunk + 1) * steps)
            values = np.asarray(inputs[doc][part])
            x[k, row, :len(values)] = values
            y[k, row, :len(values)] = np.asarray(targets[doc][part])
            w[k, row, :len(values)] = 1.0
            reset[k, row] = starts
    return StreamLayout(x, y, w, reset)
