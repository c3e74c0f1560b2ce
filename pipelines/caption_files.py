"""Local captioned images: an `images/` folder and `train.tsv`, `dev.tsv`, `test.tsv` of
`image_file<TAB>caption` (several lines per image allowed; CRLF lines and a UTF-8 BOM are fine).

Every image a row names is checked before training starts, cheaply (its first and last bytes):
a missing file, a path that leaves `images/`, a file that is not a JPEG or PNG (an HTML page
named `.jpg`, random bytes) and a JPEG or PNG cut short are one error naming the file and line.
"""

from __future__ import annotations

import dataclasses
import os

from pipelines.errors import DataError
from pipelines.text_files import find_split_files, read_pairs_tsv

JPEG_START, JPEG_END = b"\xff\xd8\xff", b"\xff\xd9"
PNG_START, PNG_END = b"\x89PNG\r\n\x1a\n", b"IEND\xaeB`\x82"


@dataclasses.dataclass(frozen=True)
class ImageCaptions:
    """One image and every caption of it in a split."""

    image: str | bytes  # a file path, or the encoded image itself (synthetic scenes)
    captions: tuple[str, ...]
    where: str  # "file:line" of its first row, for error messages


def image_kind(head: bytes, tail: bytes) -> str:
    """"jpeg" or "png" from a file's first 8 and last 16 bytes; DataError text otherwise."""
    if head.startswith(JPEG_START):
        # A JPEG ends with its EOI marker (some writers pad a few bytes after it).
        if JPEG_END not in tail:
            raise ValueError("a JPEG cut short (no end-of-image marker)")
        return "jpeg"
    if head.startswith(PNG_START):
        if not tail.endswith(PNG_END):
            raise ValueError("a PNG cut short (no IEND chunk)")
        return "png"
    if head.lstrip()[:1] == b"<":
        raise ValueError("not an image: it looks like HTML or XML text")
    raise ValueError(f"not a JPEG or PNG image (it starts with bytes {head[:4].hex()})")


def check_image_file(path: str, where: str) -> None:
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            f.seek(max(os.path.getsize(path) - 16, 0))
            tail = f.read()
    except FileNotFoundError:
        raise DataError(f"{where}: image {path} does not exist") from None
    except IsADirectoryError:
        raise DataError(f"{where}: {path} is a directory, not an image") from None
    try:
        image_kind(head, tail)
    except ValueError as e:
        raise DataError(f"{where}: {path} is {e}") from None


def read_image_file(path: str, where: str) -> bytes:
    """The bytes of an image file, checked as `check_image_file` does (`where` names its origin)."""
    check_image_file(path, where)
    with open(path, "rb") as f:
        return f.read()


def image_path(images: str, name: str, where: str) -> str:
    """`images/name`, refusing absolute paths and any that leave `images/` (`../x.jpg`)."""
    root = os.path.realpath(images)
    path = os.path.realpath(os.path.join(root, name))
    if os.path.isabs(name) or os.path.commonpath([root, path]) != root:
        raise DataError(f"{where}: image path {name!r} leaves the images/ folder: refused")
    return path


def read_caption_file(path: str, images: str) -> list[ImageCaptions]:
    """The rows of one split file grouped by image, in first-seen order; each image checked."""
    grouped: dict[str, list[str]] = {}
    first: dict[str, str] = {}
    for name, caption, where in read_pairs_tsv(path, ("image_file", "caption")):
        file = image_path(images, name.strip(), where)
        if file not in grouped:
            check_image_file(file, where)
            grouped[file], first[file] = [], where
        grouped[file].append(caption.strip())
    if not grouped:
        raise DataError(f"{path} is empty: the split has no examples")
    return [ImageCaptions(file, tuple(captions), first[file]) for file, captions in grouped.items()]


def read_caption_directory(directory: str, required: str = "train") -> tuple[dict, dict]:
    """(split -> [ImageCaptions], split -> file name) of a directory with `images/` and split files."""
    images = os.path.join(directory, "images")
    if not os.path.isdir(images):
        raise DataError(f"{directory} has no images/ folder (the images that train.tsv, dev.tsv and test.tsv name)")
    files = find_split_files(directory, extensions=(".tsv",), required=required)
    return ({split: read_caption_file(f, images) for split, f in files.items()},
            {split: os.path.basename(f) for split, f in files.items()})


def tfds_image_captions(rows, where: str, encode_image) -> list[ImageCaptions]:
    """ImageCaptions from TensorFlow Datasets rows with an `image` and `captions/text` (as
    coco_captions has them), images encoded by `encode_image(array) -> bytes`; images without a
    non-empty caption are left out."""
    out = []
    for i, row in enumerate(rows):
        if "image" not in row or "text" not in row.get("captions", {}):
            raise DataError(f"{where} has no image and captions/text features (found {sorted(row)})")
        texts = tuple(t.decode("utf-8", "replace").strip() for t in row["captions"]["text"] if t.strip())
        if texts:
            out.append(ImageCaptions(encode_image(row["image"]), texts, f"{where} #{i}"))
    return out
