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
