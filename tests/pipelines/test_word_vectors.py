"""Pretrained word vectors (`pipelines/word_vectors.py`): the three text formats, gzip, alignment
with case-folded fallback and coverage, OOV rows, errors naming file and line, and the sentiment
app starting from them frozen or trainable."""

import gzip

import numpy as np
import pytest

from apps.config import replace
from apps.sentiment import Sentiment, SentimentConfig
from pipelines.errors import DataError
from pipelines.word_vectors import align, read_vectors

VECTORS = {"the": [0.1, 0.2, 0.3], "good": [1.0, 0.0, -1.0], "Paris": [0.5, 0.5, 0.5], "bad": [-1.0, 0.0, 1.0],
           "unused": [9.0, 9.0, 9.0], "rare": [2.0, 2.0, 2.0]}


def _write(path, header=False, compress=False, lines=None):
    lines = lines or [f"{w} {' '.join(map(str, v))}" for w, v in VECTORS.items()]
    text = (f"{len(lines)} 3\n" if header else "") + "\n".join(lines) + "\n"
    if compress:
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("name, header, compress", [("glove.txt", False, False), ("wiki.vec", True, False),
                                                    ("word2vec.txt.gz", True, True), ("glove.txt.gz", False, True)])
def test_formats_read_the_same_vectors(tmp_path, name, header, compress):
    vectors = read_vectors(_write(tmp_path / name, header, compress), wanted={"the", "good", "paris"})
    assert vectors.dim == 3 and vectors.lines == len(VECTORS)
    np.testing.assert_allclose(vectors.vectors["good"], VECTORS["good"])
    np.testing.assert_allclose(vectors.folded["paris"], VECTORS["Paris"])  # by its case-folded form
    assert "unused" not in vectors.vectors  # only what was asked for is kept


def test_alignment_reports_coverage_and_starts_oov_rows_with_the_vectors_spread(tmp_path):
    vectors = read_vectors(_write(tmp_path / "v.txt"), wanted={"the", "good", "paris", "missing"})
    tokens = ["[PAD]", "[UNK]", "the", "good", "paris", "missing"]
    matrix, coverage = align(tokens, vectors, seed=0)
    assert (coverage.found, coverage.folded, coverage.total) == (3, 1, 4)
    assert "3 of 4" in str(coverage)
    np.testing.assert_array_equal(matrix[0], 0.0)  # padding
    np.testing.assert_allclose(matrix[3], VECTORS["good"])
    found = np.array([VECTORS["the"], VECTORS["good"], VECTORS["Paris"]])
    low, high = found.min(axis=0) - 3 * found.std(axis=0), found.max(axis=0) + 3 * found.std(axis=0)
    assert np.all((matrix[5] >= low) & (matrix[5] <= high)) and np.any(matrix[5] != 0)


def test_extra_words_are_the_files_first_ones(tmp_path):
    vectors = read_vectors(_write(tmp_path / "v.txt"), wanted={"the"}, extra=2)
    assert vectors.extra == ["good", "Paris"]


@pytest.mark.parametrize("lines, message", [
    (["the 0.1 0.2 0.3", "good 1.0 0.0"], r"v.txt:2: 2 values for 'good', but the vectors have dimension 3"),
    (["the 0.1 0.2 0.3", "good 1.0 x 0.0"], r"v.txt:2: a value of 'good' is not a number"),
    ([], r"no vectors"),
])
def test_bad_lines_are_named_by_file_and_line(tmp_path, lines, message):
    path = tmp_path / "v.txt"
    path.write_text("\n".join(lines) + ("\n" if lines else ""), encoding="utf-8")
    with pytest.raises(DataError, match=message):
        read_vectors(path, wanted={"the", "good"})


def test_bytes_that_are_not_utf8_are_named_by_line(tmp_path):
    path = tmp_path / "v.txt"
    path.write_bytes(b"the 0.1 0.2 0.3\ngood 1.0 0.0 -1.0\nw\xe9t 0.5 0.5 0.5\n")
    with pytest.raises(DataError, match=r"v.txt:3: not UTF-8"):
        read_vectors(path, wanted={"the"})


def test_a_header_with_another_dimension_is_an_error(tmp_path):
    path = tmp_path / "v.vec"
    path.write_text("2 4\nthe 0.1 0.2 0.3\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"v.vec:2: 3 values for 'the', but the vectors have dimension 4"):
        read_vectors(path, wanted={"the"})


@pytest.mark.parametrize("trainable", [False, True])
def test_sentiment_starts_from_the_vectors_frozen_or_trainable(tmp_path, trainable):
    path = _write(tmp_path / "v.txt.gz", compress=True,
                  lines=[f"{w} {' '.join(str(x) for x in np.linspace(-1, 1, 3) * (i + 1))}"
                         for i, w in enumerate(["the", "movie", "was", "good", "bad", "wonderful", "zzword"])])
    app = Sentiment()
    config = replace(SentimentConfig.smoke(), **{"model.embeddings": str(path), "model.embeddings_trainable": trainable,
                                                 "model.embeddings_words": 1, "train.epochs": 1})
    app.train(config, tmp_path / "run")
    loaded = app.load(tmp_path / "run")
    assert loaded.config.model.embedding_dim == 3
    tokens = loaded.preprocessor.vocab.tokens
    assert "zzword" in tokens  # a word of the vectors that train lacks
    weights = loaded.model.get_layer("embedding").get_weights()[0]
    start = np.linspace(-1, 1, 3) * 4  # "good", the file's fourth line
    if trainable:
        assert not np.allclose(weights[tokens.index("good")], start)
    else:
        np.testing.assert_allclose(weights[tokens.index("good")], start)
        np.testing.assert_allclose(weights[tokens.index("zzword")], np.linspace(-1, 1, 3) * 7)
