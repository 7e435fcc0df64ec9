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
