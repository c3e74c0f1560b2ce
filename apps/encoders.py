"""The token embedding and recurrent encoder of the text apps, with the config's
regularization, and how the encoder runs (recorded as `model.implementation`); the image
encoder of the captioning app."""

from __future__ import annotations

import pathlib

import keras
import numpy as np
import tensorflow as tf

from apps.config import ConfigError, RegularizationConfig
from apps.training import Progress, log
from layers.embedding_dropout import DropoutEmbedding
from layers.masked_pooling import MaskedPooling
from layers.recurrent_stack import RecurrentStack, describe_implementation, fusable_options

# Each masked layer gets a seed of its own: generators with one seed draw related masks.
EMBEDDING_SEED, ENCODER_SEED = 1, 2


def token_embedding(vocab_size: int, dim: int, regularization: RegularizationConfig, seed: int, name: str):
    """Ids -> vectors with a padding mask, and embedding dropout from the config."""
    return DropoutEmbedding(vocab_size, dim, mask_zero=True, embedding_dropout=regularization.embedding_dropout,
                            seed=seed + EMBEDDING_SEED, name=name)


def recurrent_encoder(cell: str, units: list[int], regularization: RegularizationConfig, seed: int, name: str,
                      **stack_options) -> RecurrentStack:
    """A `RecurrentStack` of `cell` on the fused built-in where it can be, with the config's
    dropout; `stack_options` as `RecurrentStack` (bidirectional, return_sequences...)."""
    return RecurrentStack(cell, units, prefer_fused=True, cell_options=fusable_options(cell),
                          seed=seed + ENCODER_SEED, name=name, **regularization.stack_options(), **stack_options)


def encoder_implementation(cell: str, regularization: RegularizationConfig, prefer_fused: bool = True,
                           native: bool = False) -> str:
    """What `recurrent_encoder` runs: the fused built-in, or our cell in `layers.Recurrent`."""
    return describe_implementation(cell, fusable_options(cell), prefer_fused=prefer_fused,
                                   recurrent_dropout=regularization.recurrent_dropout, native=native)


def pooled_classifier(x, model, regularization: RegularizationConfig, seed: int, encoder_name: str,
                      suffix: str = ""):
    """Masked sequence `x` -> class logits, the head of the many-to-one apps (sentiment, speech):
    `recurrent_encoder` with `model.cell`, `units`, `num_layers`, `bidirectional`; `model.pooling`
    over the unmasked steps (`last` is the stack's own final output, which skips padding and joins
    both directions' final states); dropout `model.dropout`; a dense layer of `model.num_classes`.
    The layers after the encoder are named `..._pooling`, `dropout` and `logits`, plus `suffix`."""
    x = recurrent_encoder(model.cell, [model.units] * model.num_layers, regularization, seed, name=encoder_name,
                          bidirectional=model.bidirectional, return_sequences=model.pooling != "last")(x)
    if model.pooling != "last":
        x = MaskedPooling(model.pooling, name=f"{model.pooling}_pooling{suffix}")(x)
    x = keras.layers.Dropout(model.dropout, seed=seed, name=f"dropout{suffix}")(x)
    return keras.layers.Dense(model.num_classes, name=f"logits{suffix}")(x)


def classification_loss_and_metrics() -> tuple:
    """(loss, metrics) of the classifiers: cross-entropy from logits, accuracy."""
    return (keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            [keras.metrics.SparseCategoricalAccuracy(name="accuracy")])


def image_encoder(m, size: int) -> keras.Model:
    """(batch, size, size, 3) float 0..255 -> (batch, grid, grid, channels) features, from the
    captioning app's `model` section: `encoder` "cnn" (`cnn_blocks` of two 3x3 convolutions and a
    pooling, `cnn_filters` doubled per block) or a `keras.applications` backbone built with
    `weights=None` (never a download) and loaded from `encoder_weights`, frozen unless
    `encoder_trainable`."""
    image = keras.Input((size, size, 3), name="image_in")
    if m.encoder == "cnn":
        x = keras.layers.Rescaling(1 / 127.5, offset=-1.0)(image)
        for block in range(m.cnn_blocks):
            filters = m.cnn_filters * 2 ** block
            x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
            x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
            x = keras.layers.MaxPooling2D()(x)
        return keras.Model(image, x, name="image_encoder")
    factory = {"mobilenet_v3_small": keras.applications.MobileNetV3Small,
               "efficientnet_b0": keras.applications.EfficientNetB0}[m.encoder]
    options = {"include_preprocessing": True} if m.encoder.startswith("mobilenet") else {}
    backbone = factory(input_tensor=image, include_top=False, weights=None, **options)  # never a download
    if m.encoder_weights:
        if not pathlib.Path(m.encoder_weights).is_file():
            raise ConfigError(f"model.encoder_weights: {m.encoder_weights} does not exist")
        try:
            backbone.load_weights(m.encoder_weights)
        except Exception as e:  # a file of another network or cut short
            raise ConfigError(f"model.encoder_weights: {m.encoder_weights} does not fit {m.encoder} "
                              f"({type(e).__name__}: {str(e).splitlines()[0][:160]})") from None
    backbone.trainable = m.encoder_trainable
    return keras.Model(image, backbone.output, name="image_encoder")


def frozen_features(encoder: keras.Model, images: tf.data.Dataset, count: int, batch_size: int = 64) -> np.ndarray:
    """A frozen encoder's outputs for `count` images, in order, computed once (inference mode):
    float16 to halve their memory, float32 where a value would overflow it."""
    encode = tf.function(lambda batch: encoder(batch, training=False), reduce_retracing=True)
    progress, out = Progress(count, "encoding images (frozen encoder, once)"), []
    for batch in images.batch(batch_size):
        out.append(encode(batch).numpy())
        progress.update(int(batch.shape[0]))
    values = np.concatenate(out)
    values = values.astype(np.float16) if np.abs(values).max() < 6e4 else values
    log(f"features of {count} images cached: {values.shape[1:]} {values.dtype} each, {values.nbytes / 2 ** 20:.0f} MiB")
    return values
