"""Raw text for the character model: reading, splits, character ids in Python and TensorFlow."""

import codecs
import types

import numpy as np
import pytest
import tensorflow as tf

from pipelines.char_preprocessor import CharPreprocessor, unigram_entropy
from pipelines.char_text import Document, complete_text_splits, find_text_splits, read_text
from pipelines.errors import DataError
from pipelines.synthetic_code import generate

DATA = types.SimpleNamespace(batch_size=2, steps=4, vocab_size=256, min_count=1, lowercase=False)


def test_reading_normalises_newlines_and_names_bad_files(tmp_path):
    good = tmp_path / "crlf.txt"
    good.write_bytes(codecs.BOM_UTF8 + "one\r\ntwo\rthree 🙂 ünï\n".encode("utf-8"))
    assert read_text(good).text == "one\ntwo\nthree 🙂 ünï\n"
    cases = {
        "empty.txt": (b"", r"empty.txt is empty"),
        "latin1.txt": (b"fine\nnot \xe9 fine", r"latin1.txt: byte 9 \(line 2\) is not valid UTF-8 \(0xe9\)"),
        "utf16.txt": ("text".encode("utf-16"), r"utf16.txt is UTF-16"),
        "utf16nobom.txt": ("text".encode("utf-16-le"), r"utf16nobom.txt: NUL characters"),
    }
    for name, (data, message) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(DataError, match=message):
            read_text(tmp_path / name)
    with pytest.raises(DataError, match="missing.txt: no such file"):
        read_text(tmp_path / "missing.txt")


def test_split_files_and_splits_cut_from_the_end(tmp_path):
    (tmp_path / "train.txt").write_text("abc")
    (tmp_path / "valid.txt").write_text("d")
    assert find_text_splits(str(tmp_path)) == {"train": str(tmp_path / "train.txt"),
                                               "dev": str(tmp_path / "valid.txt")}
    with pytest.raises(DataError, match="has no test.txt"):
        find_text_splits(str(tmp_path), required="test")
    with pytest.raises(DataError, match="has no train.txt"):
        find_text_splits(str(tmp_path / "nowhere"))
    splits, note = complete_text_splits({"train": [Document("x" * 80 + "y" * 10 + "z" * 10, "t.txt")]},
                                        {"train": "t.txt"}, 0.1, 0.1)
    assert [d.text for d in splits["train"]] == ["x" * 80]
    assert splits["dev"][0].text == "y" * 10 and splits["test"][0].text == "z" * 10
    assert note == "train: t.txt; dev: 10% of train's text, cut from its end; test: 10% of train's text, cut from its end"


def test_character_ids_agree_in_python_tensorflow_and_assets():
    p = CharPreprocessor(DATA)
    p.fit([Document("hello wörld 🙂\n", "t")])
    text = "hold 🙂 ✗\n"  # ✗ is unseen: [UNK]
    ids = p.encode(text)
    assert ids[-2] == 1 and ids.count(1) == 1 and len(ids) == len(text)
    assert p.tf_encode(p.tables()["chars"], tf.constant(text)).numpy().tolist() == ids
    assert CharPreprocessor.encode_assets(p.assets(), text).tolist() == ids
    assert "".join(p.chars[i] for i in ids) == "hold 🙂 \ufffd\n"


def test_streams_predict_the_next_character():
    p = CharPreprocessor(DATA)
    p.fit([Document("abcdefg", "t")])
    layout = p.layout([Document("abcdefg", "t")], batch_size=1, steps=3, cut=False)
    inputs = layout.inputs[:, 0][layout.weights[:, 0] > 0]
    targets = layout.targets[:, 0][layout.weights[:, 0] > 0]
    assert "".join(p.chars[i] for i in inputs) == "abcdef" and "".join(p.chars[i] for i in targets) == "bcdefg"
    assert layout.reset[:, 0].tolist() == [True, False]


def test_synthetic_code_is_balanced_and_has_long_range_structure():
    docs = generate(50, seed=0)
    assert docs == generate(50, seed=0) and docs != generate(50, seed=1)
    text = "\n".join(docs)
    for opening, closing in ("()", "[]", "{}"):
        assert text.count(opening) == text.count(closing) > 100
    assert text.count('"') % 2 == 0 and "\n        " in text  # nested indentation
    entropy = unigram_entropy(docs)
    print(f"\nsynthetic code: {len(text):,} characters, unigram entropy {entropy:.3f} bits")
    assert 3.5 < entropy < 5.5
    assert np.mean([len(d) for d in docs]) > 300
