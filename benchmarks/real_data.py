"""Shared by the `*_real.py` benchmarks: their command line, training our app with its defaults
(plus `--set` overrides) into a run directory, and the results table."""

from __future__ import annotations

import argparse
import tempfile
import time

from apps.config import load_config


def parse_args(doc: str, data_help: str, argv=None, extra=None) -> argparse.Namespace:
    """The command line of a `*_real.py` benchmark; `extra(parser)` adds its own options."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", help=data_help)
    parser.add_argument("--split", default="test", choices=["test", "dev"], help="where to score (tune on dev)")
    parser.add_argument("--set", action="append", default=[], dest="overrides", metavar="KEY=VALUE")
    parser.add_argument("--out", help="run directory (default: a temporary one)")
    parser.add_argument("--no-baselines", action="store_true", help="only our model (when tuning on dev)")
    if extra is not None:
        extra(parser)
    return parser.parse_args(argv)


def config_and_splits(app, args):
    """The app's config for `args.data` (with the overrides) and its loaded splits."""
    config = load_config(app.config_class, overrides=[f"data.source={args.data}", *args.overrides])
    splits, _ = app.load_splits(config)
    return config, splits


def train_ours(app, config, args, callbacks=(), **evaluate_options) -> tuple[str, dict]:
    """Trains `app` on `config` and scores `args.split`: (row name, metrics with `seconds`)."""
    out = args.out or tempfile.mkdtemp(prefix=f"rnnapps-{app.name}-")
    start = time.perf_counter()
    app.train(config, out, callbacks=callbacks)
    seconds = time.perf_counter() - start
    metrics = app.evaluate(out, split=args.split, **evaluate_options)
    print(f"run directory: {out}", flush=True)
    name = f"rnnapps {app.name} (defaults)" + (f" {' '.join(args.overrides)}" if args.overrides else "")
    return name, {**metrics, "seconds": seconds}


def print_table(results: dict[str, dict], columns: dict[str, str]) -> None:
    """A Markdown table: one row per model, `columns` maps metric keys to headers."""
    print("| model | " + " | ".join(columns.values()) + " | time (s) |")
    print("|---|" + "---|" * (len(columns) + 1))
    for name, r in results.items():
        cells = [f"{r[key]:.4f}" if isinstance(r.get(key), float) else str(r.get(key, "")) for key in columns]
        print(f"| {name} | " + " | ".join(cells) + f" | {r['seconds']:.0f} |")
