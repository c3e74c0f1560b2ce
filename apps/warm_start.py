"""A run that starts from the weights of a finished run of the same app (`train.init_from`).

Pretraining on a larger related set and fine-tuning on the target set: the source run has the
same model settings, so its model has the same layers in the same order and each layer's weights
are copied as they are. The vocabularies differ (each run builds its own from its train split):
the rows of an input embedding layer (`App.embedding_layers`) are copied word by word, a word
the source run lacks keeps the row this run gave it (`model.embeddings`' vector or a random one);
a layer with other weights indexed by token id (`copy_rows_from`: the bag of n-grams) is given the
map from this vocabulary to the source's.
Layers without trainable weights are left alone: they hold what this run derives from its own
data (the spelling table of its vocabulary). A resumed run restores its checkpoint instead.
"""

from __future__ import annotations

import numpy as np

from apps.config import ConfigError


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
        if layer.name == aligned:
            notes.append(f"{where}: {layer.name}: {_copy_rows(layer, old, rows, where)}")
            copied += 1
            continue
        if rows is not None and hasattr(layer, "copy_rows_from"):  # weights indexed by token id
            notes.append(f"{where}: {layer.name}: {layer.copy_rows_from(old, rows)}")
            copied += 1
            continue
        if not layer.trainable_weights:  # derived from this run's data (a table of its vocabulary)
            continue
        shapes, old_shapes = [tuple(w.shape) for w in layer.weights], [tuple(w.shape) for w in old.weights]
        if shapes != old_shapes:
            rows_only = [s[1:] for s in shapes] == [s[1:] for s in old_shapes]
            why = ("a table over a vocabulary of another size: only the input embedding is matched word by word"
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


def _copy_rows(layer, old, rows: np.ndarray, where: str) -> str:
    """Rows of `old`'s embedding matrix into `layer`'s by the row map; returns the coverage."""
    (matrix,), (old_matrix,) = layer.get_weights(), old.get_weights()
    if matrix.shape[1] != old_matrix.shape[1]:
        raise ConfigError(f"{where}: layer {layer.name}: embeddings of dimension {old_matrix.shape[1]} there and "
                          f"{matrix.shape[1]} here")
    found = rows >= 0
    matrix[found] = old_matrix[rows[found]]
    layer.set_weights([matrix])
    return f"{int(found.sum())} of {len(rows)} vocabulary rows from its vocabulary ({found.mean():.1%})"
