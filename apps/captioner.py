"""The captioning app's serving module: encoded images in, captions out (greedy or beam search)
in-graph, and the encoder and decoder-step functions that ONNX and TFLite get."""

from __future__ import annotations

import keras
import tensorflow as tf

from apps.seq2seq import AttentionDecoding, named_function
from pipelines.caption_preprocessor import CaptionPreprocessor
from pipelines.images import decode_batch
from pipelines.text_preprocessors import EOS


class Captioner(AttentionDecoding):
    """Encoded images (JPEG / PNG bytes) in, captions out (greedy or beam search), in-graph."""

    def __init__(self, model: keras.Model, preprocessor: CaptionPreprocessor, config):
        encoder = keras.Model(model.get_layer("image").output,
                              [model.get_layer("memory").output, model.get_layer("initial_state").output])
        super().__init__(encoder, model.get_layer("decoder"), preprocessor.bos_id, preprocessor.eos_id,
                         preprocessor.target_max_length + config.decode.extra_length, config.decode.alpha)
        self.model, self.config, self.preprocessor = model, config, preprocessor
        self.size, self.positions = preprocessor.image_size, int(model.get_layer("memory").output.shape[1])
        self.grid = tuple(int(d) for d in model.get_layer("image_encoder").output.shape[1:3])
        self.tables = preprocessor.tables()  # tracked: the SavedModel saves them
        self.ids_to_text = preprocessor.target_text(tf.constant(preprocessor.target_vocab.tokens))
        self.raw_spec = self.images_signature()  # decode_text: resized images -> captions
        # One step as a tf.function whose inputs are named token_ids, memory, keys, state_*.
        self.step_function = named_function(self.image_step, ["token_ids", "memory", "keys", *self.state_names])

    def memory_mask(self, images):
        return tf.ones([tf.shape(images)[0], self.positions], tf.bool)  # every grid position

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="images")])
    def caption(self, images):
        return {"caption": self.ids_to_text(self.decode_ids(decode_batch(images, self.size)))}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="images")])
    def caption_beam(self, images):
        ids = self.decode_ids(decode_batch(images, self.size), self.config.decode.beam_width)
        return {"caption": self.ids_to_text(ids)}

    def image_step(self, token_ids, memory, keys, *states):
        """One decoder step over the image's grid (every position visible); the new states come
        out as `next_state_*` (ONNX refuses an output named as an input)."""
        logits, states, weights = self.decoder.step(token_ids, list(states), memory, keys)
        return {"logits": logits, "attention": weights, **{f"next_{n}": s for n, s in zip(self.state_names, states)}}

    def image_step_signature(self, batch=None) -> list[tf.TensorSpec]:
        return [spec for spec in self.step_signature(batch, self.positions) if spec.name != "source_ids"]

    def images_signature(self, batch=None) -> tf.TensorSpec:
        return tf.TensorSpec([batch, self.size, self.size, 3], tf.float32, name="images")

    def attention_map(self, image, caption: str):
        """Teacher-forced attention of `caption` (+ [EOS]) over the grid: (words, grid h, grid w)."""
        caption_in, _ = self.preprocessor.teacher_forcing()(tf.constant([caption]))
        memory, first_h = self.encoder(image[None])
        _, weights = self.decoder(caption_in.to_tensor(), memory, initial_state=first_h, return_attention=True)
        words = self.preprocessor.target_vocab.decode(caption_in.to_tensor().numpy()[0, 1:]) + [EOS]
        return weights.numpy()[0, : len(words)].reshape(len(words), *self.grid), words
