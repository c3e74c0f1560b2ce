"""Character-level text: a built-in corpus (no download) or a local file, as documents of ids.

The built-in corpus is the documentation of Python's standard library as installed (module,
class and function docstrings of at least 200 characters, about 340,000 characters of English
prose and examples in 470 documents on Python 3.11); the same Python gives the same text.

Example:
>>> docs = read_documents_text("one\\n\\ntwo words\\n\\n\\nthree")
>>> docs
['one', 'two words', 'three']
>>> vocab = char_vocabulary(docs)
>>> encode_documents(["owe"], vocab)
[[3, 6, 2]]
"""

from __future__ import annotations

import importlib
import inspect
import os
import re

from pipelines.errors import DataError
from pipelines.vocabulary import Vocabulary

BUILTIN_MODULES = (
    "argparse", "collections", "dataclasses", "functools", "itertools", "json", "logging", "pathlib", "re",
    "string", "textwrap", "typing", "unittest", "email", "http.client", "urllib.request", "csv", "datetime",
    "decimal", "fractions", "statistics", "random", "heapq", "bisect", "contextlib", "enum", "abc", "io", "os",
    "shutil", "subprocess", "threading", "queue", "asyncio", "socket", "ssl", "zipfile", "tarfile", "gzip",
    "pickle", "copy", "pprint", "difflib", "inspect", "ast", "tokenize", "calendar", "hashlib", "hmac",
    "secrets", "uuid", "sqlite3", "xml.etree.ElementTree", "html.parser", "configparser", "optparse", "getopt",
    "tempfile", "glob", "fnmatch", "locale", "gettext", "codecs", "unicodedata", "struct", "array", "weakref",
    "types", "operator", "numbers", "math", "cmath", "sched", "selectors", "signal", "mailbox", "mimetypes",
    "base64", "binascii", "quopri", "smtplib", "poplib", "imaplib", "ftplib", "wave", "colorsys", "pdb",
    "timeit", "trace", "doctest", "traceback", "warnings", "zipimport", "pkgutil", "runpy", "importlib",
)
MIN_DOCUMENT_CHARS = 200


def builtin_documents() -> list[str]:
    """The standard library's longer docstrings, in a fixed order, without repeats."""
    documents, seen = [], set()
    for name in BUILTIN_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:  # a Python built without it (e.g. no sqlite3)
            continue
        members = [getattr(module, attr, None) for attr in sorted(dir(module)) if not attr.startswith("_")]
        for obj in [module, *members]:
            own = obj is module or (inspect.isclass(obj) or inspect.isfunction(obj)) and \
                getattr(obj, "__module__", None) == module.__name__
            doc = inspect.getdoc(obj) if own else None
            if doc and len(doc) >= MIN_DOCUMENT_CHARS and doc not in seen:
                seen.add(doc)
                documents.append(doc)
    return documents


def read_documents_text(text: str) -> list[str]:
    """Paragraphs (separated by blank lines) as documents."""
    return [p.strip("\n") for p in re.split(r"\n\s*\n", text) if p.strip()]


def read_documents(path: str | os.PathLike) -> list[str]:
    """A UTF-8 text file's paragraphs as documents."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except UnicodeDecodeError as e:
        line = text_line_of(path, e.start)
        raise DataError(f"{path}:{line}: not valid UTF-8") from None
    documents = read_documents_text(text)
    if not documents:
        raise DataError(f"{path}: no text")
    return documents


def text_line_of(path, byte_offset: int) -> int:
    with open(path, "rb") as f:
        return f.read(byte_offset).count(b"\n") + 1


def char_vocabulary(documents: list[str], min_count: int = 1) -> Vocabulary:
    """Characters seen `min_count` times, most frequent first (rarer ones become [UNK])."""
    return Vocabulary.build((list(d) for d in documents), min_count=min_count)


def encode_documents(documents: list[str], vocab: Vocabulary) -> list[list[int]]:
    return [vocab.encode(list(d)) for d in documents]
