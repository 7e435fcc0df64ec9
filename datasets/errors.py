"""The one exception type readers raise, so callers can catch bad input alone."""

from __future__ import annotations

from pathlib import Path


class FormatError(ValueError):
    """A file is not what it claims to be, or is damaged.

    The message always names the file, so a batch job or the GUI can report it
    without extra context.
    """

    def __init__(self, path: str | Path | None, problem: str) -> None:
        self.path = None if path is None else Path(path)
        self.problem = problem
        where = f"{self.path}: " if self.path is not None else ""
        super().__init__(f"{where}{problem}")


class DatasetMissingError(FileNotFoundError):
    """A dataset folder lacks its original files; the message says where to get them."""
