"""Raw UTF-8 text for character language models: files read with errors that name the file and
the byte, a directory's splits, and splits cut from the end of train.

Example:
>>> train, held = cut_from_end(Document("abcdefghij", "t.txt"), 0.2)
>>> train.text, held.text, held.where
('abcdefgh', 'ij', 't.txt (its last 20%)')
"""

from __future__ import annotations

import codecs
import dataclasses
import os

from pipelines.errors import DataError
from pipelines.text_files import SPLIT_ALIASES


@dataclasses.dataclass(frozen=True)
class Document:
    """One stream of text: a file, a tfds example or a generated one (`where` names it)."""

    text: str
    where: str


def read_text(path: str | os.PathLike) -> Document:
    """A UTF-8 text file (a UTF-8 byte-order mark is dropped; CRLF and CR become LF), or a
    DataError naming the file: missing, empty, UTF-16, or the byte offset of the first byte
    that is not UTF-8."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{path} is a directory, not a text file") from None
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise DataError(f"{path} is UTF-16 (it starts with a UTF-16 byte-order mark); save it as UTF-8")
    raw = raw.removeprefix(codecs.BOM_UTF8)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise DataError(f"{path}: byte {e.start} (line {line}) is not valid UTF-8 (0x{raw[e.start]:02x})") from None
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise DataError(f"{path} is empty" if not text else f"{path} holds only white space")
    if "\x00" in text:
        raise DataError(f"{path}: NUL characters at offset {text.index(chr(0))}: is it UTF-16 without a "
                        "byte-order mark, or a binary file?")
    return Document(text, str(path))


def find_text_splits(path: str, required: str = "train") -> dict[str, str]:
    """A directory's `train.txt`, `valid.txt` / `dev.txt` and `test.txt`: split -> file, of which
    `required` must be one; a single file is train."""
    if os.path.isfile(path):
        return {"train": path}
    found = {}
    for split, aliases in SPLIT_ALIASES.items():
        for alias in aliases:
            candidate = os.path.join(path, f"{alias}.txt")
            if os.path.isfile(candidate):
                found[split] = candidate
                break
    if required not in found:
        names = " or ".join(f"{a}.txt" for a in SPLIT_ALIASES[required])
        raise DataError(f"{path} has no {names} (a character model reads train.txt, valid.txt and test.txt)")
    return found


def cut_from_end(document: Document, fraction: float) -> tuple[Document, Document]:
    """(the text without its last `fraction`, that last part): a held-out split that, unlike a
    random sample of lines, the model has not seen the middle of."""
    if not 0 < fraction < 1:
        raise DataError(f"split fraction must be in (0, 1), received {fraction}")
    cut = len(document.text) - max(1, int(round(len(document.text) * fraction)))
    if cut < 2:
        raise DataError(f"{document.where} is too short to cut a held-out split from ({len(document.text)} characters)")
    return (Document(document.text[:cut], document.where),
            Document(document.text[cut:], f"{document.where} (its last {fraction:.0%})"))


def complete_text_splits(splits: dict, origins: dict[str, str], dev_fraction: float,
                         test_fraction: float) -> tuple[dict, str]:
    """Missing test and dev splits cut from the end of train's last document (test last); returns
    the splits and a note of where each came from, for the run's config."""
    notes = [f"{split}: {origin}" for split, origin in origins.items()]
    for split, fraction in (("test", test_fraction), ("dev", dev_fraction)):
        if split not in splits:
            *rest, last = splits["train"]
            kept, held = cut_from_end(last, fraction)
            splits["train"], splits[split] = [*rest, kept], [held]
            notes.append(f"{split}: the last {fraction:.0%} of train's text")
    return splits, "; ".join(notes)
