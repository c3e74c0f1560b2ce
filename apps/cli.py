"""The `rnnapps` command line (see DESIGN.md). Each subcommand hands off to the app's module."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import sys
import traceback

from apps.registry import APPS

EXPORT_FORMATS = ("savedmodel", "onnx", "tflite", "all")
RUNTIMES = ("savedmodel", "onnx", "tflite")
SOURCES = (
    ("synthetic[?size=N&seed=S]", "the app's built-in generator (no network)"),
    ("tfds:NAME[/CONFIG]", "a TensorFlow Datasets dataset (network on first use), e.g. tfds:imdb_reviews"),
    ("DIR", "a local directory in the app's plain format: train.tsv, dev.tsv, test.tsv with text<TAB>label "
            "(sentiment) or source<TAB>target (translation)"),
)


class UsageError(Exception):
    """A command that cannot run as asked (one line, exit 1)."""


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    fmt = argparse.ArgumentDefaultsHelpFormatter
    parser = argparse.ArgumentParser(prog="rnnapps", description="Recurrent-network apps for Keras 3.",
                                     parents=[common], formatter_class=fmt)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("list", parents=[common], help="apps, cells, data sources", formatter_class=fmt)

    p = sub.add_parser("demo", parents=[common], formatter_class=fmt,
                       help="train on built-in data and show results")
    p.add_argument("app", nargs="?", default="sentiment", choices=list(APPS))
    p.add_argument("--out", help="run directory (default: runs/demo-APP-TIMESTAMP)")

    p = sub.add_parser("train", parents=[common], formatter_class=fmt, help="train an app into a run directory")
    p.add_argument("app", choices=list(APPS))
    p.add_argument("--data", help="data source (default: the config's data.source, 'synthetic')")
    p.add_argument("--out", required=True, help="run directory; rerun the same command to resume")
    p.add_argument("--config", action="append", default=[], metavar="FILE",
                   help="YAML config file(s); the rightmost wins")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                   help="override a config key, e.g. --set model.units=128")
    p.add_argument("--epochs", type=int, help="shortcut for --set train.epochs=N")
    p.add_argument("--strategy", default="default", choices=["default", "mirrored", "multiworker"])

    p = sub.add_parser("evaluate", parents=[common], formatter_class=fmt, help="evaluate a run on a split")
    p.add_argument("run")
    p.add_argument("--data", help="data source (default: the one the run trained on)")
    p.add_argument("--split", default="test")
    p.add_argument("--json", action="store_true", help="print only JSON on stdout")
    p.add_argument("--beam", type=int, default=0, metavar="K", help="translation: beam search of width K (0: greedy)")

    p = sub.add_parser("predict", parents=[common], formatter_class=fmt,
                       help="predict with a run, or with an export directory through one runtime")
    p.add_argument("run", help="a run directory, or an export directory (with --runtime)")
    p.add_argument("--runtime", choices=RUNTIMES,
                   help="for an export directory: the runtime to use (default savedmodel)")
    p.add_argument("inputs", nargs="*", metavar="INPUT")
    p.add_argument("--file", help="read inputs from a file, one per line")
    p.add_argument("--json", action="store_true", help="print one JSON object per input on stdout")
    p.add_argument("--beam", type=int, default=0, metavar="K", help="translation: beam search of width K (0: greedy)")
    p.add_argument("--plot", action="store_true", help="translation: write attention maps to RUN/plots/")

    p = sub.add_parser("tune", parents=[common], formatter_class=fmt, help="hyperparameter search (not available yet)")
    p.add_argument("app", choices=list(APPS))
    p.add_argument("--data")
    p.add_argument("--out")
    p.add_argument("--max-trials", type=int, default=10)
    p.add_argument("--algorithm", default="random", choices=["random", "bayesian", "hyperband"])

    p = sub.add_parser("export", parents=[common], formatter_class=fmt, help="export a run for serving")
    p.add_argument("run")
    p.add_argument("--format", required=True, choices=EXPORT_FORMATS)
    p.add_argument("--out", required=True, help="export directory")
    return parser


def _app_of_run(run: str):
    """The app module that trained `run`, from the `app` key of its config.yaml."""
    import yaml

    from apps.config import ConfigError
    from apps.registry import get_app

    config = os.path.join(run, "config.yaml")
    if not os.path.exists(config):
        if not os.path.isdir(run):
            raise ConfigError(f"run directory {run} does not exist")
        raise ConfigError(f"{run} is not a run directory (no config.yaml)")
    with open(config, encoding="utf-8") as f:
        name = (yaml.safe_load(f) or {}).get("app")
    if not name:
        raise ConfigError(f"{config} does not name its app (key 'app')")
    return get_app(name)


def cmd_list(args) -> None:
    print("apps:")
    for name, (_, description) in APPS.items():
        print(f"  {name:<12} {description}")
    from layers.cells import CELLS

    print("cells (model.cell):")
    for name, (_, description) in CELLS.items():
        print(f"  {name:<14} {description}")
    print("data sources (--data):")
    for name, description in SOURCES:
        print(f"  {name:<26} {description}")


def cmd_train(args) -> None:
    from apps.config import load_config
    from apps.registry import get_app

    app = get_app(args.app)
    overrides = list(args.overrides)
    if args.data is not None:
        overrides.append(f"data.source={args.data}")
    if args.epochs is not None:
        overrides.append(f"train.epochs={args.epochs}")
    config = load_config(app.Config, files=args.config, overrides=overrides)
    metrics = app.train(config, args.out, strategy=args.strategy)
    print(f"test {_format_metrics(metrics)}")
    print(f"run directory: {args.out}")


def cmd_demo(args) -> None:
    from apps.registry import get_app

    app = get_app(args.app)
    out = args.out or os.path.join("runs", f"demo-{app.NAME}-{datetime.datetime.now():%Y%m%d-%H%M%S}")
    metrics = app.train(app.demo_config(), out)
    print(f"\ntest {_format_metrics(metrics)}")
    print("predictions:")
    for row in app.predict(out, list(app.DEMO_INPUTS)):
        print(f"  {_format_prediction(row)}")
    print(f"run directory: {out}")


def _format_metrics(metrics: dict) -> str:
    return "  ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items())


def _format_prediction(row: dict) -> str:
    if "translation" in row:
        plot = f"   [{row['plot']}]" if "plot" in row else ""
        return f"{row['text']}  ->  {row['translation']}{plot}"
    return f"{row['label']:<10} {row['probability']:.3f}  {row['text']}"


def _app_options(app, function: str, args, names=("beam", "plot")) -> dict:
    """The app-specific options the user set, checked against what the app's function takes."""
    import inspect

    accepted = inspect.signature(getattr(app, function)).parameters
    options = {}
    for name in names:
        value = getattr(args, name, None)
        if value:
            if name not in accepted:
                raise UsageError(f"--{name} does not apply to the {app.NAME} app")
            options[name] = value
    return options


def cmd_evaluate(args) -> None:
    app = _app_of_run(args.run)
    metrics = app.evaluate(args.run, source=args.data, split=args.split, **_app_options(app, "evaluate", args))
    if args.json:
        print(json.dumps(metrics))
    else:
        print(f"{args.split} {_format_metrics(metrics)}")


def _read_inputs(path: str) -> list[str]:
    from pipelines.text_files import read_utf8_lines

    if not os.path.isfile(path):
        raise UsageError(f"--file {path} does not exist")
    return [line for line in read_utf8_lines(path) if line.strip()]


def cmd_predict(args) -> None:
    inputs = list(args.inputs) + (_read_inputs(args.file) if args.file else [])
    is_run = os.path.exists(os.path.join(args.run, "config.yaml"))
    if not is_run and (args.runtime or os.path.exists(os.path.join(args.run, "assets.json"))):
        from apps.registry import get_app
        from export.runtimes import read_assets

        app = get_app(read_assets(args.run)["app"])
        rows = app.predict_exported(args.run, args.runtime or "savedmodel", inputs)
    else:
        if args.runtime:
            raise UsageError(f"--runtime needs an export directory (rnnapps export); {args.run} is a run directory")
        app = _app_of_run(args.run)
        rows = app.predict(args.run, inputs, **_app_options(app, "predict", args))
    for row in rows:
        print(json.dumps(row, ensure_ascii=False) if args.json else _format_prediction(row))


def cmd_tune(args) -> None:
    raise UsageError("tune is not available yet: hyperparameter search with keras-tuner is still to be built")


def cmd_export(args) -> None:
    app = _app_of_run(args.run)
    formats = list(app.EXPORT_FORMATS) if args.format == "all" else [args.format]
    missing = [f for f in RUNTIMES if f not in app.EXPORT_FORMATS]
    if args.format == "all" and missing:
        print(f"note: the {app.NAME} app has no {', '.join(missing)} export yet", file=sys.stderr)
    report = app.export(args.run, args.out, formats)
    for runtime, result in report.items():
        if "accuracy_change" in result:
            print(f"{runtime}: accuracy {result['accuracy_float']:.4f} -> {result['accuracy_int8']:.4f} "
                  f"({result['accuracy_change']:+.4f}) on {result['examples']} test examples, "
                  f"{result['bytes'] / 1e6:.2f} MB")
            continue
        worst = max(result["max_abs_diff"].values(), default=0.0)
        extra = f", recurrence as {'/'.join(result['recurrent_ops'])}" if result.get("recurrent_ops") else ""
        print(f"{runtime}: parity ok (largest difference {worst:.2e}), {result['bytes'] / 1e6:.2f} MB{extra}")
    print(f"export directory: {args.out}")


COMMANDS = {"list": cmd_list, "demo": cmd_demo, "train": cmd_train, "evaluate": cmd_evaluate,
            "predict": cmd_predict, "tune": cmd_tune, "export": cmd_export}


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    # predict's inputs may follow its options (`predict DIR --runtime onnx "text"`): argparse
    # leaves such positionals over, and they are taken as inputs here.
    args, extra = parser.parse_known_args(argv)
    if extra and (args.command != "predict" or any(e.startswith("-") for e in extra)):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if extra:
        args.inputs = list(args.inputs) + extra
    if not args.debug:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("rnnapps: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    except Exception as e:  # one line for the user; --debug for the traceback
        if args.debug:
            traceback.print_exc()
        known = type(e).__name__ in ("DataError", "ConfigError", "UsageError", "ExportError")
        lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip() for line in str(e).strip().splitlines()]
        lines = [line for line in lines if line] or [type(e).__name__]
        # Keras wraps an error raised in a layer: "Exception encountered when calling X.call().
        # <the error> Arguments received by X.call(): ...": keep the error.
        wrapped = [i for i, line in enumerate(lines) if line.startswith("Arguments received by")]
        if wrapped and wrapped[0] > 0:
            lines = lines[:wrapped[0]]
        # Our errors lead with what is wrong; TensorFlow's end with it.
        message = lines[0] if known else lines[-1]
        print(f"rnnapps: error: {message if known else f'{type(e).__name__}: {message}'}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
