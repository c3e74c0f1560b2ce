"""`rnnapps tune`: keras-tuner searches over an app's config keys, for every app alike.

A search space maps config keys to a list of choices or a range, in the config's own names:

    model.units: [64, 128, 256]
    train.learning_rate: {min: 1.0e-4, max: 1.0e-2, log: true}
    model.num_layers: {min: 1, max: 3}          # whole numbers when min and max are

Each app's `search_space()` is the default; `--space FILE` adds keys or replaces them (a key set to
`null` is left out). A trial is a set of `--set` overrides of the base config: it trains the app
into `DIR/trials/<id>/` (a run directory like any other, without test metrics: the search never
sees test) and scores the best epoch's dev metric (`--objective`, default the app's own).

`DIR/keras_tuner/` is keras-tuner's project: the same command run again resumes the search (a
trial cut short resumes its run from the last epoch). A trial that fails (a non-finite dev metric,
a configuration the layers refuse) is recorded with its error and the search goes on. At the end:
a ranked table, `DIR/trials.csv`, and `DIR/best.yaml`, the base config with the best trial's
values, which `rnnapps train APP --config DIR/best.yaml` reproduces.

Distributed tuning is keras-tuner's chief and workers: `--chief HOST:PORT` serves the oracle (it
trains nothing) until the trials are done, then writes the results; each `--worker HOST:PORT
--worker-id ID` asks it for trials and trains them.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import os
import pathlib
import time

import keras_tuner as kt
import yaml

from apps.config import ConfigError, field_names, load_config, to_yaml
from apps.internals import quiet_failed_trials
from apps.rundir import RunDir, atomic_write_text
from apps.training import log

ALGORITHMS = ("random", "bayesian", "hyperband")
LOWER_IS_BETTER = ("loss", "bpc", "perplexity", "error")
TUNER_KEYS = ("tuner/epochs", "tuner/initial_epoch", "tuner/bracket", "tuner/round", "tuner/trial_id")


def load_space(app, path: str | None = None) -> dict:
    """The app's search space, updated by the YAML file at `path`; every key and value checked
    against the app's config (as `--set` checks them)."""
    space = dict(app.search_space())
    if path:
        try:
            with open(path, encoding="utf-8") as f:
                extra = yaml.safe_load(f) or {}
        except FileNotFoundError:
            raise ConfigError(f"--space {path} does not exist") from None
        except yaml.YAMLError as e:
            raise ConfigError(f"--space {path} is not valid YAML: {str(e).splitlines()[0]}") from None
        if not isinstance(extra, dict):
            raise ConfigError(f"--space {path} must map config keys to choices or ranges")
        for key, value in extra.items():
            if value is None:
                space.pop(key, None)
            else:
                space[key] = value
    known = set(field_names(app.config_class))
    for key, spec in space.items():
        if key not in known:
            load_config(app.config_class, overrides=[f"{key}=0"])  # the config's own error, with suggestions
        for value in _values_to_check(key, spec):
            load_config(app.config_class, overrides=[f"{key}={_yaml_value(value)}"])
    if not space:
        raise ConfigError("the search space is empty")
    return space


def _values_to_check(key: str, spec) -> list:
    if isinstance(spec, list):
        if not spec:
            raise ConfigError(f"search space {key}: an empty list of choices")
        if len({type(v) for v in spec}) > 1:
            raise ConfigError(f"search space {key}: choices of one type only, received {spec}")
        return spec
    if isinstance(spec, dict) and {"min", "max"} <= set(spec) and set(spec) <= {"min", "max", "log", "step"}:
        if not spec["min"] < spec["max"]:
            raise ConfigError(f"search space {key}: min must be below max, received {spec}")
        if spec.get("log") and spec["min"] <= 0:
            raise ConfigError(f"search space {key}: a log range needs min > 0, received {spec}")
        return [spec["min"], spec["max"]]
    raise ConfigError(f"search space {key}: a list of choices or {{min, max[, log][, step]}}, received {spec!r}")


def _yaml_value(value) -> str:
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def declare(hp, key: str, spec) -> None:
    """One key of the space as a keras-tuner hyperparameter."""
    if isinstance(spec, list) and isinstance(spec[0], bool):  # Choice would make them 0 and 1
        hp.Boolean(key) if len(set(spec)) == 2 else hp.Fixed(key, spec[0])
    elif isinstance(spec, list):
        hp.Choice(key, spec)
    elif all(isinstance(spec[k], int) and not isinstance(spec[k], bool) for k in ("min", "max")):
        hp.Int(key, spec["min"], spec["max"], step=spec.get("step", 1), sampling="log" if spec.get("log") else "linear")
    else:
        hp.Float(key, float(spec["min"]), float(spec["max"]), step=spec.get("step"),
                 sampling="log" if spec.get("log") else "linear")


def objective_direction(app, name: str | None) -> tuple[str, str]:
    """(metric, "min" | "max"): the app's dev metric by default."""
    monitor, mode = app.monitor
    if not name or name == monitor:
        return monitor, mode
    if not name.startswith("val_"):
        raise ConfigError(f"--objective must be a dev metric (val_...), received {name!r}")
    return name, "min" if any(word in name for word in LOWER_IS_BETTER) else "max"


def trial_overrides(values: dict) -> dict:
    """The config keys of a trial's hyperparameters (hyperband's epochs as train.epochs)."""
    out = {k: v for k, v in values.items() if k not in TUNER_KEYS}
    if "tuner/epochs" in values:
        out["train.epochs"] = int(values["tuner/epochs"])
    return out


def best_of_history(path: pathlib.Path, metric: str, direction: str) -> float:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows or metric not in rows[0]:
        raise ConfigError(f"{path} has no {metric!r} column: --objective must be one of the dev metrics "
                          f"{sorted(k for k in (rows[0] if rows else {}) if k.startswith('val_'))}")
    values = [float(r[metric]) for r in rows]
    if not all(math.isfinite(v) for v in values):
        epoch = next(i for i, v in enumerate(values) if not math.isfinite(v)) + 1
        raise FloatingPointError(f"{metric} is not finite (epoch {epoch})")
    return min(values) if direction == "min" else max(values)


def make_tuner(app, base, space: dict, out: pathlib.Path, algorithm: str, max_trials: int, objective: str | None,
               seed: int):
    """The keras-tuner tuner of a search (its oracle, and a project in `out/keras_tuner`)."""
    quiet_failed_trials()
    metric, direction = objective_direction(app, objective)
    if algorithm not in ALGORITHMS:
        raise ConfigError(f"--algorithm must be one of {ALGORITHMS}, received {algorithm!r}")
    if max_trials < 1:
        raise ConfigError(f"--max-trials must be positive, received {max_trials}")
    hp = kt.HyperParameters()
    for key, spec in space.items():
        declare(hp, key, spec)
    goal = kt.Objective(metric, direction)
    if algorithm == "random":
        oracle = kt.oracles.RandomSearchOracle(goal, max_trials=max_trials, hyperparameters=hp, seed=seed,
                                               tune_new_entries=False)
    elif algorithm == "bayesian":
        oracle = kt.oracles.BayesianOptimizationOracle(goal, max_trials=max_trials, hyperparameters=hp, seed=seed,
                                                       tune_new_entries=False)
    else:
        oracle = kt.oracles.HyperbandOracle(goal, max_epochs=max(base.train.epochs, 2), factor=3,
                                            hyperparameters=hp, seed=seed, tune_new_entries=False)
        oracle.max_trials = max_trials  # the base Oracle stops creating trials there
    return AppTuner(app, base, metric, direction, out, oracle=oracle, directory=str(out), project_name="keras_tuner")


class AppTuner(kt.Tuner):
    """Trials are app runs: `run_trial` trains the trial's config into its own run directory."""

    def __init__(self, app, base, metric, direction, out, **kwargs):
        self.app, self.base, self.metric, self.direction, self.out = app, base, metric, direction, out
        super().__init__(**kwargs)

    def run_trial(self, trial, *args, **kwargs):
        overrides = trial_overrides(trial.hyperparameters.values)
        try:
            config = load_config(self.app.config_class, base=self.base,
                                 overrides=[f"{k}={_yaml_value(v)}" for k, v in overrides.items()])
        except ConfigError as e:
            raise kt.errors.FailedTrialError(str(e)) from None
        run = RunDir(self.out / "trials" / trial.trial_id)
        start = time.perf_counter()
        log(f"{self._position()} (id {trial.trial_id}): "
            + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in overrides.items()))
        try:
            if not run.complete:
                self.app.train(config, run.path, score_test=False)
            score = best_of_history(run.history, self.metric, self.direction)
        except (FloatingPointError, ValueError, ConfigError, ArithmeticError) as e:
            log(f"trial {trial.trial_id} failed: {type(e).__name__}: {str(e).splitlines()[0][:300]}")
            raise kt.errors.FailedTrialError(f"{type(e).__name__}: {e}") from None
        seconds = time.perf_counter() - start
        log(f"trial {trial.trial_id}: {self.metric} {score:.4f} ({seconds:.0f} s)")
        return {self.metric: score, "seconds": seconds}

    def _position(self):
        done = len(getattr(self.oracle, "trials", {})) or "?"  # a worker's client oracle has no count
        total = getattr(self.oracle, "max_trials", None)
        return f"trial {done} of {total}" if total else f"trial {done}"

    def save_model(self, trial_id, model, step=0):  # the trial's run directory holds its model
        pass


@dataclasses.dataclass
class TrialRow:
    trial_id: str
    status: str
    score: float | None
    seconds: float | None
    values: dict
    message: str = ""


def trial_rows(tuner) -> list[TrialRow]:
    """Every trial of the oracle, best first (failed ones last)."""
    metric, direction = tuner.metric, tuner.direction
    rows = []
    for trial in tuner.oracle.trials.values():
        def value(name):
            return trial.metrics.get_best_value(name) if trial.metrics.exists(name) else None
        message = (trial.message or "").strip().splitlines()
        why = message[-1].split("FailedTrialError: ", 1)[-1] if message else ""
        rows.append(TrialRow(trial.trial_id, str(trial.status), value(metric), value("seconds"),
                             trial_overrides(trial.hyperparameters.values), why))
    sign = -1 if direction == "max" else 1
    return sorted(rows, key=lambda r: (r.score is None, sign * (r.score or 0.0), r.trial_id))


def write_results(tuner, app, base, out: pathlib.Path, keys: list[str]) -> list[TrialRow]:
    """`out/trials.csv`, `out/best.yaml` (when a trial completed) and the ranked table on stdout."""
    rows = trial_rows(tuner)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["rank", "trial", "status", tuner.metric, "seconds", *keys, "error"])
    for rank, r in enumerate(rows, 1):
        writer.writerow([rank, r.trial_id, r.status, "" if r.score is None else f"{r.score:.6g}",
                         "" if r.seconds is None else f"{r.seconds:.1f}", *[r.values.get(k, "") for k in keys],
                         r.message])
    atomic_write_text(out / "trials.csv", buffer.getvalue())
    completed = [r for r in rows if r.score is not None]
    if completed:
        best = load_config(app.config_class, base=base,
                           overrides=[f"{k}={_yaml_value(v)}" for k, v in completed[0].values.items()])
        header = (f"# rnnapps tune {app.name}: trial {completed[0].trial_id}, {tuner.metric} "
                  f"{completed[0].score:.6g} (the best of {len(rows)} trials)\n")
        atomic_write_text(out / "best.yaml", header + to_yaml(best))
    print(f"| rank | trial | {tuner.metric} | time (s) | " + " | ".join(keys) + " |")
    print("|---|---|---|---|" + "---|" * len(keys))
    for rank, r in enumerate(rows, 1):
        score = r.status if r.score is None else f"{r.score:.4f}"
        seconds = "" if r.seconds is None else f"{r.seconds:.0f}"
        print(f"| {rank} | {r.trial_id} | {score} | {seconds} | "
              + " | ".join(_show(r.values.get(k, "")) for k in keys) + " |")
    if completed:
        print(f"best: {out / 'best.yaml'}  (rnnapps train {app.name} --config {out / 'best.yaml'} --out RUN)")
    else:
        print("no trial completed: no best.yaml")
    return rows


def _show(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def distributed_environment(chief: str | None, worker: str | None, worker_id: str | None) -> dict:
    """The KERASTUNER_* settings of `--chief HOST:PORT` or `--worker HOST:PORT [--worker-id ID]`."""
    if chief and worker:
        raise ConfigError("--chief and --worker exclude each other: a process is the chief or a worker")
    address = chief or worker
    if not address:
        if worker_id:
            raise ConfigError("--worker-id needs --worker HOST:PORT")
        return {}
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ConfigError(f"expected HOST:PORT, received {address!r}")
    tuner_id = "chief" if chief else f"tuner{worker_id or os.getpid()}"
    return {"KERASTUNER_TUNER_ID": tuner_id, "KERASTUNER_ORACLE_IP": host, "KERASTUNER_ORACLE_PORT": port}


def tune(app, base, out, max_trials: int = 10, algorithm: str = "random", objective: str | None = None,
         space_file: str | None = None, chief: str | None = None, worker: str | None = None,
         worker_id: str | None = None) -> list[TrialRow]:
    """Runs (or resumes) a search; returns the trials, best first (a worker: none)."""
    space = load_space(app, space_file)
    objective_direction(app, objective)  # bad settings fail before anything is written
    environment = distributed_environment(chief, worker, worker_id)
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    os.environ.update(environment)
    tuner = make_tuner(app, base, space, out, algorithm, max_trials, objective, seed=base.seed)
    log(f"tuning {app.name}: {algorithm} search, {max_trials} trials over {', '.join(space)}; "
        f"objective {tuner.metric} ({tuner.direction}) on dev; {out}")
    tuner.search(verbose=0)
    if worker:
        log(f"worker done: the chief at {worker} writes the results")
        return []
    return write_results(tuner, app, base, out, list(space))
