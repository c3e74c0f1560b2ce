import numpy as np
import pytest

from pipelines.errors import DataError
from pipelines.streams import stream_layout


def test_rows_continue_documents_and_reset_at_their_starts():
    docs = [list(range(1, 8)), [20, 21, 22], [30, 31, 32, 33, 34]]  # 7, 3 and 5 tokens
    s = stream_layout(docs, batch_size=2, steps=3, targets=[[d + 100 for d in doc] for doc in docs])
    assert s.inputs.shape == (3, 2, 3)
    # Each row read across batches is whole documents, one after another, each padded to chunks.
    for row in range(2):
        stream = s.inputs[:, row].reshape(-1)
        starts = np.flatnonzero(s.reset[:, row])
        pieces = [stream[a * 3:b * 3] for a, b in zip(starts, list(starts[1:]) + [len(s.reset)])]
        for piece in pieces:
            real = piece[piece != 0].tolist()
            assert real in docs or real == []
    np.testing.assert_array_equal(s.targets[s.weights == 1], s.inputs[s.weights == 1] + 100)
    assert (s.inputs[s.weights == 0] == 0).all()
    assert s.reset[0].all()  # every epoch starts with a reset in every row
    assert sorted(s.inputs[s.weights == 1].tolist()) == sorted(sum(docs, []))  # nothing lost or doubled
    assert s.padding_fraction == pytest.approx(1 - 15 / 18)


def test_dataset_batches_and_bad_documents():
    s = stream_layout([[1, 2, 3, 4]] * 5, batch_size=2, steps=2, seed=0)
    batches = list(s.dataset())
    assert len(batches) == len(s.inputs) and batches[0][0]["tokens"].shape == (2, 2)
    with pytest.raises(DataError, match="document 1: ids must be positive"):
        stream_layout([[1, 2], [0, 3]], batch_size=1, steps=2)
    with pytest.raises(DataError, match="document 0: 2 inputs but 1 targets"):
        stream_layout([[1, 2]], batch_size=1, steps=2, targets=[[1]])
    with pytest.raises(DataError, match="no document has any token"):
        stream_layout([[]], batch_size=1, steps=2)


def test_a_long_document_is_cut_into_pieces_and_rows_stay_balanced():
    long_doc = list(range(1, 61))  # 20 chunks of 3
    short = [[7, 7, 7]] * 20  # 20 chunks of 1
    s = stream_layout([long_doc, *short], batch_size=4, steps=3)
    assert len(s.inputs) == 10  # 40 chunks over 4 rows; without cutting, the long row would need 20
    assert s.weights.sum(axis=(1, 2)).min() >= 3 * 3  # no batch is nearly empty
    # the long document's pieces each start with a reset and, read in order, give it back whole
    pieces = []
    for row in range(4):
        stream, resets = s.inputs[:, row], s.reset[:, row]
        for k in np.flatnonzero(resets):
            if stream[k][0] != 7 and stream[k][0] != 0:
                end = next((j for j in range(k + 1, len(stream)) if resets[j]), len(stream))
                pieces.append(stream[k:end].reshape(-1).tolist())
    assert sorted(sum(pieces, [])) == long_doc and len(pieces) == 2


def test_uncut_layout_keeps_each_document_whole_in_one_row():
    s = stream_layout([list(range(1, 10)), [20, 21], [30]], batch_size=2, steps=2, cut=False)
    assert s.inputs.tolist() == [[[1, 2], [20, 21]], [[3, 4], [30, 0]], [[5, 6], [0, 0]], [[7, 8], [0, 0]],
                                 [[9, 0], [0, 0]]]
    assert s.reset.tolist() == [[True, True], [False, True], [False, True], [False, True], [False, True]]
