import pytest

from pipelines.char_corpus import builtin_documents, char_vocabulary, encode_documents, read_documents
from pipelines.errors import DataError


def test_builtin_corpus_is_deterministic_prose():
    documents = builtin_documents()
    assert documents == builtin_documents()
    assert len(documents) > 300 and sum(map(len, documents)) > 200_000
    assert min(map(len, documents)) >= 200


def test_file_paragraphs_vocabulary_and_errors(tmp_path):
    path = tmp_path / "text.txt"
    path.write_text("abc abc\n\n\nbad\nline\n", encoding="utf-8")
    documents = read_documents(path)
    assert documents == ["abc abc", "bad\nline"]
    vocab = char_vocabulary(documents, min_count=2)  # 'd', 'i', 'n', 'e', '\n' are rarer: [UNK]
    assert encode_documents(["cab?"], vocab)[0][-1] == 1
    (tmp_path / "bad.txt").write_bytes(b"fine\nstill fine\nnot \xff fine\n")
    with pytest.raises(DataError, match=r"bad.txt:3: not valid UTF-8"):
        read_documents(tmp_path / "bad.txt")
    with pytest.raises(DataError, match="no such file"):
        read_documents(tmp_path / "missing.txt")
