"""TensorFlow Datasets sources (`tfds:NAME[/CONFIG]`).

The first use downloads the dataset (network needed); tests use `tfds.testing.mock_data`.
"""

from __future__ import annotations

from pipelines.errors import DataError

# The splits nearly every supervised tfds dataset has; assumed when a builder cannot list its
# splits before the data is prepared (and under `tfds.testing.mock_data`, which lists none).
DEFAULT_SPLITS = ("train", "test")


def _builder(name: str, data_dir: str | None):
    import tensorflow_datasets as tfds

    try:
        return tfds.builder(name, data_dir=data_dir)
    except Exception as e:  # tfds raises several types for unknown names
        raise DataError(f"tfds dataset {name!r} cannot be loaded: {str(e).strip().splitlines()[0]}") from None


def tfds_splits(name: str, data_dir: str | None = None) -> list[str]:
    """The split names of a dataset (see DEFAULT_SPLITS)."""
    return sorted(_builder(name, data_dir).info.splits) or list(DEFAULT_SPLITS)


def load_tfds_split(name: str, split: str, data_dir: str | None = None):
    """Returns (`tf.data.Dataset` of feature dicts, `tfds.core.DatasetInfo`) for one split."""
    import tensorflow_datasets as tfds

    builder = _builder(name, data_dir)
    try:
        ds = tfds.load(name, split=split, data_dir=data_dir, shuffle_files=False)
    except Exception as e:
        raise DataError(f"tfds:{name} split {split!r} cannot be loaded: {str(e).strip().splitlines()[0]}") from None
    return ds, builder.info


def split_names(name: str, data_dir: str | None = None) -> dict[str, str]:
    """Our split names ("train", and "dev" / "test" where the dataset has them) -> tfds's."""
    available = tfds_splits(name, data_dir)
    found = {"train": "train"}
    for ours, theirs in (("dev", ("validation", "dev", "valid")), ("test", ("test",))):
        found.update({ours: n for n in reversed(theirs) if n in available})
    return found
