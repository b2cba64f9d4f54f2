"""One error type for bad data, so the CLI and the study runner can report it without a traceback."""


class DataError(ValueError):
    """Input data is missing or malformed; the message names the file and what is wrong."""
