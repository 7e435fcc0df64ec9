"""Event arrays in .npy / .npz files: plain event arrays, tonic's DVSGesture
copies and E-SAI's pickled sample dicts.

Which one a .npy holds is read from its header (dtype and shape) before any
data is loaded, so only a file the user opened that really holds Python
objects is ever unpickled.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from spikelens.datasets.errors import FormatError
from spikelens.datasets.events import EVENT_DTYPE, as_events, make_events
from spikelens.datasets.recording import ArrayRecording, RecordingMeta

NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGIC = b"PK\x03\x04"
DVS_GESTURE_SIZE = (128, 128)


def read_npy_header(f) -> tuple[np.dtype, tuple[int, ...]]:
    """(dtype, shape) of the .npy open in ``f``, leaving ``f`` at the start of the data."""
    version = np.lib.format.read_magic(f)
    reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, _, dtype = reader(f, max_header_size=1 << 20)
    return dtype, shape


def npy_header(path: Path) -> tuple[np.dtype, tuple[int, ...]]:
    try:
        with open(path, "rb") as f:
            return read_npy_header(f)
    except Exception as exc:
        raise FormatError(path, f"corrupt .npy header: {exc}") from exc


def kind_of_npy(path: Path) -> str:
    """'esai' (pickled dict), 'events' (structured t/x/y/p) or 'tonic' (N x 4 floats)."""
    dtype, shape = npy_header(path)
    if dtype.hasobject:
        return "esai"
    if dtype.names and {"t", "x", "y"} <= set(dtype.names):
        return "events"
    if len(shape) == 2 and shape[1] == 4 and dtype.kind in "fiu":
        return "tonic"
    raise FormatError(path, f".npy holds {dtype} {shape}, not an event array")


def _load_npy(path: Path, allow_pickle: bool = False) -> Any:
    try:
        return np.load(path, allow_pickle=allow_pickle)
    except Exception as exc:
        raise FormatError(path, f"cannot read .npy: {exc}") from exc


def _geometry(ev: np.ndarray) -> tuple[int, int]:
    if ev.size == 0:
        return 1, 1
    return int(ev["x"].max()) + 1, int(ev["y"].max()) + 1


def open_tonic_gesture(path: Path) -> ArrayRecording:
    """tonic's preprocessed DVSGesture sample: columns x, y, p, t with t in milliseconds."""
    a = _load_npy(path)
    ev = make_events(np.rint(a[:, 3] * 1000.0).astype(np.int64), a[:, 0], a[:, 1], a[:, 2] > 0)
    w, h = DVS_GESTURE_SIZE
    meta = RecordingMeta(path, "tonic-dvsgesture-npy", w, h, "DVS128", {"label": _label_from_name(path)})
    return ArrayRecording(ev, meta)


def _label_from_name(path: Path) -> int | None:
    return int(path.stem) if path.stem.isdigit() else None


def open_events_npy(path: Path, width: int | None = None, height: int | None = None) -> ArrayRecording:
    try:
        ev = as_events(_load_npy(path))
    except ValueError as exc:
        raise FormatError(path, str(exc)) from exc
    w, h = _geometry(ev)
    return ArrayRecording(ev, RecordingMeta(path, "npy-events", width or w, height or h))


# -- .npz ------------------------------------------------------------------------------
def open_npz(path: Path) -> ArrayRecording:
    """Columns t, x, y, p (+ width, height, metadata JSON) as written by :func:`write_npz`."""
    try:
        with np.load(path, allow_pickle=False) as z:
            keys = set(z.files)
            if not {"t", "x", "y", "p"} <= keys:
                raise FormatError(path, f".npz needs arrays t, x, y, p; it has {sorted(keys)}")
            ev = make_events(z["t"], z["x"], z["y"], z["p"])
            w, h = (int(z["width"]), int(z["height"])) if {"width", "height"} <= keys else _geometry(ev)
            info = json.loads(str(z["meta"])) if "meta" in keys else {}
            extra = {k[6:]: z[k] for k in keys if k.startswith("extra_")}
    except FormatError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as exc:
        raise FormatError(path, f"cannot read .npz: {exc}") from exc
    extra.update(info.get("extra", {}))
    meta = RecordingMeta(path, "npz-events", w, h, info.get("camera"), extra)
    if info.get("source_format"):
        meta.extra.setdefault("source_format", info["source_format"])
    return ArrayRecording(ev, meta)


def write_npz(path: str | Path, events: np.ndarray, meta: RecordingMeta) -> None:
    """Columns plus metadata; array extras become ``extra_<name>`` arrays. Not atomic: callers rename."""
    if events.dtype != EVENT_DTYPE:
        raise ValueError(f"events must have dtype {EVENT_DTYPE}")
    scalars, arrays = split_extra(meta.extra)
    info = {"camera": meta.camera, "source_format": meta.format, "extra": scalars}
    with open(path, "wb") as f:
        np.savez_compressed(
            f,
            t=events["t"],
            x=events["x"],
            y=events["y"],
            p=events["p"],
            width=np.int64(meta.width),
            height=np.int64(meta.height),
            meta=np.array(json.dumps(info)),
            **{f"extra_{k}": v for k, v in arrays.items()},
        )


def split_extra(extra: dict[str, Any]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Split metadata into JSON-able scalars and NumPy arrays."""
    scalars, arrays = {}, {}
    for k, v in extra.items():
        if isinstance(v, np.ndarray):
            arrays[k] = v
        elif isinstance(v, np.generic):
            scalars[k] = v.item()
        else:
            try:
                json.dumps(v)
            except TypeError:
                continue  # not representable; dropped rather than pickled
            scalars[k] = v
    return scalars, arrays
