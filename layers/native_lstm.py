"""The LSTM recurrence over MKL's packed GEMM, a native TensorFlow op built on first use.

`Recurrent(LSTMCell(...), native=True)` (or `LayerNormLSTMCell`, `BatchNormLSTMCell`, whose
per-step normalisations the op does too) trains through it: the recurrent kernel is packed once
per sequence and every step's h_{t-1} U (forward) and dz_t U^T (backward) multiplies the packed
copy, as oneDNN's fused RNN primitive does; the input projection and the recurrent kernel's
gradient dU = H^T dZ are whole-sequence matmuls in TensorFlow. Masks keep `keras.layers.RNN`'s
semantics (a skipped step keeps the states and repeats the previous output, or writes zeros).

The op is compiled from `layers/native/lstm_mkl.cc` with the system's C++ compiler against
TensorFlow's headers and MKL's (the `native` extra: `pip install -e ".[native]"`), once per
source, TensorFlow version and machine, into `$RNNAPPS_CACHE` (default `~/.cache/rnnapps`)/native;
the library is written atomically. It is a CPU op outside XLA: a model that uses it is compiled
with `jit_compile=False`.
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import tensorflow as tf

from layers.batched_gradient import reversed_in_time
from layers.batchnorm_lstm_cell import BatchNormLSTMCell
from layers.layernorm_lstm_cell import EPSILON, LayerNormLSTMCell
from layers.lstm_cell import LSTMCell

# The cells the op runs (exactly these classes: subclasses change the step).
CELLS = (LSTMCell, LayerNormLSTMCell, BatchNormLSTMCell)
SOURCE = Path(__file__).parent / "native" / "lstm_mkl.cc"
INSTALL_HINT = "install the native extra: pip install -e \".[native]\" (MKL's libraries and headers)"


class NativeUnavailable(RuntimeError):
    """The native op cannot be built or loaded here; the message says why."""


def _mkl() -> tuple[Path, Path]:
    """MKL's include and library folders (the `mkl` and `mkl-include` wheels install into sys.prefix)."""
    include, lib = Path(sys.prefix) / "include", Path(sys.prefix) / "lib"
    if not (include / "mkl.h").is_file():
        raise NativeUnavailable(f"MKL's headers are not in {include}: {INSTALL_HINT}")
    if not list(lib.glob("libmkl_rt.so*")):
        raise NativeUnavailable(f"MKL's runtime library is not in {lib}: {INSTALL_HINT}")
    return include, lib


def _isa_flags() -> list[str]:
    """AVX2 and FMA where the CPU has them (the loops' exp and tanh vectorize), nothing else."""
    try:
        flags = next((line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")), "")
    except OSError:
        flags = ""
    return ["-mavx2", "-mfma"] if {"avx2", "fma"} <= set(flags.split()) else []


def _command() -> list[str]:
    """The compiler's command line, without its output file."""
    include, lib = _mkl()
    mkl_rt = sorted(lib.glob("libmkl_rt.so*"))[-1].name
    return ["c++", "-O3", "-ffast-math", "-fopenmp", "-shared", "-fPIC", *_isa_flags(), str(SOURCE),
            *tf.sysconfig.get_compile_flags(), f"-I{include}", *tf.sysconfig.get_link_flags(), f"-L{lib}",
            f"-l:{mkl_rt}", f"-Wl,-rpath,{lib}", "-Wno-deprecated-declarations"]


@functools.cache
def library():
    """The loaded op library, built first if this source, TensorFlow and machine have none yet.
    Raises NativeUnavailable with the reason (no compiler, no MKL, a failed build)."""
    if platform.system() != "Linux" or shutil.which("c++") is None:
        raise NativeUnavailable("the native LSTM builds on Linux with a C++ compiler (c++ on the PATH)")
    command = _command()
    key = hashlib.sha256(" ".join([SOURCE.read_text(), tf.__version__, *command]).encode())
    cache = Path(os.environ.get("RNNAPPS_CACHE", Path.home() / ".cache" / "rnnapps")) / "native"
    built = cache / f"lstm_mkl-{key.hexdigest()[:16]}.so"
    if not built.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache) as scratch:
            partial = Path(scratch) / built.name
            result = subprocess.run([*command, "-o", str(partial)], capture_output=True, text=True)
            if result.returncode != 0:
                raise NativeUnavailable(f"building {SOURCE.name} failed: {result.stderr.strip()[-2000:]}")
            os.replace(partial, built)  # atomic: another process sees the whole library or none
    # OpenMP threads that sleep between the steps' matmuls wake too late: with PASSIVE the model
    # of benchmarks.cells trained at 66,263 tokens/s against 87,521 (2 cores). Read when the op
    # loads the OpenMP runtime; a value the user set is kept.
    os.environ.setdefault("OMP_WAIT_POLICY", "ACTIVE")
    return tf.load_op_library(str(built))


@functools.cache
def unavailable_reason() -> str | None:
    """Why the native op cannot be used here, or None when it can (asked once a process: a failed
    build is not retried at every call)."""
    try:
        library()
    except NativeUnavailable as error:
        return str(error)
    return None


def _zeros_if_none(gradient, like):
    return tf.zeros_like(like) if gradient is None else gradient


def _gradient(op, d_outputs, d_h, d_c, d_h_states, d_workspace, d_statistics):
    """h_states and the workspace are the forward pass's record for this gradient, the statistics
    what moves a batch norm's population statistics (`lstm_sequence` returns none of them):
    their own gradients are not taken."""
    z_in, mask, h0, c0, kernel, norms, input_norm = op.inputs
    outputs, h, c, h_states, workspace, _ = op.outputs
    norm = tf.compat.as_str(op.get_attr("norm"))
    d_z, d_recurrent, d_h0, d_c0, d_norms, d_input_norm = library().rnnapps_lstm_grad(
        mask, c0, kernel, norms, input_norm, workspace, _zeros_if_none(d_outputs, outputs), _zeros_if_none(d_h, h),
        _zeros_if_none(d_c, c), zero_output=op.get_attr("zero_output"), norm=norm)
    if norm == "none":
        d_recurrent = d_z  # z = z_in + h U
    # dU for every step at once: the states each step multiplied by U, (units, time * batch) x (time * batch, gates)
    h_prev = tf.concat([h0[None], h_states[:-1]], axis=0)
    d_kernel = tf.matmul(tf.reshape(h_prev, [-1, tf.shape(h0)[1]]),
                         tf.reshape(d_recurrent, [-1, tf.shape(kernel)[1]]), transpose_a=True)
    return d_z, None, d_h0, d_c0, d_kernel, d_norms, d_input_norm


tf.no_gradient("RnnappsLstmGrad")
tf.RegisterGradient("RnnappsLstm")(_gradient)


def _sequence(projected, recurrent_kernel, initial_state, mask, go_backwards, zero_output_for_mask, norm="none",
              norms=None, input_norm=None, epsilon=EPSILON):
    """The op over `projected` in processing order: (last_output, outputs, [h, c], statistics)."""
    if go_backwards:
        projected, mask = reversed_in_time(projected, mask)
    mask = tf.ones(tf.shape(projected)[:2]) if mask is None else tf.cast(mask, tf.float32)
    h0, c0 = initial_state

    def pack(vectors):
        return tf.zeros([0]) if vectors is None else tf.concat([tf.convert_to_tensor(v) for v in vectors], 0)

    outputs, h, c, _, _, statistics = library().rnnapps_lstm(
        projected, mask, h0, c0, tf.convert_to_tensor(recurrent_kernel), pack(norms), pack(input_norm),
        zero_output=bool(zero_output_for_mask), norm=norm, epsilon=epsilon)
    return outputs[-1], outputs, [h, c], statistics


def lstm_sequence(projected, recurrent_kernel, initial_state, mask=None, go_backwards=False,
                  zero_output_for_mask=False, norms=None, input_norm=None, epsilon=EPSILON):
    """`layers.LSTMCell`'s recurrence over `projected` (time, batch, 4 units: x_t W + b) from
    initial_state [h, c]; mask (time, batch) bool or None. With `norms` (gamma_h, beta_h,
    gamma_c, beta_c), `layers.LayerNormLSTMCell`'s: projected is LN(x_t W) + b, or x_t W with
    `input_norm` (gamma_x, beta_x, b), which the op then normalises itself. Returns
    (last_output, outputs (time, batch, units), [h, c]) as
    `layers.batched_gradient.batched_gradient_rnn` (processing order)."""
    return _sequence(projected, recurrent_kernel, initial_state, mask, go_backwards, zero_output_for_mask,
                     "none" if norms is None else "layer", norms, input_norm, epsilon)[:3]


def batch_norm_sequence(cell, inputs, initial_state, mask=None, go_backwards=False, zero_output_for_mask=False):
    """`layers.BatchNormLSTMCell`'s training recurrence over inputs (time, batch, features), as
    `lstm_sequence`: the op normalises x W, h U and c with each step's batch statistics over the
    rows it runs, which then move the population statistics of the step's position (also for
    go_backwards), as the cell's own loop does."""
    norms = (cell.recurrent_gamma, cell.recurrent_beta, cell.cell_gamma, cell.cell_beta)
    last_output, outputs, states, statistics = _sequence(
        cell.input_matmul(inputs), cell.recurrent_kernel, initial_state, mask, go_backwards, zero_output_for_mask,
        "batch", norms, (cell.input_gamma, cell.input_beta, cell.bias), cell.epsilon)
    if go_backwards:  # the op's steps ran last position first
        statistics = tf.reverse(statistics, [0])
    gates, units = cell.projection_size, cell.units
    count = tf.reduce_sum(cell.step_mask(inputs, mask), axis=1)  # (time, 1) rows that ran each step
    moments = tf.split(statistics, [gates, gates, units, units, gates, gates], axis=1)
    for name, (mean, variance) in zip(("recurrent", "cell", "input"), zip(moments[::2], moments[1::2])):
        cell.move(name, mean, variance, count)
    return last_output, outputs, states


def cell_sequence(cell, inputs, initial_state, mask=None, go_backwards=False, zero_output_for_mask=False,
                  name="recurrent"):
    """A cell of `CELLS` over `inputs` (time, batch, features), as `lstm_sequence`: what the
    op needs from the cell (x W, with the bias and the input norm for the layer-norm LSTM, whose
    normalisation the op does in the same pass; the batch-norm LSTM's, by `batch_norm_sequence`).
    Raises NativeUnavailable, naming the layer `name`, where the op cannot be built."""
    reason = unavailable_reason()
    if reason is not None:
        raise NativeUnavailable(f"{name}: native=True, but the native LSTM is unavailable: {reason}")
    if isinstance(cell, BatchNormLSTMCell):
        return batch_norm_sequence(cell, inputs, initial_state, mask, go_backwards, zero_output_for_mask)
    if isinstance(cell, LayerNormLSTMCell):
        return lstm_sequence(cell.input_matmul(inputs), cell.recurrent_kernel, initial_state, mask, go_backwards,
                             zero_output_for_mask,
                             norms=(cell.recurrent_gamma, cell.recurrent_beta, cell.cell_gamma, cell.cell_beta),
                             input_norm=(cell.input_gamma, cell.input_beta, cell.bias))
    return lstm_sequence(cell.project_inputs(inputs), cell.recurrent_kernel, initial_state, mask, go_backwards,
                         zero_output_for_mask)
