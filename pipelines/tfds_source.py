"""TensorFlow Datasets sources (`tfds:NAME[/CONFIG]`).

The first use downloads the dataset (network needed); tests use `tfds.testing.mock_data`.
"""

from __future__ import annotations

from pipelines.errors import DataError


def load_tfds_split(name: str, split: str, data_dir: str | None = None):
    """Returns (`tf.data.Dataset` of feature dicts, `tfds.core.DatasetInfo`) for one split.

    Raises:
        DataError: the dataset is unknown, or it does not have `split`.
    """
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except Exception as e:  # tfds raises several types for unknown names
        raise DataError(f"tfds dataset {name!r} cannot be loaded: {str(e).splitlines()[0]}") from None
    if split not in builder.info.splits:
        raise DataError(f"tfds dataset {name!r} has no {split!r} split (it has {sorted(builder.info.splits)})")
    ds = tfds.load(name, split=split, data_dir=data_dir, shuffle_files=False)
    return ds, builder.info


def tfds_splits(name: str, data_dir: str | None = None) -> list[str]:
    import tensorflow_datasets as tfds

    try:
        return sorted(tfds.builder(name, data_dir=data_dir).info.splits)
    except Exception as e:
        raise DataError(f"tfds dataset {name!r} cannot be loaded: {str(e).splitlines()[0]}") from None
