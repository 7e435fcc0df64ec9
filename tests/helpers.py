"""Assertions shared by the tests (imported as a plain module: tests/ is on sys.path)."""

from __future__ import annotations

import numpy as np

from spikelens.datasets import EVENT_DTYPE


def assert_events_equal(a: np.ndarray, b, fields=("t", "x", "y", "p")) -> None:
    assert a.dtype == EVENT_DTYPE
    n = len(b["t"])
    assert len(a) == n, f"{len(a)} events vs {n}"
    for f in fields:
        np.testing.assert_array_equal(np.asarray(a[f], np.int64), np.asarray(b[f], np.int64), err_msg=f"field {f}")


def assert_checks_match(checks: np.ndarray, reference_events: np.ndarray) -> None:
    """A kernel's fused bounds/order checks agree with the plain NumPy scan of the reference output."""
    from spikelens.datasets.events import CHECK_BAD, CHECK_HEIGHT, CHECK_UNSORTED, CHECK_WIDTH, scan_events_reference

    want = scan_events_reference(reference_events, int(checks[CHECK_WIDTH]), int(checks[CHECK_HEIGHT]))
    assert (int(checks[CHECK_BAD]), int(checks[CHECK_UNSORTED])) == want


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DvSender:
    """A real dv-processing NetworkWriter in a child process serving ``path`` on 127.0.0.1.

    ``sent()`` waits for the child's count of events that left its queue.
    """

    def __init__(self, path, speed: float = 1.0, cut_after: int | None = None) -> None:
        import subprocess
        import sys

        self.port = free_port()
        cmd = [sys.executable, "-m", "spikelens.datasets.streams.dv_send", str(path), "--port", str(self.port)]
        cmd += ["--speed", str(speed)] + ([] if cut_after is None else ["--cut-after", str(cut_after)])
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        assert line.strip() == "LISTENING", line + self.proc.stderr.read()
        self.source = f"dv-net:127.0.0.1:{self.port}"

    def sent(self, timeout_s: float = 60.0) -> int:
        import select

        ready, _, _ = select.select([self.proc.stdout], [], [], timeout_s)
        assert ready, "the sender reported nothing"
        line = self.proc.stdout.readline()
        assert line.startswith("SENT "), line + self.proc.stderr.read()
        return int(line.split()[1])

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self.proc.stdout.close()
        self.proc.stderr.close()


#: how long GUI tests wait for a signal or condition, ms
WAIT = 20_000


def make_window(qtbot):
    from spikelens.app.main_window import MainWindow

    w = MainWindow()
    qtbot.addWidget(w)
    w.show()
    return w


def open_file(qtbot, w, path):
    with qtbot.waitSignal(w.recordingOpened, timeout=WAIT):
        w.open_path(path)
