"""What single cells of a character model track (Karpathy, Johnson & Fei-Fei, 2015, "Visualizing
and understanding recurrent networks"): the model runs over a text one character at a time, each
cell's memory (an LSTM's c, or the state of a cell that has one) is squashed by tanh, and cells
are ranked by their correlation with simple features of the text; a page colours every
character by one cell (-1 red ... +1 blue).

Cells are numbered across layers: layer 0's units first, then layer 1's, ...
"""

from __future__ import annotations

import html
import pathlib

import numpy as np
import tensorflow as tf

from apps.config import ConfigError
from apps.rundir import atomic_write_bytes
from pipelines.char_text import Document

OPENING, CLOSING = "([{", ")]}"
MAX_CHARACTERS = 20000  # of --text: the view runs a step per character
PNG_CHARACTERS = 2000  # drawn in the PNG (the HTML page has them all)
TOP = 3  # cells shown per feature


def text_features(text: str) -> dict[str, np.ndarray]:
    """Per character, after reading it: inside a double-quoted string (0/1), bracket depth, column
    in the line, indentation (leading spaces) of the line."""
    quote, depth, column, indent, at_line_start = 0, 0, 0, 0, True
    rows = []
    for char in text:
        if char == "\n":
            column, indent, at_line_start = 0, 0, True
        else:
            column += 1
            if at_line_start and char == " ":
                indent += 1
            else:
                at_line_start = False
        if char == '"':
            quote = 1 - quote
        elif not quote and char in OPENING:
            depth += 1
        elif not quote and char in CLOSING:
            depth = max(depth - 1, 0)
        rows.append((quote, depth, column, indent))
    values = np.array(rows, np.float32).reshape(-1, 4)
    return {name: values[:, i] for i, name in enumerate(("inside_quotes", "bracket_depth", "line_position",
                                                          "indentation"))}


def memory_states(generator, ids: np.ndarray) -> np.ndarray:
    """tanh of every cell's memory after each character: (time, cells)."""
    names = list(generator.state_sizes)
    layers = sorted({name.split("_")[0] for name in names})
    # per layer, its second state where it has two (an LSTM's c), else its only one
    memory = [max(i for i, n in enumerate(names) if n.startswith(f"{layer}_")) for layer in layers]

    @tf.function
    def trace(ids):
        def body(states, char_id):
            return tuple(generator.cell_step(char_id[None], list(states))[1])
        return tf.scan(body, ids, initializer=tuple(generator.zero_states(1)))

    states = trace(tf.constant(ids, tf.int32))
    return np.tanh(np.concatenate([states[i].numpy()[:, 0, :] for i in memory], axis=-1))


def rank_cells(values: np.ndarray, features: dict[str, np.ndarray], top: int = TOP) -> dict[str, list]:
    """Per feature, the `top` cells by |Pearson correlation|: [(cell, r), ...]; a feature
    that never varies in the text is left out."""
    centred = values - values.mean(axis=0)
    spread = np.sqrt((centred ** 2).sum(axis=0)) + 1e-12
    ranking = {}
    for name, feature in features.items():
        f = feature - feature.mean()
        if not f.any():
            continue
        r = (centred * f[:, None]).sum(axis=0) / spread / np.sqrt((f ** 2).sum())
        best = np.argsort(-np.abs(r))[:top]
        ranking[name] = [(int(c), round(float(r[c]), 4)) for c in best]
    return ranking


def colour(value: float) -> str:
    """-1 red, 0 white, +1 blue."""
    v = float(np.clip(value, -1.0, 1.0))
    fade = int(round(255 * (1 - abs(v))))
    return f"rgb(255,{fade},{fade})" if v < 0 else f"rgb({fade},{fade},255)"


def html_page(text: str, values: np.ndarray, title: str) -> str:
    """One `<span class="c">` per character, its background the cell's value."""
    spans = []
    for char, value in zip(text, values):
        shown = "\u21b5" if char == "\n" else html.escape(char)
        spans.append(f'<span class="c" style="background:{colour(value)}" title="{value:+.3f}">{shown}</span>'
                     + ("<br>\n" if char == "\n" else ""))
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>\n"
            "<style>body{font-family:monospace;white-space:pre;line-height:1.4}</style></head>\n"
            f"<body><h3>{html.escape(title)}</h3>\n{''.join(spans)}\n</body></html>\n")


def png_image(text: str, values: np.ndarray, title: str) -> bytes:
    """The first PNG_CHARACTERS characters as a grid of coloured cells with the characters on top."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines, row, col = [[]], 0, 0
    for char, value in zip(text[:PNG_CHARACTERS], values):
        lines[-1].append((char, value))
        if char == "\n":
            lines.append([])
    width = min(max((len(line) for line in lines), default=1), 120)
    grid = np.full((len(lines), width), np.nan)
    fig, ax = plt.subplots(figsize=(max(width * 0.11, 4), max(len(lines) * 0.2, 1.5) + 0.5))
    for row, line in enumerate(lines):
        for col, (char, value) in enumerate(line[:width]):
            grid[row, col] = value
            if char.strip():
                ax.text(col, row, char, ha="center", va="center", fontsize=6, family="monospace")
    ax.imshow(grid, cmap="bwr_r", vmin=-1, vmax=1, aspect="auto", interpolation="nearest")
    ax.set_axis_off()
    ax.set_title(title, fontsize=8)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def view(generator, document: Document, out_dir: pathlib.Path, cell: int | None = None) -> dict:
    """Writes `out_dir/activations.html` and `.png` for `cell` (default: the cell that tracks
    bracket depth best, else the first ranked) and returns the row `predict` prints."""
    text = document.text[:MAX_CHARACTERS]
    ids = generator.preprocessor.encode(text)
    values = memory_states(generator, np.array(ids, np.int32))
    ranking = rank_cells(values, text_features(text))
    if cell is None:
        cell = next(iter(ranking.get("bracket_depth", []) or next(iter(ranking.values()), [(0, 0.0)])))[0]
    if not 0 <= cell < values.shape[1]:
        raise ConfigError(f"--cell must be in [0, {values.shape[1] - 1}], received {cell}")
    title = f"cell {cell} of {values.shape[1]} on {document.where}"
    out_dir.mkdir(parents=True, exist_ok=True)
    page, image = out_dir / "activations.html", out_dir / "activations.png"
    atomic_write_bytes(page, html_page(text, values[:, cell], title).encode("utf-8"))
    atomic_write_bytes(image, png_image(text, values[:, cell], title))
    return {"text": document.where, "cell": cell, "cells": int(values.shape[1]), "characters": len(text),
            "top_cells": {name: [{"cell": c, "r": r} for c, r in cells] for name, cells in ranking.items()},
            "html": str(page), "png": str(image)}


def describe(row: dict) -> str:
    lines = [f"{row['characters']} characters of {row['text']}, {row['cells']} cells; coloured by cell {row['cell']}:",
             f"  {row['html']}", f"  {row['png']}", "cells that track (Pearson r):"]
    for name, cells in row["top_cells"].items():
        lines.append(f"  {name:<14} " + "  ".join(f"cell {c['cell']} ({c['r']:+.2f})" for c in cells))
    return "\n".join(lines)
