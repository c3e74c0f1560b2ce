"""Images for the models: encoded JPEG or PNG bytes -> RGB, resized to a square, float32 in
0..255 (each image encoder normalises its input itself: `Rescaling` in the from-scratch CNN,
the backbones' own preprocessing in `keras.applications`), in TensorFlow for tf.data and the
SavedModel, and in Python (Pillow) for runtimes without TensorFlow.
"""

from __future__ import annotations

import io

import numpy as np
import tensorflow as tf


def decode_resize(encoded, size: int):
    """One encoded JPEG / PNG (a scalar string) -> (size, size, 3) float32, 0..255: decoded as
    RGB (grey and RGBA converted), resized with antialiasing (area-like when shrinking)."""
    image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    return tf.image.resize(tf.cast(image, tf.float32), (size, size), antialias=True)


def decode_batch(encoded, size: int):
    """(batch,) encoded images -> (batch, size, size, 3) float32."""
    return tf.map_fn(lambda e: decode_resize(e, size), encoded,
                     fn_output_signature=tf.TensorSpec((size, size, 3), tf.float32))


def augment(images, seed):
    """Training-time changes that keep what a caption says (no flips: "left of" would lie):
    brightness and contrast per image. images (batch, size, size, 3) in 0..255; seed (2,) int."""
    seeds = tf.random.experimental.stateless_split(seed, 2)
    batch = tf.shape(images)[0]
    brightness = tf.random.stateless_uniform([batch, 1, 1, 1], seeds[0], -20.0, 20.0)
    contrast = tf.random.stateless_uniform([batch, 1, 1, 1], seeds[1], 0.8, 1.2)
    mean = tf.reduce_mean(images, axis=[1, 2, 3], keepdims=True)
    return tf.clip_by_value((images - mean) * contrast + mean + brightness, 0.0, 255.0)


def read_python(encoded: bytes, size: int) -> np.ndarray:
    """The Python twin of `decode_resize` (Pillow; its resampling differs from TensorFlow's by a
    few levels at edges): for ONNX and TFLite predictions without TensorFlow."""
    from PIL import Image

    with Image.open(io.BytesIO(encoded)) as image:
        rgb = image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR, reducing_gap=None)
        return np.asarray(rgb, np.float32)
