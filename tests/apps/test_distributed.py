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
import tensorflow as tf
print(json.dumps({"rows": rows, "devices": len(tf.config.list_logical_devices("CPU"))}))
"""


def test_mirrored_on_two_cpu_devices_follows_the_default_strategys_losses(tmp_path):
    result = subprocess.run([sys.executable, "-c", MIRRORED_VS_DEFAULT, str(tmp_path)], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["devices"] == 2
    default, mirrored = out["rows"]["default"], out["rows"]["mirrored"]
    assert len(default) == len(mirrored) == 2
    for d, m in zip(default, mirrored):
        for key in ("loss", "val_loss", "grad_norm"):  # grad_norm: the clipping saw the batch's gradient
            assert m[key] == pytest.approx(d[key], abs=1e-4), (key, d, m)
