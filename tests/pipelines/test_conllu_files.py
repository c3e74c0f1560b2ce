import pytest

from pipelines.conllu_files import find_conllu_splits, read_conllu
from pipelines.errors import DataError

SENTENCE = """# sent_id = 1
# text = I don't know.
1\tI\tI\tPRON\tPRP\t_\t4\tnsubj\t_\t_
2-3\tdon't\t_\t_\t_\t_\t_\t_\t_\t_
2\tdo\tdo\tAUX\tVBP\t_\t4\taux\t_\t_
3\tn't\tnot\tPART\tRB\t_\t4\tadvmod\t_\t_
4\tknow\tknow\tVERB\tVB\t_\t0\troot\t_\tSpaceAfter=No
4.1\tit\tit\tPRON\tPRP\t_\t_\t_\t4:obj\t_
5\t.\t.\tPUNCT\t.\t_\t4\tpunct\t_\t_
"""
SECOND = "1\tYes\tyes\tINTJ\tUH\t_\t0\troot\t_\t_\n"


def _write(tmp_path, text, name="x-train.conllu", raw=None):
    path = tmp_path / name
    path.write_bytes(raw if raw is not None else text.encode("utf-8"))
    return str(path)


def test_multiword_tokens_and_empty_nodes_as_ud_defines():
    import pathlib
    import tempfile

    path = _write(pathlib.Path(tempfile.mkdtemp()), SENTENCE + "\n" + SECOND + "\n")
    first, second = read_conllu(path)
    assert first.words == ("I", "do", "n't", "know", ".")  # syntactic words: no range line, no empty node
    assert first.tags == ("PRON", "AUX", "PART", "VERB", "PUNCT")
    assert first.where.endswith(":1") and second.where.endswith(":11")
    assert read_conllu(path, "xpos")[0].tags == ("PRP", "VBP", "RB", "VB", ".")
    assert second.words == ("Yes",)


def test_crlf_and_a_missing_final_blank_line_are_accepted(tmp_path):
    text = (SENTENCE + "\n" + SECOND).replace("\n", "\r\n").rstrip("\r\n")
    sentences = read_conllu(_write(tmp_path, text))
    assert [s.words for s in sentences] == [("I", "do", "n't", "know", "."), ("Yes",)]


@pytest.mark.parametrize("text, raw, message", [
    (SENTENCE.replace("1\tI\tI\tPRON\tPRP\t_\t4\tnsubj\t_\t_", "1\tI\tI\tPRON"), None,
     "x-train.conllu:3: expected 10 tab-separated columns, found 4"),
    (SENTENCE.replace("5\t.", "five\t."), None, "x-train.conllu:9: ID 'five' is not a number"),
    (SENTENCE.replace("2-3\tdon't", "3-2\tdon't"), None, "x-train.conllu:4: range '3-2' does not go forward"),
    ("# sent_id = 9\n# text = nothing\n\n" + SECOND, None, "x-train.conllu:1: a sentence with no words"),
    ("", None, "x-train.conllu is empty"),
    (None, SECOND.encode() + b"2\tb\xe9d\tbad\tADJ\tJJ\t_\t1\tamod\t_\t_\n", "x-train.conllu:2: not valid UTF-8"),
    (SENTENCE.replace("AUX\tVBP", "_\tVBP"), None, "x-train.conllu:5: the word 'do' has no UPOS tag"),
])
def test_malformed_files_name_file_and_line(tmp_path, text, raw, message):
    with pytest.raises(DataError) as error:
        read_conllu(_write(tmp_path, text or "", raw=raw))
    assert message in str(error.value)


def test_split_files_are_found_by_name(tmp_path):
    for name in ("en_x-ud-train.conllu", "en_x-ud-dev.conllu", "en_x-ud-test.conllu", "README.md"):
        (tmp_path / name).write_text(SECOND)
    assert sorted(find_conllu_splits(str(tmp_path))) == ["dev", "test", "train"]
    (tmp_path / "en_x-ud-train.conllu").unlink()
    with pytest.raises(DataError, match="has no \\*train\\*.conllu"):
        find_conllu_splits(str(tmp_path))
