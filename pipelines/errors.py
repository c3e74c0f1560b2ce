"""The one error type for bad input data; its message names the file, line or value."""


class DataError(ValueError):
    """Input data that cannot be used as given (missing file, malformed row, empty split...)."""
