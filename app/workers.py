"""Background work for the GUI: a QRunnable whose results come back to the GUI thread as signals.

A plain function runs as is (``Worker(fn, *args)``); a job (``Worker.job``)
also gets ``job=``, a :class:`~spikelens.pipelines.jobs.Job` whose reports
arrive as the ``progress`` signal and whose cancellation the Cancel button
sets. Signals are queued across threads, so slots always run on the GUI
thread (the napari pattern: compute off-thread, apply on the main thread).
A cancelled worker never delivers a result, even if its function finished.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable
from typing import Any

from PyQt6.QtCore import QObject, QRunnable, QThreadPool, pyqtSignal

from spikelens.pipelines.jobs import Cancelled, Job


class WorkerSignals(QObject):
    #: done, total (-1: unknown), message
    progress = pyqtSignal(int, int, str)
    partial = pyqtSignal(object)
    result = pyqtSignal(object)
    error = pyqtSignal(str)
    cancelled = pyqtSignal()
    finished = pyqtSignal()


class Worker(QRunnable):
    def __init__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        super().__init__()
        self.setAutoDelete(False)  # the owner keeps a reference until finished
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self.signals = WorkerSignals()
        self.job: Job | None = None
        self._cancel = threading.Event()
        self.done = threading.Event()

    @classmethod
    def for_job(cls, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Worker:
        """A worker for a job function: it is called with ``job=`` and reports progress through it."""
        w = cls(fn, *args, **kwargs)
        w.job = Job(lambda d, t, m: w.signals.progress.emit(int(d), -1 if t is None else int(t), m))
        w.kwargs["job"] = w.job
        return w

    def cancel(self) -> None:
        self._cancel.set()
        if self.job is not None:
            self.job.cancel()

    def is_cancelled(self) -> bool:
        return self._cancel.is_set()

    def run(self) -> None:
        s = self.signals
        try:
            out = self.fn(*self.args, **self.kwargs)
        except Cancelled:
            s.cancelled.emit()
        except Exception as exc:  # shown to the user as a dialog; the app keeps running
            message = str(exc) or type(exc).__name__
            if not isinstance(exc, (ValueError, OSError)):
                message += "\n\n" + "".join(traceback.format_exception_only(exc)).strip()
            s.error.emit(message)
        else:
            if self.is_cancelled():
                s.cancelled.emit()
            else:
                s.result.emit(out)
        finally:
            self.done.set()
            s.finished.emit()


class WorkerPool:
    """Starts workers and keeps them alive until they finish; :meth:`shutdown` cancels and joins them."""

    def __init__(self) -> None:
        self.pool = QThreadPool.globalInstance()
        self._live: set[Worker] = set()

    def start(self, worker: Worker) -> Worker:
        self._live.add(worker)
        worker.signals.finished.connect(lambda w=worker: self._live.discard(w))
        self.pool.start(worker)
        return worker

    def shutdown(self, timeout_ms: int = 10_000) -> None:
        for w in list(self._live):
            w.cancel()
        self.pool.waitForDone(timeout_ms)
