"""Raw UTF-8 text for character language models: files read with errors that name the file and
the byte, a directory's splits, and splits cut from the end of train.

Example:
>>> train, dev, test = cut_from_end(Document("abcdefghij", "t.txt"), 0.2, 0.1)
>>> train.text, dev.text, test.text, test.where
('abcdefg', 'hi', 'j', 't.txt (last 10%)')
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


def cut_from_end(document: Document, *fractions: float) -> tuple[Document, ...]:
    """(the text without its last parts, then each part): held-out splits of `fractions` of the
    whole text, in order, at its end (a model has then seen none of their middle, unlike a random
    sample of lines)."""
    n, sizes = len(document.text), []
    for fraction in fractions:
        if not 0 < fraction < 1:
            raise DataError(f"split fraction must be in (0, 1), received {fraction}")
        sizes.append(max(1, int(round(n * fraction))))
    cut = n - sum(sizes)
    if cut < 2:
        raise DataError(f"{document.where} is too short to cut held-out splits from ({n} characters)")
    parts = [Document(document.text[:cut], document.where)]
    for fraction, size in zip(fractions, sizes):
        parts.append(Document(document.text[cut:cut + size], f"{document.where} (last {fraction:.0%})"))
        cut += size
    return tuple(parts)


def complete_text_splits(splits: dict, origins: dict[str, str], dev_fraction: float,
                         test_fraction: float) -> tuple[dict, str]:
    """Missing dev and test splits from the end of train (test last), each a fraction of its
    text: cut from the end of a single text, or its last whole documents when it has several.
    Returns the splits and a note of where each came from, for the run's config."""
    notes = [f"{split}: {origin}" for split, origin in origins.items()]
    missing = [(split, fraction) for split, fraction in (("dev", dev_fraction), ("test", test_fraction))
               if split not in splits]
    if not missing:
        return splits, "; ".join(notes)
    documents = splits["train"]
    if len(documents) == 1:
        kept, *held = cut_from_end(documents[0], *(fraction for _, fraction in missing))
        splits["train"], held = [kept], [[document] for document in held]
        how = "of train's text, cut from its end"
    else:
        total, held = sum(len(d.text) for d in documents), []
        for _, fraction in reversed(missing):  # test first, from the very end
            part = [documents.pop()]
            while len(documents) > len(missing) and sum(len(d.text) for d in part) < fraction * total:
                part.insert(0, documents.pop())
            held.insert(0, part)
        if not documents:
            raise DataError(f"train has {len(held)} document(s): too few to hold out dev and test")
        splits["train"] = documents
        how = "of train's text: its last documents"
    for (split, fraction), part in zip(missing, held):
        splits[split] = part
        notes.append(f"{split}: {fraction:.0%} {how}")
    return splits, "; ".join(notes)
