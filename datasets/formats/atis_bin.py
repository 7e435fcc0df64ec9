"""N-MNIST / N-Caltech101 ATIS .bin events and N-Caltech101 annotation files.

Events are 5 bytes: x (byte 0), y (byte 1), polarity (byte 2 bit 7, 1 = ON)
and a 23-bit microsecond timestamp (byte 2 bits 0-6, bytes 3 and 4, big
endian). A record with y == 240 is a timestamp-overflow marker, not an event.

Overflow increment: the timestamp counter is 23 bits wide, so after an
overflow later timestamps continue at +2**23 us. tonic and Orchard's Python
reader add 2**13 instead, which cannot be right for a 23-bit counter (it
would make time run backwards by ~8.4 s at each marker); the original MATLAB
reader (Read_Ndataset.m) ignores markers altogether. Released samples last
~300 ms, so no marker occurs in practice and all three agree on real data.

The files carry no header, so the sensor size is inferred: 34x34 when every
event fits (N-MNIST), else the bounding box of the events (N-Caltech101
images vary in size); pass width/height to override.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numba as nb
import numpy as np

from spikelens.datasets.errors import FormatError
from spikelens.datasets.events import emit, empty_events
from spikelens.datasets.formats._binary import check_path, fixed_record_chunks
from spikelens.datasets.recording import Recording, RecordingMeta, Scanned

RECORD_BYTES = 5
OVERFLOW_Y = 240
OVERFLOW_US = 1 << 23


@nb.njit(cache=True, nogil=True)
def decode(raw, out, state, checks):
    """state[0] counts the overflow markers seen so far."""
    k = 0
    for i in range(raw.shape[0] // 5):
        j = 5 * i
        if raw[j + 1] == 240:
            state[0] += 1
            continue
        b2 = np.int64(raw[j + 2])
        t = (((b2 & 127) << 16) | (np.int64(raw[j + 3]) << 8) | np.int64(raw[j + 4])) + state[0] * (1 << 23)
        emit(out, k, t, np.int64(raw[j]), np.int64(raw[j + 1]), b2 >> 7, checks)
        k += 1
    return k


def decode_reference(raw: np.ndarray) -> np.ndarray:
    """Plain NumPy decoder, the parity reference for :func:`decode`."""
    r = raw.reshape(-1, 5).astype(np.int64)
    marker = r[:, 1] == OVERFLOW_Y
    t = ((r[:, 2] & 127) << 16) | (r[:, 3] << 8) | r[:, 4]
    t = t + np.cumsum(marker) * OVERFLOW_US
    keep = ~marker
    out = empty_events(int(keep.sum()))
    out["x"], out["y"], out["p"], out["t"] = r[keep, 0], r[keep, 1], r[keep, 2] >> 7, t[keep]
    return out


def encode(events: np.ndarray) -> bytes:
    """ATIS records for events whose t < 2**23 (tests and exporters)."""
    if events.size and (events["t"].max() >= OVERFLOW_US or events["t"].min() < 0):
        raise ValueError("ATIS .bin timestamps must lie in [0, 2**23) without overflow markers")
    t = events["t"].astype(np.int64)
    r = np.empty((events.size, 5), np.uint8)
    r[:, 0], r[:, 1] = events["x"], events["y"]
    r[:, 2] = (events["p"].astype(np.int64) << 7) | (t >> 16)
    r[:, 3], r[:, 4] = (t >> 8) & 0xFF, t & 0xFF
    return r.tobytes()


class AtisBinRecording(Recording):
    format_name = "atis-bin"

    def __init__(self, path: str | Path, width: int | None = None, height: int | None = None) -> None:
        path = check_path(path)
        if path.stat().st_size % RECORD_BYTES:
            raise FormatError(path, "size is not a multiple of 5 bytes: not an ATIS .bin file, or truncated")
        super().__init__(path, RecordingMeta(path, self.format_name, 1, 1, "ATIS"))
        if width is None or height is None:
            w, h = self._infer_geometry()
            w, h = (34, 34) if w <= 34 and h <= 34 else (w, h)
            width, height = width or w, height or h
        self.meta.width, self.meta.height = int(width), int(height)

    def _raw_chunks(self, max_events: int | None) -> Iterator[Scanned]:
        return fixed_record_chunks(self.path, 0, RECORD_BYTES, decode, max_events, self.meta)


def read_ncaltech_annotation(path: str | Path) -> dict[str, np.ndarray]:
    """N-Caltech101 annotation: the bounding box and the object contour.

    The file holds int16 values: rows, cols, then rows*cols values stored
    column by column (MATLAB order), first for the box, then for the contour.
    One dimension is 2 (the coordinate), the other the number of points; we
    accept either layout and return ``box`` and ``contour`` as N x 2 arrays of
    (x, y) points, taking the first coordinate as x (unverified on a real
    image: public readers disagree, see the closing note of issue 2).
    """
    path = check_path(path)
    data = np.fromfile(path, dtype="<i2").astype(np.int64)
    blocks, pos = [], 0
    for name in ("box", "contour"):
        if pos + 2 > data.size:
            raise FormatError(path, f"annotation ends before the {name} header")
        rows, cols = int(data[pos]), int(data[pos + 1])
        n = rows * cols
        if 2 not in (rows, cols) or min(rows, cols) <= 0 or pos + 2 + n > data.size:
            raise FormatError(path, f"bad {name} block: {rows}x{cols} in a {data.size}-value file")
        column_major = data[pos + 2 : pos + 2 + n].reshape(cols, rows)  # [col, row]
        blocks.append(column_major if rows == 2 else column_major.T)
        pos += 2 + n
    return {"box": blocks[0], "contour": blocks[1]}
