"""The plots of a run directory: training curves and attention maps (`RUN/plots/`)."""

from __future__ import annotations

import csv

from apps.rundir import RunDir


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    return plt


def plot_history(run: RunDir, metrics=("loss", "accuracy")) -> None:
    """Writes `RUN/plots/training.png`: each metric for training and validation per epoch."""
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    with open(run.history, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return
    epochs = [int(r["epoch"]) + 1 for r in rows]
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.5))
    for ax, name in zip(axes if len(metrics) > 1 else [axes], metrics):
        for prefix, style in (("", "-o"), ("val_", "--s")):
            key = prefix + name
            if key in rows[0]:
                ax.plot(epochs, [float(r[key]) for r in rows], style, label=key)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
        ax.set_title(name)
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    tmp = run.plots / ".training.tmp.png"
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(run.plots / "training.png")


def plot_attention(path, weights, source_tokens, target_tokens) -> None:
    """An attention map: one row per generated token, one column per source token."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(1 + 0.5 * len(source_tokens), 1 + 0.4 * len(target_tokens)))
    ax.imshow(weights, cmap="viridis", vmin=0, vmax=1)
    ax.set_xticks(range(len(source_tokens)), source_tokens, rotation=60, ha="right")
    ax.set_yticks(range(len(target_tokens)), target_tokens)
    ax.set_xlabel("source")
    ax.set_ylabel("output")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_image_attention(path, image, weights, words) -> None:
    """Where a captioner looked for each word: the image (height, width, 3; 0..255) under each
    word's attention (words, grid height, grid width), upsampled, one panel per word."""
    import numpy as np

    plt = _pyplot()
    columns = min(len(words), 5)
    rows = -(-len(words) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(2.2 * columns, 2.4 * rows), squeeze=False)
    height, width = image.shape[:2]
    for ax, word, w in zip(axes.flat, words, weights):
        ax.imshow(np.clip(image, 0, 255).astype("uint8"))
        ax.imshow(w, cmap="gray", alpha=0.6, extent=(0, width, height, 0), interpolation="bilinear")
        ax.set_title(word)
    for ax in axes.flat:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
