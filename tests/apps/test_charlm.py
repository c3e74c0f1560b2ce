"""The character language model: what it learns on code-like text, whole-text bpc, sampling,
the activation view, the command line and bad input. The app contract runs in
test_app_contract.py."""

import contextlib
import io
import json
import os
import re

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
import yaml

from apps.charlm import CharLM, CharLMConfig, Generator, generate_numpy
from apps.cli import main
from apps.config import ConfigError, replace
from layers import native_lstm
from pipelines.char_preprocessor import unigram_entropy
from pipelines.errors import DataError
from pipelines.synthetic_code import generate

APP = CharLM()
CLOSERS = ")]}"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 64-cell LSTM on 500 synthetic files (about 250,000 characters; 30 s on 2 cores)."""
    config = replace(CharLMConfig(), **{"data.source": "synthetic?size=500", "data.batch_size": 32,
                                        "model.units": 64, "model.embedding_dim": 16, "train.epochs": 8,
                                        "train.learning_rate": 5e-3})
    run = tmp_path_factory.mktemp("charlm") / "run"
    metrics = APP.train(config, run)
    loaded = APP.load(run)
    return run, metrics, loaded


def one_pass_logits(model, ids):
    """Next-character logits of one text in a single call of the stack: no chunks, no carrying."""
    return _one_pass(model)(tf.constant([ids], tf.int32)).numpy()[0]


_PASSES = {}


def _one_pass(model):
    if id(model) not in _PASSES:
        @tf.function(input_signature=[tf.TensorSpec([1, None], tf.int32)])
        def run(ids):
            x = model.get_layer("embedding")(ids)
            return model.get_layer("logits")(model.get_layer("carried_state").stack(x, training=False)[0])
        _PASSES[id(model)] = run
    return _PASSES[id(model)]


def test_bpc_falls_well_below_the_unigram_entropy(trained):
    run, metrics, loaded = trained
    splits, _ = APP.load_splits(loaded.config)
    entropy = unigram_entropy([d.text for d in splits["train"]])
    print(f"\nsynthetic code: test bpc {metrics['bpc']:.3f} against a unigram entropy of {entropy:.3f} bits")
    assert metrics["bpc"] < 0.4 * entropy
    assert metrics["perplexity"] == pytest.approx(2 ** metrics["bpc"], rel=1e-5)
    assert set(json.loads((run / "metrics-test.json").read_text())) >= {"bpc", "perplexity"}


def test_whole_text_bpc_equals_one_pass_over_each_text(trained):
    _, metrics, loaded = trained
    documents = APP.load_splits(loaded.config)[0]["test"]
    bits = count = 0.0
    for doc in documents:
        ids = loaded.preprocessor.encode(doc.text)
        logits = one_pass_logits(loaded.model, ids[:-1])
        log_probs = logits - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True)) \
            - logits.max(-1, keepdims=True)
        bits -= log_probs[np.arange(len(ids) - 1), ids[1:]].sum() / np.log(2.0)
        count += len(ids) - 1
    assert metrics["characters"] == count
    assert metrics["bpc"] == pytest.approx(bits / count, abs=1e-5)


def test_closing_brackets_match_the_opening_ones(trained):
    """Where the next character closes a bracket, the model prefers the closer of the innermost
    open bracket among the three, however deep and however far back it opened."""
    _, _, loaded = trained
    p = loaded.preprocessor
    closer_ids = [p.vocab.ids[c] for c in CLOSERS]
    right = total = deep_right = deep_total = 0
    truth = []
    for text in generate(40, seed=1234):
        ids = p.encode(text)
        logits = one_pass_logits(loaded.model, ids[:-1])
        stack, in_quote = [], False
        for t, char in enumerate(text[:-1]):
            if char == '"':
                in_quote = not in_quote
            elif not in_quote and char in "([{":
                stack.append("([{".index(char))
            elif not in_quote and char in CLOSERS:
                stack.pop()
            if text[t + 1] in CLOSERS and not in_quote:
                hit = int(np.argmax(logits[t, closer_ids]) == stack[-1])
                truth.append(stack[-1])
                right, total = right + hit, total + 1
                if len(stack) >= 2:
                    deep_right, deep_total = deep_right + hit, deep_total + 1
    chance = max(np.bincount(truth)) / len(truth)  # always guessing the most common one
    print(f"\nclosing bracket matched: {right / total:.3f} ({total} closers; {deep_right / deep_total:.3f} at depth "
          f">= 2), always guessing the most common closer: {chance:.3f}")
    assert chance < 0.45
    assert right / total > chance + 0.2 and deep_right / deep_total > chance + 0.15


def test_sampling_is_reproducible_primed_and_tempered(trained):
    _, _, loaded = trained
    g = Generator(loaded.model, loaded.preprocessor)

    def run(prompts, temperature=1.0, top_k=0, bias=0.0, seed=1, length=60):
        out = g.generate(tf.constant(prompts), tf.constant(length), tf.constant(temperature, tf.float32),
                         tf.constant(top_k), tf.constant(bias, tf.float32), tf.constant(seed))
        return [x.decode("utf-8") for x in out["generated"].numpy()]

    prompts = ["def ", "    return [", ""]
    first = run(prompts)
    assert first == run(prompts) and first != run(prompts, seed=2)
    assert first[0] != first[1]  # the prompt changes the continuation
    assert run(prompts, temperature=1e-4) == run(prompts, temperature=0.0)  # greedy
    assert run(prompts, bias=0.0) == first  # Graves's bias 0 is plain sampling
    assert run(prompts, bias=1.0) == run(prompts, temperature=0.5)  # bias b: temperature 1 / (1 + b)
    # top-k 1 is greedy too
    assert run(prompts, top_k=1) == run(prompts, temperature=0.0)
    # A runtime without TensorFlow that steps the same model draws the same characters.
    assets = {**loaded.preprocessor.assets(), "states": g.state_sizes}

    def step(char_ids, **states):
        return {k: v.numpy() for k, v in g.step(tf.constant(char_ids), *[tf.constant(states[n])
                                                                           for n in g.state_sizes]).items()}

    assert generate_numpy(step, assets, prompts, 60, 0.8, 5, 0.5, 3) == run(prompts, 0.8, 5, 0.5, 3)


def test_cells_track_bracket_depth_and_the_page_colours_each_character(trained, tmp_path):
    run, _, _ = trained
    text = "\n".join(generate(4, seed=99))
    (tmp_path / "code.txt").write_text(text, encoding="utf-8")
    (row,) = APP.predict(run, [], activations=True, text=str(tmp_path / "code.txt"))
    best = row["top_cells"]["bracket_depth"][0]
    print(f"\n{APP.format_prediction(row)}")
    assert abs(best["r"]) > 0.5 and row["cell"] == best["cell"]
    page = open(row["html"], encoding="utf-8").read()
    assert len(re.findall(r'<span class="c" style="background:rgb\(\d+,\d+,\d+\)"', page)) == len(text)
    assert open(row["png"], "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    (other,) = APP.predict(run, [], activations=True, text=str(tmp_path / "code.txt"), cell=3)
    assert other["cell"] == 3
    with pytest.raises(DataError, match="needs --text"):
        APP.predict(run, [], activations=True)
    with pytest.raises(ConfigError, match=r"--cell must be in \[0, 63\], received 64"):
        APP.predict(run, [], activations=True, text=str(tmp_path / "code.txt"), cell=64)


def _cli(*argv):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(list(argv))
    return code, out.getvalue()


def test_cli_generation_is_reproducible(trained):
    run, _, _ = trained
    args = ["predict", str(run), "--prompt", "def ", "--length", "80", "--temperature", "0.8", "--seed", "1"]
    code, first = _cli(*args)
    assert code == 0 and first.startswith("def ") and _cli(*args)[1] == first
    code, as_json = _cli(*args, "--json")
    row = json.loads(as_json)
    assert row["text"] == "def " and APP.format_prediction(row) == first[:-1]
    assert _cli(*args[:-1], "2")[1] != first


def test_text_files_crlf_emoji_and_unseen_characters(tmp_path):
    """One file (CRLF, several scripts, emoji): dev and test are cut from its end and recorded;
    characters train lacks are [UNK] at evaluation and in prompts."""
    lines = ["Ünïcode 🙂 text, Ελληνικά and 日本語 — line {}".format(i) for i in range(300)]
    path = tmp_path / "book.txt"
    path.write_bytes("\r\n".join(lines).encode("utf-8"))
    config = replace(CharLMConfig.smoke(), **{"data.source": str(path), "train.epochs": 1})
    APP.train(config, tmp_path / "run")
    recorded = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text(encoding="utf-8"))["data"]["splits"]
    assert "dev: 5% of train's text, cut from its end" in recorded and "\r" not in APP.load(
        tmp_path / "run").preprocessor.chars
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "test.txt").write_text("∑ unseen ∂ characters ✓", encoding="utf-8")
    metrics = APP.evaluate(tmp_path / "run", source=str(tmp_path / "other"))
    assert np.isfinite(metrics["bpc"]) and metrics["characters"] == len("∑ unseen ∂ characters ✓") - 1
    (row,) = APP.predict(tmp_path / "run", ["∑🙂"], length=10)
    assert len(row["generated"]) == 10


@pytest.mark.parametrize("name, content, message", [
    ("train.txt", b"", r"train.txt is empty"),
    ("train.txt", b"good text\nthen \xff bad", r"train.txt: byte 15 \(line 2\) is not valid UTF-8"),
    ("train.txt", "utf-16 text".encode("utf-16"), r"train.txt is UTF-16"),
    ("valid.txt", b"no train file", r"has no train.txt"),
])
def test_bad_text_is_one_clear_error_and_no_run(tmp_path, name, content, message):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / name).write_bytes(content)
    config = replace(CharLMConfig.smoke(), **{"data.source": str(tmp_path / "data")})
    with pytest.raises(DataError, match=message):
        APP.train(config, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_tfds_tiny_shakespeare_through_mock_data(tmp_path):
    config = replace(CharLMConfig.smoke(), **{"data.source": "tfds:tiny_shakespeare", "train.epochs": 1})
    with tfds.testing.mock_data(num_examples=3, policy=tfds.testing.MockPolicy.USE_CODE):
        metrics = APP.train(config, tmp_path / "run")
    assert metrics["examples"] == 3 and np.isfinite(metrics["bpc"])


@pytest.mark.skipif(native_lstm.unavailable_reason() is not None and not os.environ.get("CI"),
                    reason="native LSTM unavailable here (CI builds it)")
def test_native_training_and_its_clash_with_xla(tmp_path):
    """model.native=true trains through the native op (over prefer_fused's built-in), records it,
    and refuses train.jit_compile=on with the setting to change."""
    config = replace(CharLMConfig.smoke(), **{"model.native": True, "train.epochs": 1})
    metrics = APP.train(config, tmp_path / "run")
    assert np.isfinite(metrics["bpc"])
    recorded = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text(encoding="utf-8"))["model"]
    assert recorded["native"] is True and "native=True" in recorded["implementation"]
    stack = APP.load(tmp_path / "run").model.get_layer("carried_state").stack
    assert all(layer.native for layer in stack.recurrent_layers)
    with pytest.raises(ConfigError, match=r"model.native=true .* set train.jit_compile=off \(or auto\), not on"):
        APP.train(replace(config, **{"train.jit_compile": "on"}), tmp_path / "other")
