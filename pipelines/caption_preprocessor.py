"""Captioned images -> ((image, caption_in), caption_out) batches: each image read and decoded
once (then kept decoded and resized in memory), paired with each of its captions, brightness and
contrast changed in training only; captions -> `[BOS] ids` and `ids [EOS]` (`TargetSide`)."""

from __future__ import annotations

import pathlib

import numpy as np
import tensorflow as tf

from pipelines.caption_files import ImageCaptions
from pipelines.images import augment, decode_resize
from pipelines.lengths import length_stats
from pipelines.text_preprocessors import (BOS, EOS, SETTINGS, TargetSide, TextPreprocessor, _count_cut,
                                          max_length_from, read_json, write_json)
from pipelines.vocabulary import Vocabulary


def image_dataset(examples: list[ImageCaptions], size: int) -> tf.data.Dataset:
    """The examples' images (files or encoded bytes), decoded and resized to (size, size, 3)
    float32, in order."""
    sources = [e.image for e in examples]
    ds = tf.data.Dataset.from_tensor_slices(sources)
    if isinstance(sources[0], str):
        ds = ds.map(tf.io.read_file, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.map(lambda encoded: decode_resize(encoded, size), num_parallel_calls=tf.data.AUTOTUNE)


class CaptionPreprocessor(TargetSide, TextPreprocessor):
    """`data` needs `image_size` and `captions_per_image` (in training, that many of each image's
    captions, drawn anew every epoch; 0: all) besides the text settings; `data.lowercase` folds
    the captions (what the model writes, and what BLEU is computed against)."""

    INPUT_SIDE = "target"

    def __init__(self, data, seed: int = 0, shuffle_buffer: int = 20000, target_max_length: int | None = None):
        super().__init__(data, seed, shuffle_buffer)
        self.target_vocab: Vocabulary | None = None
        self.target_max_length = target_max_length
        self.image_size = data.image_size
        self.target_lowercase = data.lowercase

    def fit(self, examples: list[ImageCaptions]) -> dict:
        captions = [c for e in examples for c in e.captions]
        self.target_vocab, lengths = self.fit_side("target", captions, self.target_lowercase, reserved=(BOS, EOS))
        lengths = [n + 1 for n in lengths]  # + [EOS]
        self.notes[:0] = [f"train: {len(examples)} images, {len(captions)} captions; vocabulary {len(self.target_vocab)}"]
        self.target_max_length = max_length_from(self.target_max_length,
                                                 length_stats(lengths, self.data.length_percentile),
                                                 "caption (with [EOS]) ", self.notes)
        _count_cut(lengths, self.target_max_length, "training captions", "decode.target_max_length", self.notes)
        return {"target_max_length": self.target_max_length, "target_vocab_size": len(self.target_vocab)}

    def tables(self):
        return {"target": self.side_resources("target", self.target_vocab)}

    def images(self, examples: list[ImageCaptions]) -> tf.data.Dataset:
        """The examples' images, decoded and resized: (size, size, 3) float32, in order."""
        return image_dataset(examples, self.image_size)

    def dataset(self, examples: list[ImageCaptions], training: bool, features: np.ndarray | None = None
                ) -> tf.data.Dataset:
        """((image (batch, size, size, 3) float32 0..255, caption_in), caption_out) batches; an
        image appears once per caption of it, decoded once. `features` (one row per example, such
        as a frozen encoder's output computed once) stand in for the images: nothing is decoded and
        nothing augmented (it would change them)."""
        captions = tf.ragged.constant([list(e.captions) for e in examples], dtype=tf.string)
        if features is None:
            images = self.images(examples).map(lambda image: tf.cast(tf.round(image), tf.uint8)).cache()  # 4x smaller
        elif len(features) != len(examples):
            raise ValueError(f"features has {len(features)} rows for {len(examples)} examples")
        else:
            images = tf.data.Dataset.from_tensor_slices(features)
        ds = tf.data.Dataset.zip(images, tf.data.Dataset.from_tensor_slices(captions))
        if training and self.data.captions_per_image:  # a new draw of each image's captions every epoch
            ds = ds.map(lambda image, texts: (image, tf.random.shuffle(texts, seed=self.seed)[
                : self.data.captions_per_image]))
        ds = ds.flat_map(lambda image, texts: tf.data.Dataset.from_tensor_slices(texts).map(lambda t: (image, t)))
        if training:
            pairs = sum(min(len(e.captions), self.data.captions_per_image or len(e.captions)) for e in examples)
            ds = ds.shuffle(self.shuffle_size(pairs, training), seed=self.seed)
        ds = ds.batch(self.data.batch_size)
        if training and features is None:  # a seed per batch, new each epoch, for the augmentation
            seeds = tf.data.Dataset.random(seed=self.seed, rerandomize_each_iteration=True).batch(2)
            ds = tf.data.Dataset.zip(ds, seeds).map(lambda batch, seed: (*batch, seed))

        teacher_forcing = self.teacher_forcing()

        def encode(images, texts, seed=None):
            images = tf.cast(images, tf.float32)
            if seed is not None:
                images = augment(images, seed)
            caption_in, caption_out = teacher_forcing(texts)
            return (images, caption_in.to_tensor()), caption_out.to_tensor()

        return ds.map(encode, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)

    def save(self, directory: pathlib.Path) -> None:
        self.save_subwords(directory)
        self.target_vocab.save(directory / "target_vocab.txt")
        write_json(directory / SETTINGS, {"target_max_length": self.target_max_length, "image_size": self.image_size})

    @classmethod
    def load(cls, directory: pathlib.Path, data, **options) -> "CaptionPreprocessor":
        p = cls(data, **options)
        p.load_subwords(directory)
        p.target_vocab = Vocabulary.load(directory / "target_vocab.txt")
        settings = read_json(directory / SETTINGS)
        p.target_max_length, p.image_size = settings["target_max_length"], settings["image_size"]
        return p

    def assets(self) -> dict:
        return {**self.target_assets(), "image_size": self.image_size,
                "image": f"RGB, resized to {self.image_size}x{self.image_size} with antialiasing, float32 in 0..255 "
                         "(pipelines.images.read_python)"}

    @staticmethod
    def images_from_assets(assets: dict, encoded: list[bytes]) -> np.ndarray:
        from pipelines.images import read_python

        return np.stack([read_python(e, assets["image_size"]) for e in encoded])
