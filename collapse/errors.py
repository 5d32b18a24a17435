"""The two errors a user sees as one line (the CLI exits with status 2): a bad config value, a bad file.

Their own module, so that code reading files raises `DataError` without importing the config schemas."""

from __future__ import annotations


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the key."""

    def __init__(self, key: str, message: str):
        super().__init__(f"{key}: {message}")
        self.key = key


class DataError(ValueError):
    """An input file or run-directory file is missing or unusable; the message names the file."""

    def __init__(self, path: object, message: str):
        super().__init__(f"{path}: {message}")
        self.path = str(path)
