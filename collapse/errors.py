"""The errors a user sees as one line: a bad config value or a bad file (the CLI exits with status 2), and a study
that cannot go on past a generation (status 3).

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


class StudyStopped(RuntimeError):
    """A study cannot continue past a generation (training diverged, or its samples cannot be curated to the
    budget); the finished generations are intact. The message names the generation and the keys that would
    change the outcome, which change the study itself: a rerun with them belongs in a new run directory."""
