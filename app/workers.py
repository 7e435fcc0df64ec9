"""Background work for the GUI: a QRunnable whose results come back to the GUI thread as signals.

A plain function runs as is (``Worker(fn, *args)``); a job (``Worker.job``)
also gets ``job=``, a :class:`~spikelens.pipelines.jobs.Job` whose reports
arrive as the ``progress`` signal and whose cancellation the Cancel button
sets. Signals are queued across threads, so slots always run on the GUI
thread (the napari pattern: compute off-thread, apply on the main thread).
A cancelled worker never delivers a result, even if its function finished.
"""

from __future__ import annotations

import contextlib
import os
import sys
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
        #: nice steps the running thread takes first (set by a background pool)
        self.lower_priority = 0

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
        if self.lower_priority:
            lower_this_thread(self.lower_priority)
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


#: how much lower a background pool's threads run (Linux nice steps)
BACKGROUND_NICE = 10


def lower_this_thread(steps: int) -> None:
    """Lower the calling thread's scheduling priority (Linux, where priority is per thread; elsewhere a no-op).
    Lowering is always allowed; a pool thread keeps it, which is what a background pool wants."""
    if sys.platform != "linux":
        return
    with contextlib.suppress(OSError):
        nice = min(19, os.getpriority(os.PRIO_PROCESS, 0) + steps)  # the process's nice, plus steps
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)


class WorkerPool:
    """Starts workers and keeps them alive until they finish; :meth:`shutdown` cancels and joins them.

    ``background``: a pool of its own whose threads run at lower priority, for heavy work the user can wait
    for (reconstruction), so the GUI thread and live work get the CPU first on a small machine.
    """

    def __init__(self, background: bool = False) -> None:
        self.pool = QThreadPool() if background else QThreadPool.globalInstance()
        self.background = background
        self._live: set[Worker] = set()

    def start(self, worker: Worker) -> Worker:
        worker.lower_priority = BACKGROUND_NICE if self.background else 0
        self._live.add(worker)
        worker.signals.finished.connect(lambda w=worker: self._live.discard(w))
        self.pool.start(worker)
        return worker

    def shutdown(self, timeout_ms: int = 10_000) -> None:
        for w in list(self._live):
            w.cancel()
        self.pool.waitForDone(timeout_ms)
