"""CoNLL-U treebanks (Universal Dependencies) read with the `conllu` package, checked line by line
first so that every error names the file and the line.

Tagged are the syntactic words: multiword-token range lines ("1-2 don't") are skipped, and so are
empty nodes ("8.1"), as UD specifies for tagging and parsing.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import re

import conllu

from pipelines.errors import DataError
from pipelines.text_files import read_utf8_lines

COLUMNS = 10
TAG_COLUMNS = ("upos", "xpos")
_ID = re.compile(r"^(\d+)(?:-(\d+)|\.(\d+))?$")


@dataclasses.dataclass(frozen=True)
class TaggedSentence:
    words: tuple[str, ...]
    tags: tuple[str, ...]
    where: str  # "file:line" of the sentence's first line


def _blocks(path: str):
    """(first line number, lines) of each sentence block; blank lines separate them (CRLF and a
    missing final blank line are accepted)."""
    block, start = [], None
    for number, line in enumerate(read_utf8_lines(path), start=1):
        if line.strip():
            if start is None:
                start = number
            block.append((number, line))
        elif block:
            yield start, block
            block, start = [], None
    if block:
        yield start, block


def _check(path: str, block: list[tuple[int, str]]) -> None:
    words = 0
    for number, line in block:
        if line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) != COLUMNS:
            raise DataError(f"{path}:{number}: expected {COLUMNS} tab-separated columns, found {len(fields)}")
        match = _ID.match(fields[0])
        if not match:
            raise DataError(f"{path}:{number}: ID {fields[0]!r} is not a number, a range (1-2) or an empty node (1.1)")
        if match.group(2) is not None and int(match.group(2)) <= int(match.group(1)):
            raise DataError(f"{path}:{number}: range {fields[0]!r} does not go forward")
        words += match.group(2) is None and match.group(3) is None
    if not words:
        raise DataError(f"{path}:{block[0][0]}: a sentence with no words (comments only)")


def read_conllu(path: str, tag_column: str = "upos") -> list[TaggedSentence]:
    """The tagged sentences of a CoNLL-U file: the words (FORM) and tags (UPOS or XPOS).

    Raises:
        DataError: naming the file and line of a malformed line, a missing tag, or the file if
            it holds no sentence.
    """
    if tag_column not in TAG_COLUMNS:
        raise DataError(f"data.tag_column must be one of {TAG_COLUMNS}, received {tag_column!r}")
    sentences = []
    for start, block in _blocks(path):
        _check(path, block)
        (tokens,) = conllu.parse("\n".join(line for _, line in block) + "\n\n")
        numbers = [number for number, line in block if not line.startswith("#")]
        words, tags = [], []
        for number, token in zip(numbers, tokens):
            if not isinstance(token["id"], int):  # a multiword range or an empty node
                continue
            tag = token[tag_column]
            if tag in (None, "_"):
                raise DataError(f"{path}:{number}: the word {token['form']!r} has no {tag_column.upper()} tag")
            words.append(token["form"])
            tags.append(tag)
        sentences.append(TaggedSentence(tuple(words), tuple(tags), f"{path}:{start}"))
    if not sentences:
        raise DataError(f"{path} is empty: the split has no sentences")
    return sentences


def find_conllu_splits(directory: str, required: str = "train") -> dict[str, str]:
    """Maps "train" / "dev" / "test" to the one `*<split>*.conllu` file of `directory`
    (`valid` is accepted for dev); the `required` split must be there."""
    found = {}
    for split, names in (("train", ("train",)), ("dev", ("dev", "valid")), ("test", ("test",))):
        matches = sorted({p for name in names for p in glob.glob(os.path.join(directory, f"*{name}*.conllu"))})
        if len(matches) > 1:
            raise DataError(f"{directory}: more than one file for the {split} split: {matches}")
        if matches:
            found[split] = matches[0]
    if required not in found:
        raise DataError(f"{directory} has no *{required}*.conllu file")
    return found
