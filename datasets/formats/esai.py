"""E-SAI dataset samples: a pickled dict in a .npy file.

Keys (from the E-SAI release): ``events`` (x, y, t, p with t in seconds),
``occ_free_aps`` (the unoccluded ground-truth frame), ``occ_free_aps_ts``
(its time, the refocus reference t_ref, seconds), ``fx`` (px), ``depth`` (m),
``v`` (camera speed, m/s), ``size`` (H, W), and optionally ``occ_aps`` /
``occ_aps_ts`` (the occluded APS frames). Times become integer microseconds;
the SAI parameters travel in ``meta.extra``.

Security: the samples are pickles. They are read with a restricted
unpickler (:mod:`.safe_pickle`) that admits NumPy arrays and plain values
only, so opening a hostile file runs nothing and raises FormatError.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from spikelens.datasets.errors import FormatError
from spikelens.datasets.events import make_events
from spikelens.datasets.formats.safe_pickle import load_pickled_npy
from spikelens.datasets.recording import ArrayRecording, RecordingMeta

REQUIRED = ("events", "occ_free_aps", "occ_free_aps_ts", "fx", "depth", "v", "size")


def seconds_to_us(t: Any) -> np.ndarray:
    return np.rint(np.asarray(t, np.float64) * 1e6).astype(np.int64)


def _column(events: Any, name: str) -> np.ndarray:
    try:
        return np.asarray(events[name])
    except (KeyError, ValueError, IndexError) as exc:
        raise KeyError(name) from exc


def open_esai(path: Path) -> ArrayRecording:
    d = load_pickled_npy(path)
    if not isinstance(d, dict):
        raise FormatError(path, f"E-SAI .npy must hold a dict, found {type(d).__name__}")
    missing = [k for k in REQUIRED if k not in d]
    if missing:
        raise FormatError(path, f"E-SAI sample lacks keys {missing}")
    try:
        e = d["events"]
        ev = make_events(seconds_to_us(_column(e, "t")), _column(e, "x"), _column(e, "y"), _column(e, "p") > 0)
        h, w = (int(v) for v in np.asarray(d["size"]).ravel()[:2])
        extra: dict[str, Any] = {
            "fx": float(d["fx"]),
            "depth": float(d["depth"]),
            "v": float(d["v"]),
            "t_ref_us": int(seconds_to_us(d["occ_free_aps_ts"])),
            "occ_free_aps": np.asarray(d["occ_free_aps"]),
        }
        if "occ_aps" in d:
            extra["occ_aps"] = np.asarray(d["occ_aps"])
        if "occ_aps_ts" in d:
            extra["occ_aps_ts_us"] = seconds_to_us(d["occ_aps_ts"])
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError) as exc:
        raise FormatError(path, f"malformed E-SAI sample: {exc!r}") from exc
    return ArrayRecording(ev, RecordingMeta(path, "esai-npy", w, h, "DAVIS346", extra))


def write_esai(path: str | Path, events: np.ndarray, meta: RecordingMeta) -> None:
    """Write the E-SAI layout (t back in seconds) for tools that expect it."""
    x = meta.extra
    ev = np.empty(events.size, np.dtype([("x", "<i2"), ("y", "<i2"), ("t", "<f8"), ("p", "i1")]))
    ev["x"], ev["y"], ev["p"], ev["t"] = events["x"], events["y"], events["p"], events["t"] / 1e6
    d = {
        "events": ev,
        "occ_free_aps": x["occ_free_aps"],
        "occ_free_aps_ts": x["t_ref_us"] / 1e6,
        "fx": x["fx"],
        "depth": x["depth"],
        "v": x["v"],
        "size": (meta.height, meta.width),
    }
    if "occ_aps" in x:
        d["occ_aps"] = x["occ_aps"]
    if "occ_aps_ts_us" in x:
        d["occ_aps_ts"] = np.asarray(x["occ_aps_ts_us"]) / 1e6
    with open(path, "wb") as f:
        np.save(f, np.array(d, dtype=object), allow_pickle=True)
