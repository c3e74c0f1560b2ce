"""The app registry: every app's name, class and what `rnnapps list` and `--help` say of it.

App modules import TensorFlow, which is slow to load: they are imported on first use, and what
the command line shows without running an app is written here.
"""

from __future__ import annotations

import dataclasses
import importlib

from apps.config import ConfigError


@dataclasses.dataclass(frozen=True)
class AppEntry:
    target: str  # "module:Class", a subclass of apps.app.App
    description: str  # one line
    data: str  # the local data format of `--data DIR`
    tfds: str = ""  # an example tfds source


APPS = {
    "sentiment": AppEntry("apps.sentiment:Sentiment",
                          "many-to-one text classification: review -> label (accuracy)",
                          "train.tsv, dev.tsv, test.tsv with text<TAB>label (or .csv with a text,label header)",
                          "tfds:imdb_reviews"),
    "tagging": AppEntry("apps.tagging:Tagging",
                        "many-to-many POS tagging: a tag per word, character features (accuracy, accuracy_oov)",
                        "*train*.conllu, *dev*.conllu, *test*.conllu (CoNLL-U; UPOS, or data.tag_column=xpos)",
                        "tfds:universal_dependencies/en_gum"),
    "speech": AppEntry("apps.speech:Speech",
                       "many-to-one over log-mel frames: spoken word -> label, SpecAugment (accuracy)",
                       "train/, dev/, test/ with one folder of .wav files per label (or data.label_from=filename)",
                       "tfds:speech_commands"),
    "translation": AppEntry("apps.translation:Translation",
                            "encoder-decoder with attention, greedy/beam search (bleu, chrf)",
                            "train.tsv, dev.tsv, test.tsv with source<TAB>target",
                            "tfds:ted_hrlr_translate/pt_to_en"),
    "charlm": AppEntry("apps.charlm:CharLM",
                       "character language model, truncated BPTT: generation, cell activations (bpc, perplexity)",
                       "train.txt, valid.txt (or dev.txt), test.txt of raw UTF-8 text, or one text file",
                       "tfds:tiny_shakespeare"),
    "captioning": AppEntry("apps.captioning:Captioning",
                           "one-to-many: image -> caption, a CNN encoder and an attentive decoder (bleu4)",
                           "images/ and train.tsv, dev.tsv, test.tsv with image_file<TAB>caption",
                           "tfds:coco_captions"),
}
DEFAULT_APP = next(iter(APPS))  # what `rnnapps demo` runs without a name


def get_app(name: str):
    """A new instance of the app `name`."""
    if name not in APPS:
        raise ConfigError(f"unknown app {name!r} (available: {', '.join(APPS)})")
    module, _, cls = APPS[name].target.partition(":")
    return getattr(importlib.import_module(module), cls)()
