import pytest

from pipelines.errors import DataError
from pipelines.sources import parse_source, split_off
from pipelines.text_files import find_split_files, read_labeled_text


def test_reads_tsv_and_csv(tmp_path):
    (tmp_path / "train.tsv").write_text("good film\tpos\n\nbad, very bad\tneg\n", encoding="utf-8")
    (tmp_path / "dev.csv").write_text('text,label\n"bad, very bad",neg\n', encoding="utf-8")
    tsv = read_labeled_text(str(tmp_path / "train.tsv"))
    assert [(e.text, e.label) for e in tsv] == [("good film", "pos"), ("bad, very bad", "neg")]
    assert tsv[1].where.endswith("train.tsv:3")
    assert [(e.text, e.label) for e in read_labeled_text(str(tmp_path / "dev.csv"))] == [("bad, very bad", "neg")]


@pytest.mark.parametrize(
    "content, message",
    [
        (b"fine\tpos\nno tab here\n", r"train.tsv:2: expected exactly one tab"),
        (b"fine\tpos\na\tb\tc\n", r"train.tsv:2: expected exactly one tab .* found 2"),
        (b"fine\tpos\n\tneg\n", r"train.tsv:2: empty text"),
        (b"fine\tpos\nbad \xff\tneg\n", r"train.tsv:2: not valid UTF-8 \(byte 0xff at column 5\)"),
        (b"\n\n", r"train.tsv is empty"),
    ],
)
def test_bad_rows_name_file_and_line(tmp_path, content, message):
    (tmp_path / "train.tsv").write_bytes(content)
    with pytest.raises(DataError, match=message):
        read_labeled_text(str(tmp_path / "train.tsv"))


def test_csv_without_header_is_rejected(tmp_path):
    (tmp_path / "train.csv").write_text("good,pos\n", encoding="utf-8")
    with pytest.raises(DataError, match="train.csv:1: a CSV file needs a header"):
        read_labeled_text(str(tmp_path / "train.csv"))


def test_find_split_files_accepts_valid_for_dev(tmp_path):
    for name in ("train.tsv", "valid.tsv"):
        (tmp_path / name).write_text("a\tb\n")
    found = find_split_files(str(tmp_path))
    assert sorted(found) == ["dev", "train"] and found["dev"].endswith("valid.tsv")
    with pytest.raises(DataError, match="has no train.tsv"):
        find_split_files(str(tmp_path / "valid.tsv").replace("valid.tsv", "") + "nothing")


def test_parse_source(tmp_path):
    spec = parse_source("synthetic?size=100&seed=3")
    assert (spec.kind, spec.param("size", 0), spec.param("seed", 0)) == ("synthetic", 100, 3)
    assert parse_source("tfds:ted_hrlr_translate/pt_to_en").name == "ted_hrlr_translate/pt_to_en"
    assert parse_source(str(tmp_path)).kind == "local"
    with pytest.raises(DataError, match="does not exist"):
        parse_source(str(tmp_path / "missing"))
    with pytest.raises(DataError, match=r"unknown synthetic source option\(s\) \['sise'\]"):
        parse_source("synthetic?sise=3")
    with pytest.raises(DataError, match="must be an integer"):
        parse_source("synthetic?size=big").param("size", 0)


def test_split_off_is_reproducible_and_disjoint():
    items = list(range(100))
    rest, held = split_off(items, 0.2, seed=7)
    assert (rest, held) == split_off(items, 0.2, seed=7)
    assert len(held) == 20 and sorted(rest + held) == items
    with pytest.raises(DataError, match="cannot split"):
        split_off([1], 0.5, seed=0)
