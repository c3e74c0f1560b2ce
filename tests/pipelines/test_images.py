"""Images in the captioning pipeline: decoding, resizing, the Python twin, and how many pairs an
epoch makes of images with several captions."""

import dataclasses

import numpy as np
import tensorflow as tf

from pipelines import synthetic_scenes
from pipelines.caption_files import ImageCaptions
from pipelines.caption_preprocessor import CaptionPreprocessor
from pipelines.images import augment, decode_batch, decode_resize, read_python


@dataclasses.dataclass(frozen=True)
class Data:
    image_size: int = 32
    captions_per_image: int = 0
    lowercase: bool = False
    vocab_size: int = 100
    min_count: int = 1
    length_percentile: float = 100.0
    batch_size: int = 4
    tokenizer: str = "words"


def test_jpeg_grey_and_rgba_png_decode_to_rgb_of_the_size():
    image = synthetic_scenes.generate(1, 0)[0].image
    grey = tf.image.rgb_to_grayscale(image)
    rgba = tf.concat([image, tf.fill([*image.shape[:2], 1], tf.constant(255, tf.uint8))], -1)
    for encoded in (tf.io.encode_jpeg(image), tf.io.encode_png(grey), tf.io.encode_png(rgba)):
        out = decode_resize(encoded, 20).numpy()
        assert out.shape == (20, 20, 3) and out.dtype == np.float32 and 0 <= out.min() and out.max() <= 255
    same = decode_resize(tf.io.encode_png(image), image.shape[0]).numpy()
    np.testing.assert_allclose(same, image, atol=1e-3)  # the image's own size: unchanged


def test_the_python_twin_decodes_like_tensorflow():
    image = synthetic_scenes.generate(1, 3)[0].image
    encoded = tf.io.encode_png(image).numpy()
    np.testing.assert_array_equal(read_python(encoded, 48), image)  # the same size: exact
    small_tf, small_py = decode_resize(encoded, 24).numpy(), read_python(encoded, 24)
    assert np.abs(small_tf - small_py).mean() < 3.0  # resamplers differ a little at edges
    batch = decode_batch(tf.constant([encoded, encoded]), 24).numpy()
    np.testing.assert_array_equal(batch[0], small_tf)


def test_augmentation_keeps_the_range_and_changes_only_in_training():
    images = tf.constant(np.stack([s.image for s in synthetic_scenes.generate(3, 1)]).astype("float32"))
    out = augment(images, tf.constant([1, 2])).numpy()
    assert out.shape == images.shape and 0 <= out.min() and out.max() <= 255 and not np.allclose(out, images)


def test_an_epoch_pairs_each_image_with_its_captions():
    scenes = synthetic_scenes.generate(6, 2)
    examples = [ImageCaptions(tf.io.encode_png(s.image).numpy(), s.captions + ("one more",), f"#{i}")
                for i, s in enumerate(scenes)]
    for per_image, expected in ((0, 18), (1, 6)):
        p = CaptionPreprocessor(Data(captions_per_image=per_image))
        p.fit(examples)
        batches = list(p.dataset(examples, training=True))
        (images, caption_in), caption_out = batches[0]
        assert images.shape[1:] == (32, 32, 3) and images.dtype == tf.float32
        assert caption_in.shape == caption_out.shape and (caption_in.numpy()[:, 0] == p.bos_id).all()
        assert sum(len(b[1]) for b in batches) == expected
    dev = list(p.dataset(examples, training=False))
    assert sum(len(b[1]) for b in dev) == 18  # scored on every caption
