import json
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from apps.cli import main
from apps.config import replace, to_yaml
from apps.translation import TranslationConfig, Translation, Translator
from export.step_loop import greedy_step_loop
from pipelines.text_encoding import pad_ids
from pipelines.synthetic_translation import generate

APP = Translation()


def test_synthetic_pairs_reorder_and_agree():
    for s in generate(300, seed=4):
        source, target = s.source.split(), s.target.split()
        verb = target[-1]
        subject_plural = source[source.index("the") + 1 + (source[1] in ("big", "small", "red", "old", "young",
                                                                           "quick", "lazy", "happy"))].endswith("s")
        assert verb.endswith("aru" if subject_plural else "an"), s
        assert len(s.alignment) == len(target) and max(s.alignment) < len(source)


def test_attention_beats_the_summary_baseline_and_aligns(tmp_path):
    results = {}
    for attention in ("bahdanau", "none"):
        config = replace(TranslationConfig(), **{"data.source": "synthetic?size=2500", "train.epochs": 7,
                                                 "model.attention": attention, "data.tokenizer": "words",
                                                 "data.batch_size": 64})  # alignments are per word
        results[attention] = APP.train(config, tmp_path / attention)
    print(f"\nBLEU with attention {results['bahdanau']['bleu']:.1f}, without {results['none']['bleu']:.1f}")
    assert results["bahdanau"]["bleu"] >= 80
    assert results["bahdanau"]["bleu"] > results["none"]["bleu"] + 10

    loaded = APP.load(tmp_path / "bahdanau")
    translator = Translator(loaded.model, loaded.preprocessor, loaded.config)
    mass = []
    for sample in generate(250, loaded.config.seed + 2)[:60]:  # the test split, with alignments
        weights, _, target_tokens = translator.attention_map(sample.source, sample.target)
        mass.extend(weights[i, j] for i, j in enumerate(sample.alignment) if target_tokens[i] != "lo")
    print(f"mean attention on the aligned source word: {np.mean(mass):.2f}")
    assert np.mean(mass) > 0.5


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    directory = tmp_path_factory.mktemp("translation")
    config_file = directory / "smoke.yaml"
    config_file.write_text(to_yaml(TranslationConfig.smoke()))
    run = directory / "run"
    assert main(["train", "translation", "--out", str(run), "--config", str(config_file)]) == 0
    return run


@pytest.mark.slow  # the CLI over all formats again; the app contract checks the same lifecycle
def test_cli_evaluate_predict_and_export(smoke_run, tmp_path, capsys):
    capsys.readouterr()
    images = {value.tag for path in (smoke_run / "logs" / "images").glob("events.out.tfevents.*")
              for event in tf.compat.v1.train.summary_iterator(str(path)) for value in event.summary.value}
    assert images == {"attention/0", "attention/1", "attention/2"}  # TensorBoard's attention maps
    assert main(["evaluate", str(smoke_run), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert {"bleu", "chrf"} <= set(metrics) and 0 <= metrics["bleu"] <= 100
    assert main(["evaluate", str(smoke_run), "--beam", "2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["decoder"] == "beam 2"

    assert main(["predict", str(smoke_run), "the dog sees the cat", "the zebras wibble", "--json"]) == 0
    greedy = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [g["text"] for g in greedy] == ["the dog sees the cat", "the zebras wibble"]  # OOV words are fine
    assert main(["predict", str(smoke_run), "the dog sees the cat", "--beam", "1", "--plot", "--json"]) == 0
    beam = json.loads(capsys.readouterr().out)
    assert beam["translation"] == greedy[0]["translation"]  # beam width 1 is greedy
    assert os.path.exists(beam["plot"])

    out = tmp_path / "export"
    assert main(["export", str(smoke_run), "--format", "savedmodel", "--out", str(out)]) == 0
    loaded = tf.saved_model.load(str(out / "savedmodel"))
    served = loaded.signatures["serving_default"](texts=tf.constant(["the dog sees the cat"]))["translation"]
    assert served.numpy()[0].decode() == greedy[0]["translation"]  # detokenized in the graph
    assert loaded.signatures["beam"](texts=tf.constant(["the dog sees the cat", ""]))["translation"].shape == (2,)
    capsys.readouterr()
    assert main(["predict", str(out), "--runtime", "savedmodel", "the dog sees the cat", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["translation"] == greedy[0]["translation"]

    # ONNX: greedy and beam decoding loops, exactly the translator's ids. TFLite: an encoder and a
    # decoder-step model, looped on the host. Predictions through each runtime, with the Python
    # tokenizer, match the Keras run's.
    all_dir = tmp_path / "all"
    assert main(["export", str(smoke_run), "--format", "all", "--out", str(all_dir)]) == 0
    parity = json.loads((all_dir / "parity.json").read_text())
    assert set(parity) == {"savedmodel", "onnx", "onnx_beam", "tflite_encoder", "tflite_step"}
    # the encoder a fused LSTM/GRU node, the decoding loop a Loop
    assert parity["onnx"]["max_abs_diff"]["target_ids"] == 0 and "Loop" in parity["onnx_beam"]["recurrent_ops"]
    assert {"LSTM", "GRU"} & set(parity["onnx_beam"]["recurrent_ops"]), parity["onnx_beam"]
    assert max(parity["tflite_step"]["max_abs_diff"].values()) < 1e-4
    for options, message in ((["--beam", "7"], "--beam 7 with --runtime onnx is not available"),
                             (["--plot"], "--plot needs a run directory")):
        assert main(["predict", str(all_dir), "--runtime", "onnx", "the dog", *options]) == 1
        assert message in capsys.readouterr().err
    assert main(["predict", str(all_dir), "--runtime", "onnx", "the dog sees the cat", "--beam", "4", "--json"]) == 0
    assert isinstance(json.loads(capsys.readouterr().out)["translation"], str)  # decoded by the beam model
    for runtime in ("onnx", "tflite"):
        capsys.readouterr()
        assert main(["predict", str(all_dir), "--runtime", runtime, "the dog sees the cat", "the zebras wibble",
                     "--json"]) == 0
        got = [json.loads(line)["translation"] for line in capsys.readouterr().out.splitlines()]
        assert got == [g["translation"] for g in greedy], runtime

    # The SavedModel's encode / decoder_step signatures drive the same loop on the host.
    from export.runtimes import SavedModelRunner

    encode = SavedModelRunner(all_dir / "savedmodel", "encode")
    step = SavedModelRunner(all_dir / "savedmodel", "decoder_step")
    source_ids = pad_ids(tf.ragged.constant([[5, 6, 7]], dtype=tf.int32)).numpy()
    names = sorted(n for n in encode(source_ids=source_ids) if n.startswith("state_"))
    loaded = APP.load(smoke_run)
    translator = Translator(loaded.model, loaded.preprocessor, loaded.config)
    expected = [int(t) for t in translator.decode_ids(tf.constant(source_ids)).numpy()[0] if t != 0]
    assert greedy_step_loop(encode, step, {"source_ids": source_ids}, names, translator.bos_id, translator.eos_id,
                            translator.max_decode) == expected


@pytest.mark.parametrize(
    "content, message",
    [
        (b"the dog\tlo kani\nno tab here\n", "train.tsv:2: expected exactly one tab (source<TAB>target)"),
        (b"the dog\tlo kani\nthe cat\t \n", "train.tsv:2: empty target"),
    ],
)
def test_bad_rows_name_file_and_line(tmp_path, capsys, content, message):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.tsv").write_bytes(content)
    assert main(["train", "translation", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "run")]) == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_long_targets_are_truncated_with_a_count(tmp_path, capsys):
    config = replace(TranslationConfig.smoke(), **{"decode.target_max_length": 6, "train.epochs": 1})
    APP.train(config, tmp_path / "run")
    assert "training targets are longer than target_max_length=6 and were truncated" in capsys.readouterr().err


def test_tfds_translation_through_mock_data(tmp_path):
    config = replace(TranslationConfig.smoke(), **{"data.source": "tfds:ted_hrlr_translate/pt_to_en",
                                                   "train.epochs": 1})
    with tfds.testing.mock_data(num_examples=30, policy=tfds.testing.MockPolicy.USE_CODE):
        metrics = APP.train(config, tmp_path / "run")
    assert metrics["examples"] == 30 and "bleu" in metrics
