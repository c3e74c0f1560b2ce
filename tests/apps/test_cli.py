"""The command line end to end, in a temporary directory, on small synthetic data."""

import json
import os
import subprocess
import sys

import keras
import pytest
import tensorflow as tf
import yaml

from apps.cli import main
from apps.config import replace, to_yaml
from apps.sentiment import Sentiment, SentimentConfig


@pytest.fixture
def smoke_config(tmp_path):
    path = tmp_path / "smoke.yaml"
    path.write_text(to_yaml(SentimentConfig.smoke()))
    return str(path)


def test_train_evaluate_predict_export(tmp_path, smoke_config, capsys):
    run = str(tmp_path / "run")
    assert main(["train", "sentiment", "--data", "synthetic?size=300&seed=5", "--out", run,
                 "--config", smoke_config, "--set", "model.units=12", "--epochs", "2"]) == 0
    out = capsys.readouterr().out
    assert "test accuracy" in out and run in out
    assert "Epoch 2/2 - " in out and "skipped_steps: 0 - learning_rate: " in out and "e+00" not in out  # counts as integers
    for name in ("config.yaml", "model.keras", "history.csv", "metrics-test.json", "assets/vocab.txt",
                 "assets/labels.txt", "checkpoints/best.keras", "plots/training.png"):
        assert os.path.exists(os.path.join(run, name)), name
    resolved = yaml.safe_load(open(os.path.join(run, "config.yaml")))
    assert resolved["model"]["units"] == 12 and resolved["train"]["epochs"] == 2
    assert resolved["data"]["source"] == "synthetic?size=300&seed=5"
    assert isinstance(resolved["data"]["max_length"], int)  # resolved from the 95th percentile
    assert len(open(os.path.join(run, "history.csv")).read().strip().splitlines()) == 3
    tags = {}
    for split in ("train", "validation"):  # TensorBoard's event files (RUN/logs)
        for path in (tmp_path / "run" / "logs" / split).glob("events.out.tfevents.*"):
            for event in tf.compat.v1.train.summary_iterator(str(path)):
                tags.setdefault(split, set()).update(v.tag for v in event.summary.value)
    assert {"epoch_loss", "epoch_accuracy", "epoch_learning_rate", "epoch_grad_norm",
            "epoch_skipped_steps"} <= tags["train"] and "epoch_accuracy" in tags["validation"]

    assert main(["evaluate", run, "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)  # stdout holds only the JSON object
    assert set(metrics) >= {"accuracy", "loss"} and 0 <= metrics["accuracy"] <= 1
    assert json.load(open(os.path.join(run, "metrics-test.json")))["accuracy"] == pytest.approx(metrics["accuracy"])
    assert main(["evaluate", run, "--split", "dev"]) == 0
    assert capsys.readouterr().out.startswith("dev accuracy ")
    assert os.path.exists(os.path.join(run, "metrics-dev.json"))

    inputs = tmp_path / "inputs.txt"
    inputs.write_text("the plot was boring\n\nthe cast was great\n")
    assert main(["predict", run, "the movie was not good", "--file", str(inputs), "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert [r["text"] for r in rows] == ["the movie was not good", "the plot was boring", "the cast was great"]
    # two labels: the predicted one has the larger probability, and the model has learned something
    assert all(r["label"] in ("negative", "positive") and 0.5 < r["probability"] <= 1 for r in rows)

    export = str(tmp_path / "export")
    assert main(["export", run, "--format", "savedmodel", "--out", export]) == 0
    parity = json.load(open(os.path.join(export, "parity.json")))
    assert parity["savedmodel"]["max_abs_diff"]["probabilities"] < 1e-5
    assets = json.load(open(os.path.join(export, "assets.json")))
    assert assets["labels"] == ["negative", "positive"] and assets["vocabulary"][:2] == ["[PAD]", "[UNK]"]
    serve = tf.saved_model.load(os.path.join(export, "savedmodel")).signatures["serving_default"]
    served = serve(texts=tf.constant([r["text"] for r in rows]))
    assert [label.decode() for label in served["label"].numpy()] == [r["label"] for r in rows]
    for row, probability in zip(rows, served["probability"].numpy()):
        assert probability == pytest.approx(row["probability"], abs=1e-5)


class Interrupt(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            raise KeyboardInterrupt


def test_interrupted_train_resumes_from_its_checkpoint(tmp_path, capsys):
    config = replace(SentimentConfig.smoke(), **{"train.epochs": 4})
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        Sentiment().train(config, run, callbacks=[Interrupt()])
    assert not (run / "model.keras").exists()  # not looking finished
    assert main(["evaluate", str(run)]) == 1
    assert "unfinished" in capsys.readouterr().err
    Sentiment().train(config, run)
    assert "resuming from the checkpoint after epoch 2" in capsys.readouterr().err
    epochs = [line.split(",")[0] for line in (run / "history.csv").read_text().splitlines()[1:]]
    assert epochs == ["0", "1", "2", "3"]  # continued, not restarted
    assert (run / "model.keras").exists()
    # A finished run is never overwritten.
    assert main(["train", "sentiment", "--out", str(run)]) == 1
    assert "already holds a finished run" in capsys.readouterr().err


def test_mirrored_strategy_trains(tmp_path, smoke_config, capsys):
    run = str(tmp_path / "run")
    assert main(["train", "sentiment", "--out", run, "--config", smoke_config, "--epochs", "1",
                 "--strategy", "mirrored"]) == 0
    assert "test accuracy" in capsys.readouterr().out


def _write(directory, files):
    directory.mkdir(exist_ok=True)
    for name, content in files.items():
        (directory / name).write_bytes(content)
    return str(directory)


@pytest.mark.parametrize(
    "files, args, message",
    [
        (None, ["--data", "no/such/dir"], "data source 'no/such/dir' does not exist"),
        ({"train.tsv": b"good\tpos\nbad, no tab\n"}, [], "train.tsv:2: expected exactly one tab"),
        ({"train.tsv": b"good\tpos\nbad\tneg\n", "dev.tsv": b""}, [], "dev.tsv is empty"),
        ({"train.tsv": b"good\tpos\nbad\tneg\n" * 5, "test.tsv": b"meh\tneutral\n"}, [],
         "test.tsv:1: label 'neutral' never appears in train"),
        ({"train.tsv": b"good\tpos\nbad \xe9\tneg\n"}, [], "train.tsv:2: not valid UTF-8"),
        ({"train.tsv": b"good\tpos\nbad\tneg\n"}, ["--set", "model.unitz=3"], "unknown config key 'model.unitz'"),
        (None, ["--set", "regularization.dropout_mode=naive", "--set", "regularization.recurrent_dropout=0.2"],
         "regularization.recurrent_dropout must be 0 with dropout_mode=naive"),
        (None, ["--set", "regularization.weight_dropout=1.5"], "regularization.weight_dropout must be in [0, 1)"),
        (None, ["--set", "train.clip_decay=1.0"], "train: clip_decay must be in (0, 1)"),
    ],
)
def test_bad_input_is_one_clear_line_and_leaves_no_run(tmp_path, capsys, files, args, message):
    data = ["--data", _write(tmp_path / "data", files)] if files else []
    run = tmp_path / "run"
    assert main(["train", "sentiment", "--out", str(run), *data, *args]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("rnnapps: error: ") and message in err[-1], err
    assert not run.exists()


def test_commands_refuse_what_they_cannot_do_in_one_line(tmp_path, capsys):
    assert main(["tune", "sentiment", "--out", str(tmp_path / "t"), "--objective", "accuracy"]) == 1
    assert "--objective must be a dev metric (val_...)" in capsys.readouterr().err
    assert main(["export", str(tmp_path), "--format", "onnx", "--out", str(tmp_path / "e")]) == 1
    assert "is not a run directory (no config.yaml)" in capsys.readouterr().err


def test_console_script_lists_apps():
    result = subprocess.run([sys.executable, "-m", "apps.cli", "list"], capture_output=True, text=True, check=True)
    assert "sentiment" in result.stdout and "tfds:NAME" in result.stdout and "bn_lstm" in result.stdout
    assert result.stderr == ""


@pytest.mark.parametrize("argv", [["list"], ["--help"], ["train", "--help"], ["export", "--help"]])
def test_list_and_help_do_not_load_tensorflow(argv):
    code = ("import sys\nfrom apps.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "print('tensorflow' in sys.modules, 'keras' in sys.modules, file=sys.stderr)")
    result = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=60)
    assert result.stderr.strip().splitlines()[-1] == "False False", result.stderr
    assert result.stdout.strip()


@pytest.mark.parametrize("args, message", [
    (["--epochs", "0"], "train.epochs must be at least 1, received 0"),
    (["--set", "model.units=-8"], "model.units must be positive, received -8"),
])
def test_bad_sizes_name_the_config_key_before_anything_is_written(tmp_path, capsys, args, message):
    assert main(["train", "sentiment", "--out", str(tmp_path / "run"), "--set", "data.source=synthetic?size=50",
                 *args]) == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_csv_with_a_byte_order_mark_and_a_long_field(tmp_path):
    from pipelines.text_files import read_labeled_text

    path = tmp_path / "train.csv"
    path.write_bytes(b"\xef\xbb\xbftext,label\n\"" + b"long " * 40000 + b"\",pos\nshort,neg\n")
    examples = read_labeled_text(str(path))
    assert [e.label for e in examples] == ["pos", "neg"] and len(examples[0].text) == 200000


def test_files_written_atomically_follow_the_umask(tmp_path):
    from apps.rundir import atomic_write_text

    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.json", "{}")
    finally:
        os.umask(old)
    assert oct((tmp_path / "a.json").stat().st_mode & 0o777) == oct(0o644)
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]  # no temporary file left


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("small") / "run"
    Sentiment().train(replace(SentimentConfig.smoke(), **{"train.epochs": 1}), run)
    return run


def test_predict_reads_standard_input(small_run):
    result = subprocess.run([sys.executable, "-m", "apps.cli", "predict", str(small_run), "--json"],
                            input="a fine film\n\nthe plot was boring\n", capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["text"] for line in result.stdout.splitlines()] == ["a fine film", "the plot was boring"]
    assert result.stderr == ""  # no TensorFlow start-up or log line without --debug


def _broken_config(model_bytes: bytes) -> bytes:
    import io
    import zipfile

    source, out = zipfile.ZipFile(io.BytesIO(model_bytes)), io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for item in source.infolist():
            target.writestr(item, b"{not json" if item.filename == "config.json" else source.read(item))
    return out.getvalue()


@pytest.mark.parametrize("corrupt", [lambda b: b"", lambda b: b"\x00garbage" * 10, lambda b: b[: len(b) // 2],
                                     _broken_config], ids=["empty", "random", "cut short", "broken config.json"])
def test_corrupt_model_file_is_named(small_run, tmp_path, capsys, corrupt):
    import shutil

    message = "model.keras is corrupt"
    run = tmp_path / "run"
    shutil.copytree(small_run, run)
    (run / "model.keras").write_bytes(corrupt((run / "model.keras").read_bytes()))
    for command in (["evaluate", str(run)], ["predict", str(run), "good"],
                    ["export", str(run), "--format", "onnx", "--out", str(tmp_path / "e")]):
        assert main(command) == 1
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert err.startswith("rnnapps: error: ") and f"{run}/{message}" in err, err


def test_a_second_train_on_a_run_being_trained_is_refused(tmp_path, capsys):
    from apps.rundir import RunDir

    config = replace(SentimentConfig.smoke(), **{"data.source": "synthetic?size=50"})
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.yaml").write_text(to_yaml(config))  # an unfinished run
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, os, sys, time; f = open(sys.argv[1], 'a+'); "
                               "fcntl.flock(f, fcntl.LOCK_EX); f.write(str(os.getpid())); f.flush(); "
                               "print('locked', flush=True); time.sleep(60)", str(tmp_path / "run" / ".lock")],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        config_file = tmp_path / "run" / "config.yaml"
        assert main(["train", "sentiment", "--config", str(config_file), "--out", str(tmp_path / "run")]) == 1
        err = capsys.readouterr().err
        assert f"is being trained by process {holder.pid}" in err, err
    finally:
        holder.kill()
        holder.wait(timeout=30)
    run = RunDir(tmp_path / "run")  # the holder is gone: its lock went with it
    run.lock()
    run.release()


def test_a_checkpoint_that_cannot_be_written_keeps_the_last_good_one(tmp_path, capsys, monkeypatch):
    import errno

    config_file = tmp_path / "c.yaml"
    config_file.write_text(to_yaml(replace(SentimentConfig.smoke(), **{"train.epochs": 3})))
    run = tmp_path / "run"
    real_save = keras.Model.save
    calls = []

    def full_disk(model, path, *args, **kwargs):  # the second epoch's checkpoint: half written, then ENOSPC
        if ".last." in str(path):
            calls.append(path)
            if len(calls) == 2:
                with open(path, "wb") as f:
                    f.write(b"PK\x03\x04 half a zip")
                raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(model, path, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "save", full_disk)
    assert main(["train", "sentiment", "--config", str(config_file), "--out", str(run)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"rnnapps: error: cannot write {run}/checkpoints/last.keras: no space left on the "
                              "device (") and "MB free there); the last complete checkpoint is kept" in err[-1], err
    assert json.loads((run / "checkpoints" / "last.json").read_text()) == {"epoch": 0}
    keras.saving.load_model(run / "checkpoints" / "last.keras")  # whole: the half-written file never replaced it
    assert not [p for p in (run / "checkpoints").iterdir() if "tmp" in p.name]

    monkeypatch.setattr(keras.Model, "save", real_save)
    assert main(["train", "sentiment", "--config", str(config_file), "--out", str(run)]) == 0
    assert "resuming from the checkpoint after epoch 1" in capsys.readouterr().err
    epochs = [line.split(",")[0] for line in (run / "history.csv").read_text().splitlines()[1:]]
    assert epochs == ["0", "1", "2"]  # one row per epoch: the epoch logged but not checkpointed was redone


def test_progress_of_long_work_goes_to_stderr(capsys, monkeypatch):
    from apps import training

    clock = iter([0.0, 1.0, 6.0, 7.0, 13.0])
    monkeypatch.setattr(training.time, "monotonic", lambda: next(clock))
    progress = training.Progress(4, "translating", every=5.0)
    for _ in range(4):
        progress.update(1)
    out = capsys.readouterr()
    assert out.out == "" and out.err.splitlines() == ["translating: 2/4", "translating: 4/4"]


def test_evaluate_needs_only_the_split_it_scores(small_run, tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    (data / "test.tsv").write_text("the movie was not good\tnegative\nthe movie was very good\tpositive\n")
    assert main(["evaluate", str(small_run), "--data", str(data), "--split", "test", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["examples"] == 2
    (data / "valid.tsv").write_text("a fine film\tpositive\n")
    assert main(["evaluate", str(small_run), "--data", str(data), "--split", "valid", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["examples"] == 1
    assert main(["evaluate", str(small_run), "--data", str(data), "--split", "train"]) == 1
    assert "has no train.tsv or train.csv" in capsys.readouterr().err


def test_a_model_with_code_in_it_is_refused_by_name(small_run, tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(small_run, run)
    inputs = keras.Input((3,))
    keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2)(inputs)).save(run / "model.keras")
    assert main(["predict", str(run), "good"]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == f"rnnapps: error: {run}/model.keras is refused: it holds code (a Lambda layer) that safe mode " \
                  "does not run", err


def test_export_and_runtime_prediction_are_quiet(small_run, tmp_path):
    export = tmp_path / "export"
    for argv in (["export", str(small_run), "--format", "tflite", "--out", str(export)],
                 ["predict", str(export), "--runtime", "tflite", "a fine film", "--json"]):
        result = subprocess.run([sys.executable, "-m", "apps.cli", *argv], capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        assert result.stderr == "", result.stderr  # no TensorFlow, TFLite or converter log line



def test_cli_refuses_to_export_over_another_runs_export(small_run, tmp_path, capsys):
    import shutil

    other = tmp_path / "other"
    shutil.copytree(small_run, other)
    model = keras.saving.load_model(other / "model.keras")
    model.set_weights([w * 0.5 for w in model.get_weights()])
    model.save(other / "model.keras")  # another run: other weights
    export = tmp_path / "export"
    assert main(["export", str(small_run), "--format", "onnx", "--out", str(export)]) == 0
    assert main(["export", str(other), "--format", "tflite", "--out", str(export)]) == 1
    assert "holds an export of another run" in capsys.readouterr().err
    assert sorted(p.name for p in export.iterdir()) == ["assets.json", "model.onnx", "parity.json"]  # untouched
    assert main(["predict", str(small_run), "good", "--beam", "4"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["rnnapps: error: unrecognized arguments: --beam 4 (the sentiment app has no such option); "
                   "see rnnapps predict --help"], err
