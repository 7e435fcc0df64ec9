"""The one progress/cancel contract for long work (convert, simulate, refocus, focal stack, record, export, train).

A long function takes ``job: Job | None`` and calls :meth:`Job.report`
with (done, total or None, message); ``report`` raises :class:`Cancelled`
once someone asked the job to stop. The CLI renders a job with tqdm, the GUI
with a progress bar and a Cancel button; functions that are not jobs take no
progress arguments at all.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager

ProgressFn = Callable[[int, int | None, str], object]


class Cancelled(Exception):
    """Raised inside a job when it was asked to stop."""


class Job:
    """Progress out, cancellation in; thread-safe (the GUI cancels from its own thread)."""

    def __init__(self, on_progress: ProgressFn | None = None) -> None:
        self._on_progress = on_progress
        self._cancel = threading.Event()
        self.done = 0
        self.total: int | None = None
        self.message = ""

    def report(self, done: int, total: int | None = None, message: str = "") -> None:
        """Where the work stands; raises :class:`Cancelled` when the job was cancelled."""
        self.check()
        self.done, self.total, self.message = int(done), total, message
        if self._on_progress is not None:
            self._on_progress(self.done, total, message)

    def advance(self, n: int = 1, total: int | None = None, message: str = "") -> None:
        self.report(self.done + n, total if total is not None else self.total, message)

    def check(self) -> None:
        if self._cancel.is_set():
            raise Cancelled

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()


def ensure(job: Job | None) -> Job:
    """The job a function was given, or a silent one."""
    return job if job is not None else Job()


#: Makes the job for one phase of a long run: (description, unit, total) -> a context manager yielding a Job
#: (the CLI's progress bars, the GUI's progress rows; :func:`no_jobs` when nobody watches).
JobFactory = Callable[[str, str, int | None], AbstractContextManager[Job]]


def no_jobs(desc: str, unit: str, total: int | None) -> AbstractContextManager[Job]:
    return contextlib.nullcontext(Job())
