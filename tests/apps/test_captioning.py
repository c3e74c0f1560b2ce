"""The captioning app: learning on rendered scenes (the decoder must look at the image, and where),
beam search, and bad input. Export parity and the lifecycle: tests/apps/test_app_contract.py."""

import csv

import numpy as np
import pytest
import tensorflow as tf

from apps.captioning import Captioner
from apps.seq2seq import caption_scores
from apps.config import replace
from apps.registry import get_app
from pipelines import synthetic_scenes
from pipelines.caption_files import ImageCaptions, read_caption_directory
from pipelines.errors import DataError

APP = get_app("captioning")
TRAIN_SIZE, SEED = 800, 42  # the synthetic source's train split is generate(size, seed)


def _png(image) -> bytes:
    return tf.io.encode_png(image).numpy()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    config = replace(APP.config_class(), **{
        "data.source": f"synthetic?size={TRAIN_SIZE}", "data.image_size": 32, "data.min_count": 1, "seed": SEED,
        "data.captions_per_image": 0,
        "model.cnn_filters": 24, "model.cnn_blocks": 3, "model.units": 64, "model.embedding_dim": 32,
        "model.attention_units": 32, "train.epochs": 14, "train.learning_rate": 3e-3})
    run = tmp_path_factory.mktemp("captioning") / "run"
    APP.train(config, run)
    loaded = APP.load(run)
    scenes = synthetic_scenes.generate(150, 999)  # held out
    return loaded, Captioner(loaded.model, loaded.preprocessor, loaded.config), scenes


def test_captions_beat_the_nearest_caption_and_need_the_image(trained):
    loaded, captioner, scenes = trained
    examples = [ImageCaptions(_png(s.image), s.captions, f"#{i}") for i, s in enumerate(scenes)]
    bleu = APP.score(loaded, examples)["bleu4"]
    # Baseline: the first caption of the nearest training image (pixels, 12 x 12 thumbnails).
    train = synthetic_scenes.generate(TRAIN_SIZE, SEED)

    def thumbnails(images):
        return tf.image.resize(np.stack(images).astype("float32"), (12, 12)).numpy().reshape(len(images), -1)

    known, queries = thumbnails([s.image for s in train]), thumbnails([s.image for s in scenes])
    nearest = ((queries[:, None] - known[None]) ** 2).sum(-1).argmin(1)
    baseline = caption_scores([train[j].captions[0] for j in nearest], [s.captions for s in scenes])["bleu4"]
    # Every image's captions paired with another image: a decoder that ignored the image would not care.
    order = np.random.default_rng(0).permutation(len(examples))
    shuffled = APP.score(loaded, [ImageCaptions(examples[j].image, e.captions, e.where)
                                  for j, e in zip(order, examples)])["bleu4"]
    print(f"\nBLEU-4: captioner {bleu:.1f}, nearest-caption baseline {baseline:.1f}, images shuffled {shuffled:.1f}")
    assert bleu > baseline + 10
    assert shuffled < 0.5 * bleu


def test_greedy_captions_name_the_colours_and_shapes(trained):
    _, captioner, scenes = trained
    single = [s for s in scenes if len(s.objects) == 1]
    images = tf.constant(np.stack([s.image for s in single]).astype("float32"))
    images = tf.image.resize(images, (captioner.size, captioner.size), antialias=True)
    captions = [c.decode() for c in captioner.decode_text(images).numpy()]
    right = [s.objects[0][0] in c.split() and s.objects[0][1] in c.split() for s, c in zip(single, captions)]
    print(f"\nsingle objects named right (colour and shape): {np.mean(right):.2f} of {len(single)}")
    assert np.mean(right) >= 0.7
    # beam width 1 is greedy search
    np.testing.assert_array_equal(captioner.decode_ids(images, 1).numpy(), captioner.decode_ids(images).numpy())


def test_attention_for_a_colour_falls_on_the_object_that_has_it(trained):
    _, captioner, scenes = trained
    pairs = [s for s in scenes if len(s.objects) == 2 and s.objects[0][:2] != s.objects[1][:2]][:40]
    masses = []
    for s in pairs:
        image = tf.image.resize(s.image.astype("float32"), (captioner.size, captioner.size), antialias=True)
        caption = s.captions[0]  # "a c1 s1 left of a c2 s2": c1 on the left, c2 on the right
        weights, words = captioner.attention_map(image, caption)
        half = weights.shape[2] // 2
        masses.append(weights[1, :, :half].sum())  # "c1": the left half
        masses.append(weights[words.index(s.objects[1][0], 2), :, half:].sum())  # "c2": the right half
    print(f"\nattention mass on the object of the colour word: {np.mean(masses):.2f} ({len(masses)} words)")
    assert np.mean(masses) > 0.5


def _write_directory(root, rows, files):
    (root / "images").mkdir(parents=True)
    for name, data in files.items():
        (root / "images" / name).write_bytes(data)
    (root / "train.tsv").write_bytes(rows)


def test_bad_input_names_the_file_and_line_before_any_run(tmp_path):
    scene = synthetic_scenes.generate(1, 0)[0]
    png, jpeg = _png(scene.image), tf.io.encode_jpeg(scene.image).numpy()
    good = {"a.jpg": jpeg, "b.png": png}
    cases = {
        "missing": (b"a.jpg\ta shape\nnone.jpg\ta shape\n", "train.tsv:2: image .*none.jpg does not exist"),
        "cut": (b"cut.jpg\ta shape\n", "train.tsv:1: .*cut.jpg is a JPEG cut short"),
        "random": (b"noise.jpg\ta shape\n", "train.tsv:1: .*noise.jpg is not a JPEG or PNG image"),
        "html": (b"page.jpg\ta shape\n", "train.tsv:1: .*page.jpg is not an image: it looks like HTML"),
        "empty caption": (b"a.jpg\t \n", "train.tsv:1: empty caption"),
        "no tab": (b"a.jpg a shape\n", "train.tsv:1: expected exactly one tab"),
        "escape": (b"../a.jpg\ta shape\n", "train.tsv:1: image path '../a.jpg' leaves the images/ folder"),
    }
    extra = {"cut.jpg": jpeg[: len(jpeg) // 2], "noise.jpg": bytes(range(256)) * 4,
             "page.jpg": b"<!DOCTYPE html><html><body>Not found</body></html>"}
    for i, (name, (rows, message)) in enumerate(cases.items()):
        _write_directory(tmp_path / str(i), rows, {**good, **extra})
        with pytest.raises(DataError, match=message):
            read_caption_directory(str(tmp_path / str(i)))
    # a PNG among JPEGs, CRLF lines and two captions of one image: read, grouped by image
    _write_directory(tmp_path / "ok", b"a.jpg\ta red shape\r\nb.png\ta shape\r\na.jpg\tanother caption\r\n", good)
    splits, _ = read_caption_directory(str(tmp_path / "ok"))
    assert [e.captions for e in splits["train"]] == [("a red shape", "another caption"), ("a shape",)]
    # and training stops before a run directory exists
    config = replace(APP.config_class.smoke(), **{"data.source": str(tmp_path / "0")})
    with pytest.raises(DataError, match="does not exist"):
        APP.train(config, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_tfds_coco_captions_through_mock_data(tmp_path):
    import tensorflow_datasets as tfds

    config = replace(APP.config_class.smoke(), **{"data.source": "tfds:coco_captions", "train.epochs": 1})
    with tfds.testing.mock_data(num_examples=12, policy=tfds.testing.MockPolicy.USE_CODE):
        metrics = APP.train(config, tmp_path / "run")
    assert metrics["examples"] > 0 and "bleu4" in metrics


def test_a_keras_applications_backbone_from_a_local_weights_file(tmp_path):
    """weights=None (never a download); the file's weights load; frozen means not trainable; a
    missing or unfitting file is one line naming it."""
    from apps.encoders import image_encoder
    from apps.config import ConfigError

    model_config = replace(APP.config_class(), **{"model.encoder": "mobilenet_v3_small",
                                                  "model.encoder_trainable": False}).model
    encoder = image_encoder(model_config, 64)
    assert encoder.output.shape[1:3] == (2, 2) and not any(w.trainable for w in encoder.weights)
    saved = tmp_path / "mobilenet.weights.h5"
    source = image_encoder(replace(model_config, encoder_trainable=True), 64)
    source.save_weights(saved)
    loaded = image_encoder(replace(model_config, encoder_weights=str(saved)), 64)
    for a, b in zip(loaded.weights, source.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    with pytest.raises(ConfigError, match="does not exist"):
        image_encoder(replace(model_config, encoder_weights=str(tmp_path / "none.h5")), 64)
    (tmp_path / "bad.weights.h5").write_bytes(b"not hdf5")
    with pytest.raises(ConfigError, match="bad.weights.h5 does not fit mobilenet_v3_small"):
        image_encoder(replace(model_config, encoder_weights=str(tmp_path / "bad.weights.h5")), 64)


def test_a_frozen_backbone_trains_the_rest_on_its_features_computed_once(tmp_path):
    """model.encoder_trainable=false: the layers after the backbone train on its features of each
    image, computed once (train and dev) instead of every step; on the same images and captions
    they give the whole model's logits, and the saved model (images in) reaches the dev loss that
    training logged on the cached features."""
    config = replace(APP.config_class.smoke(), **{"model.encoder": "mobilenet_v3_small", "data.image_size": 64,
                                                  "model.encoder_trainable": False, "train.epochs": 2})
    splits, _ = APP.load_splits(config)
    preprocessor = APP.make_preprocessor(config)
    config = APP.resolve(config, preprocessor.fit(splits["train"]))
    datasets = {name: preprocessor.dataset(splits[name], training=name == "train") for name in ("train", "dev")}
    model = APP.build_model(config)
    APP.compile(model, config)
    head, cached = APP.fitted_part(model, config, preprocessor, splits, datasets)
    assert head is not model and cached["train"].element_spec[0][0].shape[1:] == (2, 2, 576)
    (features, caption_in), _ = next(iter(cached["dev"]))
    (images, same_captions), _ = next(iter(datasets["dev"]))
    np.testing.assert_array_equal(caption_in, same_captions)
    np.testing.assert_allclose(head((features, caption_in)), model((images, caption_in)), atol=2e-3)
    uncached = replace(config, **{"data.cache_features": False})
    assert APP.fitted_part(model, uncached, preprocessor, splits, datasets) == (model, datasets)

    run = tmp_path / "run"
    APP.train(config, run)
    loaded = APP.load(run)
    logged = min(float(row["val_loss"]) for row in csv.DictReader((run / "history.csv").open()))
    APP.compile(loaded.model, loaded.config)
    loss = loaded.model.evaluate(loaded.preprocessor.dataset(splits["dev"], training=False), verbose=0)
    assert loss == pytest.approx(logged, rel=1e-3)
