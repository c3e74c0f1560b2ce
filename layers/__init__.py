"""Reusable Keras layers for recurrent networks. Nothing here imports `pipelines`, `export` or `apps`."""

PACKAGE = "rnnapps"  # the one `register_keras_serializable` package name
