"""Local labelled-text files: `text<TAB>label` per line (`.tsv`), or CSV with a `text,label` header.

Every error names the file and the line.
"""

from __future__ import annotations

import csv
import dataclasses
import glob
import io
import os

from pipelines.errors import DataError

SPLIT_ALIASES = {"train": ("train",), "dev": ("dev", "valid", "validation"), "test": ("test",)}


@dataclasses.dataclass(frozen=True)
class TextExample:
    text: str
    label: str
    where: str  # "file:line", for error messages


@dataclasses.dataclass(frozen=True)
class Pair:
    source: str
    target: str
    where: str  # "file:line", for error messages


def read_utf8_lines(path: str) -> list[str]:
    """The file's lines (without newlines); a byte that is not UTF-8 is reported by line."""
    with open(path, "rb") as f:
        raw = f.read()
    lines = raw.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    if lines and lines[0].startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte-order mark
        lines[0] = lines[0][3:]
    out = []
    for number, line in enumerate(lines, start=1):
        try:
            out.append(line.decode("utf-8").rstrip("\r"))
        except UnicodeDecodeError as e:
            raise DataError(
                f"{path}:{number}: not valid UTF-8 (byte 0x{line[e.start]:02x} at column {e.start + 1})"
            ) from None
    return out


def read_pairs_tsv(path: str, what: tuple[str, str]) -> list[tuple[str, str, str]]:
    """Rows of exactly two non-empty tab-separated fields: (first, second, "file:line").

    Blank lines are skipped; `what` names the two fields for error messages.
    """
    rows = []
    for number, line in enumerate(read_utf8_lines(path), start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 2:
            raise DataError(
                f"{path}:{number}: expected exactly one tab ({what[0]}<TAB>{what[1]}), found {len(fields) - 1}"
            )
        for name, value in zip(what, fields):
            if not value.strip():
                raise DataError(f"{path}:{number}: empty {name}")
        rows.append((fields[0], fields[1], f"{path}:{number}"))
    return rows


def read_labeled_csv(path: str) -> list[TextExample]:
    text = "\n".join(read_utf8_lines(path))
    csv.field_size_limit(max(csv.field_size_limit(), len(text)))  # a long review is one field
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or not {"text", "label"} <= set(reader.fieldnames):
        raise DataError(f"{path}:1: a CSV file needs a header with the columns text,label (found {reader.fieldnames})")
    examples = []
    for row in reader:
        where = f"{path}:{reader.line_num}"
        if None in row or any(v is None for v in row.values()):
            raise DataError(f"{where}: expected {len(reader.fieldnames)} columns")
        if not row["text"].strip():
            raise DataError(f"{where}: empty text")
        if not row["label"].strip():
            raise DataError(f"{where}: empty label")
        examples.append(TextExample(row["text"], row["label"].strip(), where))
    return examples


def read_labeled_text(path: str) -> list[TextExample]:
    """Reads a `.tsv` (`text<TAB>label`) or `.csv` (header `text,label`) file.

    Raises:
        DataError: naming the file and line of a malformed row, or the file if it has no rows.
    """
    if path.endswith(".csv"):
        examples = read_labeled_csv(path)
    else:
        examples = [TextExample(t, l.strip(), w) for t, l, w in read_pairs_tsv(path, ("text", "label"))]
    if not examples:
        raise DataError(f"{path} is empty: the split has no examples")
    return examples


def find_split_files(directory: str, extensions: tuple[str, ...] = (".tsv", ".csv"),
                     required: str = "train") -> dict[str, str]:
    """Maps "train" / "dev" / "test" to the file that holds it (`valid` is accepted for dev);
    the `required` split must be there (train, or the one split an evaluation reads)."""
    found: dict[str, str] = {}
    for split, names in SPLIT_ALIASES.items():
        for name in names:
            matches = [p for ext in extensions for p in glob.glob(os.path.join(directory, name + ext))]
            if len(matches) > 1:
                raise DataError(f"{directory}: more than one file for the {split} split: {sorted(matches)}")
            if matches:
                found[split] = matches[0]
                break
    if required not in found:
        wanted = " or ".join(f"{name}{ext}" for name in SPLIT_ALIASES[required] for ext in extensions)
        raise DataError(f"{directory} has no {wanted}")
    return found
