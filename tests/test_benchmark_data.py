"""The scripts that turn public datasets into the apps' local format (benchmarks/prepare_*)."""

import collections

import pytest

from benchmarks import prepare_imdb, prepare_review_sentences


def _write_review_set(directory, bad_line=None):
    directory.mkdir()
    for name in prepare_review_sentences.FILES:
        lines = [f"{name[:4]} sentence number {i} .\t{i % 2}" for i in range(60)]
        if bad_line is not None and name == prepare_review_sentences.FILES[1]:
            lines[bad_line] = "a sentence without its label"
        (directory / name).write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_review_sentences_split_each_file_and_label_in_the_same_shares(tmp_path):
    _write_review_set(tmp_path / "raw")
    prepare_review_sentences.main([str(tmp_path / "raw"), str(tmp_path / "out"), "--dev", "18", "--test", "36"])
    splits = {}
    for split in ("train", "dev", "test"):
        rows = [line.split("\t") for line in (tmp_path / "out" / f"{split}.tsv").read_text().splitlines()]
        splits[split] = rows
        shares = collections.Counter((text[:4], label) for text, label in rows)
        assert len(shares) == 6 and len(set(shares.values())) == 1  # 3 files x 2 labels, equally
    assert [len(rows) for rows in splits.values()] == [180 - 18 - 36, 18, 36]
    texts = [text for rows in splits.values() for text, _ in rows]
    assert len(set(texts)) == len(texts) == 180  # every sentence once
    assert {label for rows in splits.values() for _, label in rows} == {"negative", "positive"}


def test_a_review_line_without_a_label_is_named(tmp_path):
    _write_review_set(tmp_path / "raw", bad_line=6)
    with pytest.raises(SystemExit, match=r"imdb_labelled.txt:7: expected 'sentence<TAB>0\|1'"):
        prepare_review_sentences.main([str(tmp_path / "raw"), str(tmp_path / "out")])


@pytest.mark.parametrize("encoding", ["utf-8", "cp1252"])
def test_review_lines_end_at_newlines_only_in_either_encoding(tmp_path, encoding):
    # The set's own files are Windows-1252, where byte 0x85 is "..."; UTF-8 copies keep it as U+0085.
    text = "The script is\x85was there a script?  \t0\r\nCaf\xe9 scenes, fine.\t1\n\n"
    path = tmp_path / "imdb_labelled.txt"
    path.write_bytes(text.encode("utf-8") if encoding == "utf-8" else text.replace("\x85", "\u2026").encode(encoding))
    rows = prepare_review_sentences.read_file(path)
    assert [label for _, label in rows] == ["negative", "positive"]
    assert rows == [("The script is\u2026was there a script?", "negative"), ("Caf\xe9 scenes, fine.", "positive")]


def test_imdb_reviews_become_sentences_of_clear_verdicts(tmp_path):
    long = " ".join(["Word"] * 51) + "."
    review = f"What a film! I loved every minute of it.<br /><br />The plot is thin. \"Still worth it,\" she said. {long} Go."
    assert prepare_imdb.review_sentences(review) == [  # 4 to 50 words; <br /> is a boundary
        "I loved every minute of it.", "The plot is thin.", "\"Still worth it,\" she said."]
    root = tmp_path / "aclImdb"
    for split in ("train", "test"):
        for folder, ratings in (("pos", (7, 10)), ("neg", (1, 4))):
            (root / split / folder).mkdir(parents=True)
            for i, rating in enumerate(ratings):
                (root / split / folder / f"{i}_{rating}.txt").write_text(f"Review {folder} {rating} here. Is it good?")
    prepare_imdb.main([str(root), str(tmp_path / "out")])
    rows = [line.split("\t") for line in (tmp_path / "out" / "train.tsv").read_text().splitlines()]
    assert sorted(rows) == [["Review neg 1 here.", "negative"], ["Review pos 10 here.", "positive"]]


def test_the_average_of_runs_scores_the_mean_of_their_probabilities():
    from types import SimpleNamespace as S

    import numpy as np
    import tensorflow as tf

    from benchmarks.sentiment_real import averaged_accuracy

    runs = {  # per run: P(neg), P(pos) of three texts; alone each run gets 2 of 3 right, together 3
        "a": ([[0.9, 0.1], [0.4, 0.6], [0.45, 0.55]], ["neg", "pos"]),
        "b": ([[0.4, 0.6], [0.1, 0.9], [0.7, 0.3]], ["neg", "pos"]),
        "c": ([[0.5, 0.5]] * 3, ["yes", "no"]),
    }
    app = S(load=lambda run: run, serving=lambda run: S(
        labels=tf.constant(runs[run][1]),
        classify=lambda texts: {"probabilities": tf.constant(runs[run][0][:len(texts)])}))
    examples = [S(text=t, label=label) for t, label in (("x", "neg"), ("y", "pos"), ("z", "neg"))]
    assert [averaged_accuracy(app, [run], examples) for run in "ab"] == pytest.approx([2 / 3, 2 / 3])
    assert averaged_accuracy(app, ["a", "b"], examples) == 1.0
    with pytest.raises(SystemExit, match=r"c: labels \['yes', 'no'\], not \['neg', 'pos'\]"):
        averaged_accuracy(app, ["a", "c"], examples)
    assert np.isclose(averaged_accuracy(app, ["b"], examples[:2]), 0.5)
