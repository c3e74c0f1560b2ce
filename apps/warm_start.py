"""A run that starts from the weights of a finished run of the same app (`train.init_from`).

Pretraining on a larger related set and fine-tuning on the target set: the source run has the
same model settings, so its model has the same layers in the same order and each layer's weights
are copied as they are. The vocabularies differ (each run builds its own from its train split):
the rows of an input embedding layer (`App.embedding_layers`) are copied word by word, a word
the source run lacks keeps the row this run gave it (`model.embeddings`' vector or a random one).
So are the weights a layer names in `token_indexed_weights` (the bag of n-grams' word scores); its
other weights depend on the ids in other ways (hashed bigrams) and are copied only when the two
vocabularies are the same.
Layers without trainable weights are left alone: they hold what this run derives from its own
data (the spelling table of its vocabulary). A resumed run restores its checkpoint instead.
"""

from __future__ import annotations

import numpy as np

from apps.config import ConfigError
from layers.ensemble import split_name


def copy_weights(model, source, preprocessor, embedding_layers: dict[str, str]) -> list[str]:
    """Copies the weights of `source` (an `App.load`ed run) into `model`, whose preprocessor is
    fitted; returns notes for the log. ConfigError when the models do not correspond."""
    where = f"train.init_from {source.run.path}"
    source_labels = getattr(source.preprocessor, "labels", None)
    labels = getattr(preprocessor, "labels", None)
    if source_labels is not None and list(source_labels) != list(labels):
        raise ConfigError(f"{where}: its labels {list(source_labels)} are not this run's {list(labels)}")
    ours, theirs = model.layers, source.model.layers
    if [type(layer).__name__ for layer in ours] != [type(layer).__name__ for layer in theirs]:
        raise ConfigError(f"{where}: its model has other layers ({len(theirs)}) than this one ({len(ours)}); "
                          "train.init_from needs a run with the same model settings")
    # The input side's embedding layer, if the app names one: its rows follow the vocabulary.
    side = preprocessor.input_vocab()[0] if embedding_layers else None
    aligned = embedding_layers.get(side)
    notes, copied = [], 0
    rows = _row_map(preprocessor, source.preprocessor) if embedding_layers else None
    for layer, old in zip(ours, theirs):
        if not layer.weights:
            continue
        by_token = _token_indexed(layer, aligned) if rows is not None else []
        if by_token:
            notes.append(f"{where}: {layer.name}: {_copy_rows(layer, old, by_token, rows, where)}")
            copied += 1
            continue
        if not layer.trainable_weights:  # derived from this run's data (a table of its vocabulary)
            continue
        shapes, old_shapes = [tuple(w.shape) for w in layer.weights], [tuple(w.shape) for w in old.weights]
        if shapes != old_shapes:
            rows_only = [s[1:] for s in shapes] == [s[1:] for s in old_shapes]
            why = ("a table over a vocabulary of another size: only the input embedding and the weights a layer names "
                   "in token_indexed_weights are matched word by word"
                   if rows_only else "train.init_from needs a run with the same model settings")
            raise ConfigError(f"{where}: layer {layer.name} has weights of shapes {old_shapes} there and {shapes} "
                              f"here; {why}")
        layer.set_weights(old.get_weights())
        copied += 1
    notes.append(f"{where}: weights of {copied} layers copied")
    return notes


def _row_map(preprocessor, source_preprocessor) -> np.ndarray:
    """For each token id of this run's input vocabulary, its id in the source's, -1 if absent."""
    index = {token: i for i, token in enumerate(source_preprocessor.input_vocab()[1].tokens)}
    return np.array([index.get(token, -1) for token in preprocessor.input_vocab()[1].tokens])


def _token_indexed(layer, aligned: str | None) -> list[int]:
    """Positions in `layer.weights` of the weights whose rows are token ids of the input
    vocabulary: all of the input embedding's, or those the layer names in `token_indexed_weights`."""
    if split_name(layer.name)[0] == aligned:  # each member's, in an ensemble
        return list(range(len(layer.weights)))
    names = getattr(layer, "token_indexed_weights", ())
    return [i for i, weight in enumerate(layer.weights) if weight.name in names]


def _copy_rows(layer, old, by_token: list[int], rows: np.ndarray, where: str) -> str:
    """The rows of `old`'s token-indexed weights into `layer`'s by the row map, its other weights
    as they are if the vocabularies are the same; returns what was copied."""
    values, old_values = layer.get_weights(), old.get_weights()
    same = len(rows) == len(old_values[by_token[0]]) and np.array_equal(rows, np.arange(len(rows)))
    found = rows >= 0
    for i in by_token:
        if values[i].shape[1:] != old_values[i].shape[1:]:
            raise ConfigError(f"{where}: layer {layer.name}: rows of shape {old_values[i].shape[1:]} there and "
                              f"{values[i].shape[1:]} here")
        values[i][found] = old_values[i][rows[found]]
    others = [i for i in range(len(values)) if i not in by_token]
    if same:
        for i in others:
            values[i] = old_values[i]
    layer.set_weights(values)
    note = f"{int(found.sum())} of {len(rows)} vocabulary rows from its vocabulary ({found.mean():.1%})"
    if others and not same:
        names = ", ".join(layer.weights[i].name for i in others)
        note += f"; {names} start anew (indexed by another vocabulary's ids)"
    return note
