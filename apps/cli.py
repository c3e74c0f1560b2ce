"""The `rnnapps` command line (see DESIGN.md). Each subcommand hands off to an app (`apps.app.App`);
the command line names none: apps come from the registry and add their own options."""

from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import json
import os
import re
import sys
import traceback

from apps.registry import APPS, DEFAULT_APP

EXPORT_FORMATS = ("savedmodel", "onnx", "tflite", "all")
RUNTIMES = ("savedmodel", "onnx", "tflite")


def _sources() -> list[tuple[str, str]]:
    """The data sources every app takes, and each app's local format (from the registry)."""
    examples = ", ".join(entry.tfds for entry in APPS.values() if entry.tfds)
    return [("synthetic[?size=N&seed=S]", "the app's built-in generator (no network)"),
            ("tfds:NAME[/CONFIG]", f"a TensorFlow Datasets dataset (network on first use), e.g. {examples}"),
            *[(f"DIR ({name})", entry.data) for name, entry in APPS.items()]]


class UsageError(Exception):
    """A command that cannot run as asked (one line, exit 1)."""


def _parser(app=None, app_command: str | None = None) -> argparse.ArgumentParser:
    """The shared parser; `app` adds its own options to `app_command` (evaluate, predict)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    fmt = argparse.HelpFormatter  # defaults are stated in each help text, once
    parser = argparse.ArgumentParser(prog="rnnapps", description="Recurrent-network apps for Keras 3.",
                                     parents=[common], formatter_class=fmt)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("list", parents=[common], help="apps, cells, data sources", formatter_class=fmt)

    p = sub.add_parser("demo", parents=[common], formatter_class=fmt,
                       help="train on built-in data and show results")
    p.add_argument("app", nargs="?", default=DEFAULT_APP, choices=list(APPS), help=f"the app (default: {DEFAULT_APP})")
    p.add_argument("--out", help="run directory (default: runs/demo-APP-TIMESTAMP)")

    p = sub.add_parser("train", parents=[common], formatter_class=fmt, help="train an app into a run directory")
    p.add_argument("app", choices=list(APPS), help="the app to train")
    p.add_argument("--out", required=True, help="run directory; rerun the same command to resume")
    _config_arguments(p)
    p.add_argument("--strategy", default="default", choices=["default", "mirrored", "multiworker"],
                   help="tf.distribute strategy: one device (default), all local devices, or the workers of "
                        "TF_CONFIG")

    p = sub.add_parser("evaluate", parents=[common], formatter_class=fmt, help="evaluate a run on a split")
    p.add_argument("run", help="a run directory")
    p.add_argument("--data", help="data source (default: the one the run trained on)")
    p.add_argument("--split", default="test", choices=("train", "dev", "valid", "test"),
                   help="the split to score; valid is dev (default: test)")
    p.add_argument("--json", action="store_true", help="print only JSON on stdout")
    if app is not None and app_command == "evaluate":
        app.add_arguments(p, "evaluate")

    p = sub.add_parser("predict", parents=[common], formatter_class=fmt,
                       help="predict with a run, or with an export directory through one runtime")
    p.add_argument("run", help="a run directory, or an export directory (with --runtime)")
    p.add_argument("--runtime", choices=RUNTIMES,
                   help="for an export directory: the runtime to use (default: savedmodel)")
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="inputs to predict (or --file)")
    p.add_argument("--file", help="read inputs from a file, one per line ('-': standard input, also read "
                                  "when no input is given and stdin is not a terminal)")
    p.add_argument("--json", action="store_true", help="print one JSON object per input on stdout")
    if app is not None and app_command == "predict":
        app.add_arguments(p, "predict")

    p = sub.add_parser("tune", parents=[common], formatter_class=fmt,
                       help="hyperparameter search with keras-tuner on the dev split")
    p.add_argument("app", choices=list(APPS), help="the app to tune")
    _config_arguments(p)  # the base config of every trial (hyperband: --epochs is the most)
    p.add_argument("--out", required=True, help="tuning directory (the same command resumes it)")
    p.add_argument("--max-trials", type=int, default=10, help="trials (default: 10)")
    p.add_argument("--algorithm", default="random", choices=["random", "bayesian", "hyperband"],
                   help="search algorithm (default: random)")
    p.add_argument("--objective", help="the dev metric to optimise, e.g. val_loss (default: the app's, "
                                       "`rnnapps list` names it)")
    p.add_argument("--space", metavar="FILE", help="YAML: config keys -> [choices] or {min, max, log}, added to "
                                                   "or replacing the app's space (null: leave a key out)")
    p.add_argument("--chief", metavar="HOST:PORT", help="distributed: serve the search to workers")
    p.add_argument("--worker", metavar="HOST:PORT", help="distributed: run trials for the chief at HOST:PORT")
    p.add_argument("--worker-id", help="distributed: this worker's name (default: its process id)")

    p = sub.add_parser("export", parents=[common], formatter_class=fmt, help="export a run for serving")
    p.add_argument("run", help="a finished run directory")
    p.add_argument("--format", required=True, choices=EXPORT_FORMATS,
                   help="one format, or all the formats the app exports")
    p.add_argument("--out", required=True, help="export directory")
    p.add_argument("--fused", action=argparse.BooleanOptionalAction, default=True,
                   help="recurrent layers as the runtimes' fused ops where they have one and parity holds "
                        "(ONNX LSTM/GRU nodes, LiteRT UNIDIRECTIONAL_SEQUENCE_LSTM; default); --no-fused: loops")
    return parser


def _app_name_of(path: str) -> str:
    """The app that made a run directory (config.yaml) or an export directory (assets.json),
    read without importing TensorFlow."""
    import yaml

    from apps.config import ConfigError

    config, assets = os.path.join(path, "config.yaml"), os.path.join(path, "assets.json")
    if os.path.exists(config):
        with open(config, encoding="utf-8") as f:
            name = (yaml.safe_load(f) or {}).get("app")
        where = config
    elif os.path.exists(assets):
        from export.assets import read_assets

        name, where = read_assets(path)["app"], assets
    elif not os.path.isdir(path):
        raise ConfigError(f"run directory {path} does not exist")
    else:
        raise ConfigError(f"{path} is not a run directory (no config.yaml) nor an export directory (no assets.json)")
    if name not in APPS:
        raise ConfigError(f"{where} names the app {name!r}, which this rnnapps does not have")
    return name


def cmd_list(args) -> None:
    print("apps:")
    for name, entry in APPS.items():
        print(f"  {name:<12} {entry.description}")
    print("cells (model.cell):")
    for name, description in _cell_descriptions().items():
        print(f"  {name:<14} {description}")
    print("data sources (--data):")
    for name, description in _sources():
        print(f"  {name:<26} {description}")


def _cell_descriptions() -> dict[str, str]:
    """layers/cell_catalog.py, read as a file of its own: importing it through the `layers`
    package would load TensorFlow (`import layers` registers every layer with Keras)."""
    import importlib.util

    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "layers", "cell_catalog.py")
    spec = importlib.util.spec_from_file_location("rnnapps_cell_catalog", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.DESCRIPTIONS


def _config_arguments(parser) -> None:
    """The options that make an app's config (`_config_of`): train's, and tune's base config."""
    parser.add_argument("--data", help="data source (default: the config's data.source, 'synthetic'); see "
                                       "rnnapps list")
    parser.add_argument("--config", action="append", default=[], metavar="FILE",
                        help="YAML config file(s); the rightmost wins")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                        help="override a config key, e.g. --set model.units=128")
    parser.add_argument("--epochs", type=int, help="shortcut for --set train.epochs=N")


def _config_of(args, app):
    """The app's config from `--config` files, `--set`, and the `--data` / `--epochs` shortcuts."""
    from apps.config import load_config

    overrides = list(args.overrides)
    if args.data is not None:
        overrides.append(f"data.source={args.data}")
    if args.epochs is not None:
        overrides.append(f"train.epochs={args.epochs}")
    return load_config(app.config_class, files=args.config, overrides=overrides)


def cmd_train(args, app) -> None:
    metrics = app.train(_config_of(args, app), args.out, strategy=args.strategy)
    print(f"test {_format_metrics(metrics)}")
    print(f"run directory: {args.out}")


def cmd_demo(args, app) -> None:
    out = args.out or os.path.join("runs", f"demo-{app.name}-{datetime.datetime.now():%Y%m%d-%H%M%S}")
    config = app.demo_config()
    metrics = app.train(config, out)
    print(f"\ntest {_format_metrics(metrics)}")
    print("predictions:")
    for row in app.predict(out, list(app.demo_inputs)):
        print(f"  {app.format_prediction(row)}")
    print(f"trained: {app.describe(out)}")
    print(f"run directory: {out}\nnext:\n  rnnapps predict {out} {json.dumps(app.demo_inputs[0])}\n"
          f"  rnnapps evaluate {out} --split dev\n  rnnapps export {out} --format all --out exports/{app.name}\n"
          f"  rnnapps train {app.name} --config {os.path.join(out, 'config.yaml')} --set train.epochs="
          f"{2 * config.train.epochs} --out runs/{app.name}-longer")


def _format_metrics(metrics: dict) -> str:
    return "  ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items())


def _app_options(app, args) -> dict:
    """The values of the options the app added to this command."""
    probe = argparse.ArgumentParser(add_help=False)
    app.add_arguments(probe, args.command)
    return {name: getattr(args, name) for name in vars(probe.parse_args([]))}


def cmd_evaluate(args, app) -> None:
    split = "dev" if args.split == "valid" else args.split
    metrics = app.evaluate(args.run, source=args.data, split=split, **_app_options(app, args))
    if args.json:
        print(json.dumps(metrics))
    else:
        print(f"{args.split} {_format_metrics(metrics)}")


def _read_inputs(path: str) -> list[str]:
    from pipelines.text_files import read_utf8_lines

    if path == "-":
        return [line.rstrip("\r\n") for line in sys.stdin if line.strip()]
    if not os.path.isfile(path):
        raise UsageError(f"--file {path} does not exist")
    return [line for line in read_utf8_lines(path) if line.strip()]


def cmd_predict(args, app) -> None:
    inputs = list(args.inputs) + (_read_inputs(args.file) if args.file else [])
    options = _app_options(app, args)
    if not (inputs or args.file or app.options_give_inputs(options) or sys.stdin.isatty()):
        inputs = _read_inputs("-")  # `echo "a fine film" | rnnapps predict RUN`
    if os.path.exists(os.path.join(args.run, "config.yaml")):
        if args.runtime:
            raise UsageError(f"--runtime needs an export directory (rnnapps export); {args.run} is a run directory")
        rows = app.predict(args.run, inputs, **options)
    else:
        rows = app.predict_export(args.run, args.runtime or "savedmodel", inputs, **options)
        if not args.json:  # which run answered
            from export.assets import read_assets

            run = read_assets(args.run).get("run", {})
            print(f"(export of run {run.get('path', '?')}, model.keras {run.get('model_sha256', '?')[:12]})",
                  file=sys.stderr)
    for row in rows:
        print(json.dumps(row, ensure_ascii=False) if args.json else app.format_prediction(row))


def cmd_tune(args, app) -> None:
    from apps.tuning import tune

    tune(app, _config_of(args, app), args.out, max_trials=args.max_trials, algorithm=args.algorithm,
         objective=args.objective, space_file=args.space, chief=args.chief, worker=args.worker,
         worker_id=args.worker_id)


def cmd_export(args, app) -> None:
    formats = list(app.formats) if args.format == "all" else [args.format]
    missing = [f for f in RUNTIMES if f not in app.formats]
    if args.format == "all" and missing:
        print(f"note: the {app.name} app has no {', '.join(missing)} export yet", file=sys.stderr)
    report = app.export(args.run, args.out, formats, fused=args.fused)
    for runtime, result in report.items():
        if "accuracy_change" in result:
            print(f"{runtime}: accuracy {result['accuracy_float']:.4f} -> {result['accuracy_int8']:.4f} "
                  f"({result['accuracy_change']:+.4f}) on {result['examples']} test examples, "
                  f"{result['bytes'] / 1e6:.2f} MB")
            continue
        worst = max(result["max_abs_diff"].values(), default=0.0)
        extra = f", recurrence as {'/'.join(result['recurrent_ops'])}" if result.get("recurrent_ops") else ""
        print(f"{runtime}: parity ok (largest difference {worst:.2e}), {result['bytes'] / 1e6:.2f} MB{extra}")
        if result.get("fused_fallback"):
            print(f"{runtime}: {result['fused_fallback']}", file=sys.stderr)
    print(f"export directory: {args.out}")


COMMANDS = {"demo": cmd_demo, "train": cmd_train, "evaluate": cmd_evaluate,
            "predict": cmd_predict, "tune": cmd_tune, "export": cmd_export}


def _import_tensorflow_quietly() -> None:
    """Imports TensorFlow with its C++ start-up lines (absl logs "before InitializeLog", which
    TF_CPP_MIN_LOG_LEVEL does not reach) sent nowhere, and its Python loggers and warnings down
    to errors: a command prints its results and its own messages. `--debug` keeps everything."""
    import warnings

    from export.stderr import silenced_stderr

    with silenced_stderr():
        import tensorflow as tf
    tf.get_logger().setLevel("ERROR")
    import absl.logging

    absl.logging.set_verbosity(absl.logging.ERROR)
    warnings.filterwarnings("ignore", module=r"(tensorflow|keras|tf2onnx)(\.|$)")


def _app_for(args):
    """The app a command works with: named (train, demo, tune) or that made the run or export."""
    from apps.registry import get_app

    return get_app(args.app if hasattr(args, "app") else _app_name_of(args.run))


def _parse(parser: argparse.ArgumentParser, argv, app=None):
    # predict's inputs may follow its options (`predict DIR --runtime onnx "text"`): argparse
    # leaves such positionals over, and they are taken as inputs here.
    args, extra = parser.parse_known_args(argv)
    if extra and (args.command != "predict" or any(e.startswith("-") for e in extra)):
        options = f" (the {app.name} app has no such option)" if app is not None and extra[0].startswith("-") else ""
        raise UsageError(f"unrecognized arguments: {' '.join(extra)}{options}; see rnnapps {args.command} --help")
    if extra:
        args.inputs = list(args.inputs) + extra
    return args


def main(argv: list[str] | None = None) -> int:
    # First without any app's options (they depend on the run) and without --help (so that the
    # help of `predict RUN --help` lists the options of RUN's app), then with them.
    argv = list(sys.argv[1:] if argv is None else argv)
    helping = [a for a in argv if a in ("-h", "--help")]
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            args, _ = _parser().parse_known_args([a for a in argv if a not in helping])
    except SystemExit:  # no command, or one missing what it needs: argparse says so (or helps)
        _parser().parse_args(argv)
        raise
    if helping and (args.command not in ("evaluate", "predict") or not os.path.isdir(args.run)):
        _parser().parse_args(argv)  # the shared help, without TensorFlow: no app adds options here
    if args.command == "list":
        cmd_list(args)  # no TensorFlow either
        return 0
    if not args.debug:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        _import_tensorflow_quietly()
    try:
        app = _app_for(args)
        args = _parse(_parser(app, args.command), argv, app)
        COMMANDS[args.command](args, app)
    except KeyboardInterrupt:
        print("rnnapps: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    except Exception as e:  # one line for the user; --debug for the traceback
        if args.debug:
            traceback.print_exc()
        from apps.config import ConfigError
        from export import ExportError
        from pipelines.errors import DataError

        known = isinstance(e, (DataError, ConfigError, UsageError, ExportError))
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
