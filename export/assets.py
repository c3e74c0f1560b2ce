"""`DIR/assets.json`: what a runtime without TensorFlow needs beside an exported model, for
every app: a schema version, the app, the run it came from, the preprocessing settings
(vocabularies, tokenizer, lengths, ids of special tokens), and the inputs and outputs of each
exported file. One writer and one reader."""

from __future__ import annotations

import hashlib
import json
import os
import pathlib

from export import ExportError

SCHEMA_VERSION = 1
FILE = "assets.json"


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_assets(directory: str | os.PathLike, app: str, run: dict, preprocessing: dict, files: dict,
                 **extra) -> dict:
    """Writes `directory/assets.json` atomically and returns what it wrote.

    Args:
        app: the app's name (how `rnnapps predict DIR` finds its client).
        run: where the export came from, e.g. {"path": ..., "model_sha256": ...}.
        preprocessing: the preprocessor's settings (`assets()` of `pipelines.text_preprocessors`).
        files: exported file or signature -> {"inputs": {...}, "outputs": {...}} or a description.
        extra: app-specific sections (streaming states, decoding lengths...).
    """
    content = {"schema_version": SCHEMA_VERSION, "app": app, "run": run, "files": files, **preprocessing, **extra}
    path = pathlib.Path(directory) / FILE
    tmp = path.with_name(f".{FILE}.tmp")
    tmp.write_text(json.dumps(content, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return content


def read_assets(export_dir: str | os.PathLike) -> dict:
    """`DIR/assets.json`, with a clear error if the directory is not a (complete, known) export."""
    export_dir = pathlib.Path(export_dir)
    path = export_dir / FILE
    if not export_dir.is_dir():
        raise ExportError(f"export directory {export_dir} does not exist")
    if not path.exists():
        raise ExportError(f"{export_dir} is not an export directory (no {FILE})")
    try:
        assets = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ExportError(f"{path} is corrupt: {e}") from None
    if not isinstance(assets, dict) or "app" not in assets:
        raise ExportError(f"{path} is corrupt: it does not name its app")
    version = assets.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ExportError(f"{path} has schema version {version!r}; this rnnapps reads version {SCHEMA_VERSION}: "
                          "export the run again")
    return assets
