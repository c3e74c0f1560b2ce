"""Training under tf.distribute strategies, each in a fresh process (logical devices can only be
made before TensorFlow starts), bounded in time."""

import json
import subprocess
import sys

import pytest

MIRRORED_VS_DEFAULT = r"""
import csv, json, sys
from apps.config import load_config
from apps.registry import get_app

app = get_app("sentiment")
# no dropout (each replica draws its own masks) and no shuffling (under a strategy Keras draws a
# batch before the first epoch, which moves a shuffled pipeline on by one order); clipping at
# 0.05 is active on every step (the gradient norms are about 0.2)
config = load_config(app.config_class, overrides=[
    "data.source=synthetic?size=96", "data.batch_size=16", "data.bucketing=false", "train.shuffle_buffer=0",
    "model.embedding_dim=8", "model.units=8", "model.dropout=0", "regularization.embedding_dropout=0",
    "regularization.input_dropout=0", "regularization.output_dropout=0", "train.epochs=2",
    "train.early_stopping_patience=0", "train.lr_patience=0", "train.global_clipnorm=0.05", "train.cpu_devices=2"])
rows = {}
for strategy in ("default", "mirrored"):
    app.train(config, f"{sys.argv[1]}/{strategy}", strategy=strategy)
    with open(f"{sys.argv[1]}/{strategy}/history.csv", newline="") as f:
        rows[strategy] = [{k: float(r[k]) for k in ("loss", "val_loss", "grad_norm")} for r in csv.DictReader(f)]
# a cell of ours (layers.Recurrent) with variational recurrent dropout and adaptive clipping, in
# an ensemble of two (trained as its members' model, scored as the ensemble); batches of 15 split
# unevenly over the replicas, the first ones that Keras builds the metrics from included
custom = load_config(app.config_class, base=config, overrides=[
    "model.cell=layernorm_lstm", "regularization.recurrent_dropout=0.2", "train.clipping=adaptive",
    "train.epochs=1", "train.shuffle_buffer=100", "model.members=2", "data.batch_size=15"])
custom_metrics = app.train(custom, f"{sys.argv[1]}/custom", strategy="mirrored")
# charlm (with the flag "charlm"): CarriedState carries each replica's streams; chunks that end
# in padding weigh their tokens by the weights of the whole batch (WeightedTokenCrossEntropy)
charlm = get_app("charlm")
charlm_config = load_config(charlm.config_class, overrides=[
    "data.source=synthetic?size=30", "data.batch_size=8", "data.steps=20", "model.units=16",
    "model.embedding_dim=8", "train.epochs=1", "train.cpu_devices=2", "train.global_clipnorm=0",
    "model.prefer_fused=true", "train.jit_compile=auto"])
streams = {}
for strategy in (("default", "mirrored") if "charlm" in sys.argv else ()):
    metrics = charlm.train(charlm_config, f"{sys.argv[1]}/charlm-{strategy}", strategy=strategy)
    with open(f"{sys.argv[1]}/charlm-{strategy}/history.csv", newline="") as f:
        streams[strategy] = [{k: float(r[k]) for k in ("loss", "val_bpc", "grad_norm")} for r in csv.DictReader(f)]
    streams[strategy].append({"bpc": metrics["bpc"]})
import tensorflow as tf
print(json.dumps({"rows": rows, "devices": len(tf.config.list_logical_devices("CPU")), "custom": custom_metrics,
                  "charlm": streams}))
"""


def _mirrored_vs_default(tmp_path, *flags):
    result = subprocess.run([sys.executable, "-c", MIRRORED_VS_DEFAULT, str(tmp_path), *flags], capture_output=True,
                            text=True, timeout=400)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_mirrored_on_two_cpu_devices_follows_the_default_strategys_losses(tmp_path):
    """Sentiment (clipped) and a custom cell; charlm in the slow test below."""
    out = _mirrored_vs_default(tmp_path)
    assert out["devices"] == 2
    default, mirrored = out["rows"]["default"], out["rows"]["mirrored"]
    assert len(default) == len(mirrored) == 2
    for d, m in zip(default, mirrored):
        for key in ("loss", "val_loss", "grad_norm"):  # grad_norm: the clipping saw the batch's gradient
            assert m[key] == pytest.approx(d[key], abs=1e-4), (key, d, m)
    assert out["custom"]["examples"] == 19 and 0.0 <= out["custom"]["accuracy"] <= 1.0


@pytest.mark.slow  # the whole script again with charlm's two trainings: about two minutes
def test_mirrored_charlm_carries_each_replicas_streams(tmp_path):
    """charlm: carried states, padded chunks, unclipped (the gradient itself) under both strategies."""
    out = _mirrored_vs_default(tmp_path, "charlm")
    assert len(out["charlm"]["default"]) == len(out["charlm"]["mirrored"]) == 2
    for d, m in zip(out["charlm"]["default"], out["charlm"]["mirrored"]):
        for key in d:
            assert m[key] == pytest.approx(d[key], abs=1e-4), ("charlm", key, d, m)


def _free_ports(n):
    import socket

    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _start_workers(run, ports, tmp_path, attempt):
    import os

    args = ["train", "sentiment", "--out", str(run), "--strategy", "multiworker",
            *[a for s in ("data.source=synthetic?size=96", "data.batch_size=16", "data.bucketing=false",
                          "model.embedding_dim=8", "model.units=8", "train.epochs=3",
                          "train.early_stopping_patience=0") for a in ("--set", s)]]
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    temporary = tmp_path / f"tmp-{attempt}"  # where worker 1 keeps its copy of the run
    temporary.mkdir()
    processes = []
    for index in range(2):
        log = open(tmp_path / f"worker{index}-{attempt}.log", "w")
        env = {**os.environ, "TMPDIR": str(temporary),
               "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
        processes.append((subprocess.Popen([sys.executable, "-c", "from apps.cli import main; raise SystemExit(main())",
                                            *args], stdout=log, stderr=subprocess.STDOUT, env=env,
                                           start_new_session=True), log))
    return processes


def _stop_all(processes):
    import os
    import signal

    for p, log in processes:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=30)
        log.close()


@pytest.mark.slow  # two worker processes and a restart: about a minute
def test_two_workers_train_to_the_end_and_resume_after_a_killed_worker(tmp_path):
    import time

    run = tmp_path / "run"
    processes = _start_workers(run, _free_ports(2), tmp_path, 1)
    try:  # the first epoch checkpointed: kill worker 1, then the chief (blocked in a collective)
        deadline = time.monotonic() + 240
        while not (run / "checkpoints" / "last.json").exists():
            assert time.monotonic() < deadline, (tmp_path / "worker0-1.log").read_text()[-2000:]
            assert all(p.poll() is None for p, _ in processes), (tmp_path / "worker0-1.log").read_text()[-2000:]
            time.sleep(0.2)
    finally:
        _stop_all(processes[1:])
        _stop_all(processes[:1])
    assert not (run / "model.keras").exists()
    epoch = json.loads((run / "checkpoints" / "last.json").read_text())["epoch"]
    processes = _start_workers(run, _free_ports(2), tmp_path, 2)  # both restarted: they resume
    try:
        for index, (p, _) in enumerate(processes):
            assert p.wait(timeout=300) == 0, (tmp_path / f"worker{index}-2.log").read_text()[-3000:]
    finally:
        _stop_all(processes)
    restarted = (tmp_path / "worker0-2.log").read_text()
    assert f"Epoch {epoch + 1}/3" not in restarted and "Epoch 3/3" in restarted  # from the checkpoint on
    epochs = [line.split(",")[0] for line in (run / "history.csv").read_text().splitlines()[1:]]
    assert epochs == ["0", "1", "2"]  # each epoch logged once, by the chief
    assert (run / "model.keras").exists() and (run / "metrics-test.json").exists()
    assert not any((tmp_path / "tmp-2").iterdir())  # worker 1 removed its copy at the end
