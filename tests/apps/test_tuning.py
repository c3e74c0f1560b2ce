"""`rnnapps tune`: a search writes its results and best.yaml reproduces the best trial; failed
trials are recorded; a killed search resumes; a chief and a worker share one search. Every
process runs on 127.0.0.1, bounded in time, and is stopped."""

import csv
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml

from apps.config import ConfigError, load_config
from apps.registry import APPS, get_app
from apps.tuning import load_space, tune

APP = get_app("sentiment")
SMALL = ["data.source=synthetic?size=120", "data.batch_size=16", "model.embedding_dim=8", "model.units=8",
         "train.epochs=2", "train.early_stopping_patience=0"]
CLI = [sys.executable, "-c", "from apps.cli import main; raise SystemExit(main())"]


def space_file(path, keep: dict) -> str:
    """A --space file that searches only `keep` (the app's other keys set to null)."""
    path.write_text(yaml.safe_dump({**{k: None for k in APP.search_space()}, **keep}))
    return str(path)


def history(run) -> list[dict]:
    with open(run / "history.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_a_search_records_failed_trials_and_best_yaml_reproduces_the_best_one(tmp_path):
    base = load_config(APP.config_class, overrides=SMALL)
    # naive dropout refuses recurrent dropout: of the two trials one fails in the layers
    space = space_file(tmp_path / "space.yaml", {"regularization.dropout_mode": ["naive"],
                                                 "regularization.recurrent_dropout": [0.0, 0.25]})
    out = tmp_path / "search"
    rows = tune(APP, base, out, max_trials=2, space_file=space)
    assert [r.status for r in rows] == ["COMPLETED", "FAILED"]  # the failed trial ranked last
    best, failed = rows
    assert best.values == {"regularization.dropout_mode": "naive", "regularization.recurrent_dropout": 0.0}
    assert failed.values["regularization.recurrent_dropout"] == 0.25
    assert "recurrent_dropout must be 0 with dropout_mode=naive" in failed.message
    with open(out / "trials.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert [t["trial"] for t in table] == [best.trial_id, failed.trial_id] and "regularization.dropout_mode" in table[0]
    assert table[1]["status"] == "FAILED" and "dropout_mode=naive" in table[1]["error"]
    config = load_config(APP.config_class, files=[out / "best.yaml"])
    assert config.regularization.dropout_mode == "naive" and config.model.units == 8  # --set kept
    again = tmp_path / "again"
    APP.train(config, again)
    expected, got = history(out / "trials" / best.trial_id), history(again)
    assert len(got) == len(expected) == 2
    for e, g in zip(expected, got):
        assert float(g["val_loss"]) == pytest.approx(float(e["val_loss"]), abs=1e-6)
        assert float(g["val_accuracy"]) == float(e["val_accuracy"])


@pytest.mark.parametrize("name", sorted(APPS))
def test_every_apps_space_is_valid_config_and_declares(name):
    import keras_tuner as kt

    from apps.tuning import declare

    app = get_app(name)
    space = load_space(app)
    assert {"train.learning_rate", "model.units"} <= set(space)
    hp = kt.HyperParameters()
    for key, spec in space.items():
        declare(hp, key, spec)
    assert sorted(p.name for p in hp.space) == sorted(space)


def test_space_files_are_checked_like_set(tmp_path):
    for content, message in ((("model.unitz: [4]"), "did you mean 'model.units'"),
                             ("model.units: [4, 'many']", "choices of one type only"),
                             ("model.units: ['many']", "expects int"),
                             ("model.units: []", "empty list"),
                             ("train.learning_rate: {min: 0.1, max: 0.01}", "min must be below max"),
                             ("model.pooling: {low: 1}", "a list of choices or")):
        (tmp_path / "s.yaml").write_text(content)
        with pytest.raises(ConfigError, match=message):
            load_space(APP, str(tmp_path / "s.yaml"))


def _start(args, log_path, env=None):
    log = open(log_path, "w")
    return subprocess.Popen([*CLI, *args], stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
                            start_new_session=True), log


def _stop(process):
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


def _wait_for(condition, timeout, processes=()):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        for p in processes:
            assert p.poll() in (None, 0), f"a process exited with {p.returncode}"
        time.sleep(0.2)
    raise AssertionError("timed out")


def _tune_args(tmp_path, out, trials, space):
    tiny = [*SMALL, "data.source=synthetic?size=60", "train.epochs=1"]  # quick trials: the processes are the test
    sets = [a for s in tiny for a in ("--set", s)]
    return ["tune", "sentiment", "--out", str(out), "--max-trials", str(trials), "--space", space, *sets]


@pytest.mark.slow  # a search process killed and restarted: about a minute
def test_a_killed_search_resumes_instead_of_restarting(tmp_path):
    space = space_file(tmp_path / "space.yaml", {"model.units": [4, 8]})
    out = tmp_path / "search"
    args = _tune_args(tmp_path, out, 2, space)
    process, log = _start(args, tmp_path / "first.log")
    try:  # killed once the first trial is finished and the second has started
        _wait_for(lambda: (out / "trials" / "0" / "model.keras").exists() and (out / "trials" / "1").exists(),
                  240, [process])
    finally:
        _stop(process)
        log.close()
    result = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "(id 0)" not in result.stderr and "(id 1)" in result.stderr  # trial 0 is not run again
    with open(out / "trials.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert sorted(t["trial"] for t in table) == ["0", "1"] and {t["status"] for t in table} == {"COMPLETED"}
    assert sorted(t["model.units"] for t in table) == ["4", "8"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # a chief and a worker process: about a minute
def test_a_chief_and_a_worker_complete_one_search_together(tmp_path):
    space = space_file(tmp_path / "space.yaml", {"model.units": [4, 5, 6, 7]})
    address = f"127.0.0.1:{_free_port()}"
    chief, chief_log = _start([*_tune_args(tmp_path, tmp_path / "chief", 4, space), "--chief", address],
                              tmp_path / "chief.log")
    worker, worker_log = _start([*_tune_args(tmp_path, tmp_path / "worker", 4, space), "--worker", address,
                                 "--worker-id", "1"], tmp_path / "worker.log")
    try:
        assert worker.wait(timeout=400) == 0, (tmp_path / "worker.log").read_text()[-2000:]
        assert chief.wait(timeout=120) == 0, (tmp_path / "chief.log").read_text()[-2000:]
    finally:
        for p in (chief, worker):
            _stop(p)
        chief_log.close()
        worker_log.close()
    runs = sorted(p.name for p in (tmp_path / "worker" / "trials").iterdir())
    assert len(runs) == 4 and all((tmp_path / "worker" / "trials" / r / "model.keras").exists() for r in runs)
    assert not (tmp_path / "chief" / "trials").exists()  # the chief trains nothing
    trained = [line for line in (tmp_path / "worker.log").read_text().splitlines() if "(id " in line]
    assert len(trained) == 4  # each trial exactly once
    best = load_config(APP.config_class, files=[tmp_path / "chief" / "best.yaml"])
    with open(tmp_path / "chief" / "trials.csv", newline="") as f:
        units = {int(t["model.units"]): float(t["val_accuracy"]) for t in csv.DictReader(f)}
    assert sorted(units) == [4, 5, 6, 7] and units[best.model.units] == max(units.values())
    assert np.isfinite(list(units.values())).all()
