"""Configs: frozen dataclasses, loaded from defaults, then YAML files, then `--set key=value`.

Unknown keys and values of the wrong type are rejected with the key named. A field may list its
allowed values in `metadata["choices"]`.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import types
import typing
from collections.abc import Iterable, Sequence

import yaml


class ConfigError(ValueError):
    """A config file or override that does not fit the app's config."""


def choice(default, choices: Sequence):
    """A field (a string or a number) restricted to `choices`."""
    return dataclasses.field(default=default, metadata={"choices": tuple(choices)})


@dataclasses.dataclass(frozen=True)
class DataConfig:
    source: str = "synthetic"  # `synthetic[?size=N&seed=S]`, `tfds:NAME[/CONFIG]` or a directory
    vocab_size: int = 20000  # cap, padding and OOV included
    min_count: int = 1  # rarer tokens become OOV
    lowercase: bool = True  # Unicode case folding before tokenization (translation: of the source only)
    max_length: typing.Optional[int] = None  # None: the training lengths' `length_percentile`
    length_percentile: float = 95.0
    batch_size: int = 32
    bucketing: bool = True  # batch sequences of similar length together (less padding)
    num_buckets: int = 6
    dev_fraction: float = 0.1  # of train, when the source has no dev split
    test_fraction: float = 0.1  # of train, when the source has no test split
    splits: str = ""  # resolved: where each split came from


@dataclasses.dataclass(frozen=True)
class TextDataConfig(DataConfig):
    """Data of the apps that read free text (sentiment, translation)."""

    # words: split on spaces and punctuation (pipelines/text_rules.py), one id per word of the
    # vocabulary; subwords: a SentencePiece model learned from train (pipelines/subwords.py), so
    # that rare and unseen words are split into known pieces, and detokenization is exact.
    tokenizer: str = choice("words", ("words", "subwords"))
    subword_vocab_size: int = 8000  # pieces per side, [PAD] and [UNK] included (tokenizer=subwords)


@dataclasses.dataclass(frozen=True)
class PretrainedEmbeddings:
    """The `model` keys of the apps whose input is words (sentiment; translation's source)."""

    # Pretrained word vectors: a word2vec-text, GloVe or fastText .vec file (gzip too) that the
    # embedding starts from (pipelines/word_vectors.py); model.embedding_dim becomes theirs.
    embeddings: str = ""
    embeddings_trainable: bool = True  # false: the vectors stay as they are
    embeddings_words: int = 0  # words of the file that train lacks, added to the vocabulary (its first ones)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    epochs: int = 5  # an upper bound when early_stopping_patience > 0
    # On the app's dev metric (`rnnapps list` names it): stop after this many epochs in a row
    # without improvement (0: never); the model keeps its best epoch's weights either way.
    early_stopping_patience: int = 3
    # Multiply the learning rate by lr_factor after each lr_patience epochs in a row without
    # improvement (0: a constant learning rate), down to min_learning_rate.
    lr_patience: int = 1
    lr_factor: float = 0.5
    min_learning_rate: float = 1e-5
    # Anneal: after each epoch from the lr_decay_start-th on, the learning rate times lr_decay
    # (1.0: no decay), whatever the dev metric does; for runs cut short by a time budget.
    lr_decay: float = 1.0
    lr_decay_start: int = 0
    optimizer: str = choice("adam", ("adam", "rmsprop", "sgd"))
    learning_rate: float = 3e-3
    clipping: str = choice("global_norm", ("none", "global_norm", "adaptive"))  # see layers/clipping.py
    global_clipnorm: typing.Optional[float] = 1.0  # the fixed threshold (adaptive: during warm-up)
    clip_decay: float = 0.99  # adaptive: running average over about 1 / (1 - decay) steps
    clip_warmup: int = 20  # adaptive: steps before the running average is used
    clip_multiplier: float = 1.0  # adaptive: threshold = multiplier x running average norm
    # Polyak averaging: the dev metric, the best epoch's weights and so the exported model are the
    # exponential moving average of the weights over the steps, with this decay per step (0: off;
    # the average spans about 1 / (1 - ema) steps). Keras's `use_ema`; training steps are unchanged.
    ema: float = 0.0
    shuffle_buffer: int = 20000
    # A finished run of the same app and model settings (pretrained on a larger related set) whose
    # weights this run starts from; input embedding rows are matched by word (apps/warm_start.py).
    init_from: str = ""
    # XLA for the training step: auto is Keras's choice (off on CPUs); on pays off for our own cells
    # (layers.Recurrent), off for keras.layers.LSTM / GRU on CPUs (README, "Recurrent cells").
    jit_compile: str = choice("auto", ("auto", "on", "off"))
    # --strategy mirrored without GPUs: split the CPU into this many logical devices, one replica
    # each (to test distributed training on one machine; no speed-up). 0: the real devices.
    cpu_devices: int = 0


@dataclasses.dataclass(frozen=True)
class RegularizationConfig:
    """Dropout of the recurrent layers (`layers.sequence_dropout`) and of the embedding."""

    embedding_dropout: float = 0.0  # whole words, per sequence (`layers.DropoutEmbedding`)
    input_dropout: float = 0.0  # on each recurrent layer's inputs
    recurrent_dropout: float = 0.0  # on h_{t-1} in the recurrent matmul (variational only; not fused)
    output_dropout: float = 0.0  # on each recurrent layer's outputs
    dropout_mode: str = choice("variational", ("variational", "naive"))  # a mask per sequence / per step
    weight_dropout: float = 0.0  # DropConnect on recurrent matrices, one mask per batch (stays fused)

    def stack_options(self) -> dict:
        """Keyword arguments of `layers.RecurrentStack`."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name.endswith("dropout") and not 0.0 <= value < 1.0:
                raise ConfigError(f"regularization.{f.name} must be in [0, 1), received {value}")
        if self.dropout_mode == "naive" and self.recurrent_dropout:
            raise ConfigError("regularization.recurrent_dropout must be 0 with dropout_mode=naive (naive dropout "
                              "leaves the recurrent connections alone); use dropout_mode=variational")
        return {"dropout": self.input_dropout, "recurrent_dropout": self.recurrent_dropout,
                "output_dropout": self.output_dropout, "dropout_mode": self.dropout_mode,
                "weight_dropout": self.weight_dropout}


def field_names(cls, prefix: str = "") -> list[str]:
    """Every leaf key of a config class, dotted: `data.batch_size`, ..."""
    names = []
    for f in dataclasses.fields(cls):
        hint = typing.get_type_hints(cls)[f.name]
        if dataclasses.is_dataclass(hint):
            names.extend(field_names(hint, f"{prefix}{f.name}."))
        else:
            names.append(prefix + f.name)
    return names


def to_dict(config) -> dict:
    return dataclasses.asdict(config)


def to_yaml(config) -> str:
    return yaml.safe_dump(to_dict(config), sort_keys=False, default_flow_style=False)


def _unknown(cls, key: str) -> ConfigError:
    valid = field_names(cls)
    close = difflib.get_close_matches(key, valid, n=2, cutoff=0.75)
    section = key.partition(".")[0] + "."
    in_section = sorted((k for k in valid if k.startswith(section)),
                        key=lambda k: -difflib.SequenceMatcher(None, key, k).ratio())
    nearby = close or in_section[:5] or valid[:6]
    hint = f"did you mean {' or '.join(repr(k) for k in close)}?" if close else f"keys near it: {', '.join(nearby)}"
    return ConfigError(f"unknown config key {key!r}; {hint} (a run's config.yaml lists every key)")


_YAML11_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def _coerce(value, hint, key: str):
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(value, inner, key)
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str) and _YAML11_FLOAT.fullmatch(value.strip()):
            return float(value)  # PyYAML (YAML 1.1) reads `1e-3` as a string: it wants `1.0e-3`
    elif hint is str:
        if isinstance(value, str):
            return value
    else:
        raise TypeError(f"config field {key} has an unsupported type {hint}")
    raise ConfigError(f"config key {key!r} expects {hint.__name__}, received {value!r}")


def _build(cls, values: dict, root, prefix: str = ""):
    hints = typing.get_type_hints(cls)
    kwargs = {}
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for name, value in values.items():
        key = prefix + name
        if name not in fields:
            raise _unknown(root, key)
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            if not isinstance(value, dict):
                raise ConfigError(f"config key {key!r} is a section; expected a mapping, received {value!r}")
            kwargs[name] = _build(hint, value, root, key + ".")
            continue
        value = _coerce(value, hint, key)
        choices = fields[name].metadata.get("choices")
        if choices and value not in choices:
            raise ConfigError(f"config key {key!r} must be one of {list(choices)}, received {value!r}")
        kwargs[name] = value
    return cls(**kwargs)


def _merge(base: dict, update: dict, cls, root, prefix: str, where: str) -> None:
    hints = typing.get_type_hints(cls)
    for name, value in update.items():
        key = prefix + str(name)
        if name not in base:
            raise ConfigError(f"{where}: " + str(_unknown(root, key)))
        if dataclasses.is_dataclass(hints[name]):
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: config key {key!r} is a section; expected a mapping, received {value!r}")
            _merge(base[name], value, hints[name], root, key + ".", where)
        else:
            base[name] = value


def _set(values: dict, cls, key: str, raw: str) -> None:
    parts = key.split(".")
    node, node_cls = values, cls
    for i, part in enumerate(parts):
        hints = typing.get_type_hints(node_cls) if dataclasses.is_dataclass(node_cls) else {}
        if part not in hints:
            raise _unknown(cls, key)
        if i == len(parts) - 1:
            if dataclasses.is_dataclass(hints[part]):
                raise ConfigError(f"config key {key!r} is a section; set one of its keys, as in {key}.<name>")
            # Strings are taken as typed; everything else is parsed as a YAML scalar.
            wanted = hints[part]
            is_str = wanted is str or str in typing.get_args(wanted)
            nullable = type(None) in typing.get_args(wanted)
            if is_str and not (nullable and raw.lower() in ("null", "none", "~")):  # train.clipping=none
                node[part] = raw
            else:
                try:
                    node[part] = yaml.safe_load(raw) if raw.lower() != "none" else None
                except yaml.YAMLError:
                    raise ConfigError(f"--set {key}={raw}: cannot parse the value") from None
        else:
            node, node_cls = node[part], hints[part]
            if not dataclasses.is_dataclass(node_cls):
                raise _unknown(cls, key)


def load_config(cls, files: Iterable[str | os.PathLike] = (), overrides: Iterable[str] = (), base=None):
    """Builds `cls` from its defaults (or `base`), then YAML `files` (rightmost wins), then
    `overrides` of the form `key=value` with dotted keys (`model.units=128`).

    Example:
    >>> load_config(TrainConfig, overrides=["epochs=3"]).epochs
    3
    """
    values = to_dict(base if base is not None else cls())
    for path in files:
        try:
            with open(path, encoding="utf-8") as f:
                loaded = yaml.safe_load(f)
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except yaml.YAMLError as e:
            raise ConfigError(f"config file {path} is not valid YAML: {str(e).splitlines()[0]}") from None
        if loaded is None:
            continue
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {path} must hold a mapping of keys to values")
        app = dataclasses.asdict(cls()).get("app")
        if app is not None and loaded.get("app", app) != app:
            raise ConfigError(f"config file {path} is a {loaded['app']} config, not a {app} one: "
                              f"rnnapps train {loaded['app']} --config {path}")
        _merge(values, loaded, cls, cls, "", str(path))
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set expects key=value, received {item!r}")
        _set(values, cls, key.strip(), raw.strip())
    return _build(cls, values, cls)


def replace(config, **dotted):
    """`dataclasses.replace` with dotted keys: `replace(config, **{"data.max_length": 40})`."""
    groups: dict[str, dict] = {}
    direct = {}
    for key, value in dotted.items():
        head, _, rest = key.partition(".")
        if rest:
            groups.setdefault(head, {})[rest] = value
        else:
            direct[key] = value
    for head, sub in groups.items():
        direct[head] = replace(getattr(config, head), **sub)
    return dataclasses.replace(config, **direct)
