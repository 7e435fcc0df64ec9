"""jAER AEDAT 2.0: text header, then big-endian (uint32 address, uint32 timestamp).

Coordinates follow jAER's own extractors (DVS128.Extractor, DavisBaseCamera)
and are then turned into image coordinates with the origin at the top left:
jAER's y axis points up, so y is flipped once more.

* DVS128: a = bits 1-7, b = bits 8-14, x = 127 - a, y = 127 - b; ON when
  bit 0 is 0 (jAER flips the raw polarity). Addresses with bit 15 (external
  sync) or bit 31 (special) set are not polarity events and are dropped.
* DAVIS346: x = 345 - bits 12-21, y = 259 - bits 22-30, ON = bit 11. Bit 31
  marks APS/IMU samples and bits 10-11 == 01 an external input event; both are
  dropped.

SpikingJelly's CIFAR10-DVS loader returns the transpose of the DVS128 mapping
(x = 127 - b, y = 127 - a); we follow jAER, the program that wrote the files.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numba as nb
import numpy as np

from spikelens.datasets.errors import FormatError
from spikelens.datasets.events import EVENT_DTYPE, emit, empty_events
from spikelens.datasets.formats._binary import check_path, fixed_record_chunks, read_text_header
from spikelens.datasets.recording import Recording, RecordingMeta, Scanned

MAGIC = b"#!AER-DAT2"
RECORD_BYTES = 8
CHIPS = {"dvs128": (128, 128), "davis346": (346, 260)}


def sniff(head: bytes) -> bool:
    return head.startswith(MAGIC)


@nb.njit(cache=True, nogil=True, inline="always")
def _be32(raw, i):
    return (
        (np.uint32(raw[i]) << 24) | (np.uint32(raw[i + 1]) << 16) | (np.uint32(raw[i + 2]) << 8) | np.uint32(raw[i + 3])
    )


@nb.njit(cache=True, nogil=True, inline="always")
def _unwrap(t, state):
    # jAER timestamps are 32-bit microseconds and wrap every ~71.6 minutes.
    if t + (1 << 31) < state[0]:
        state[1] += 1 << 32
    state[0] = t
    return t + state[1]


@nb.njit(cache=True, nogil=True)
def decode_dvs128(raw, out, state, checks):
    k = 0
    for i in range(raw.shape[0] // 8):
        a = _be32(raw, 8 * i)
        t = _unwrap(np.int64(_be32(raw, 8 * i + 4)), state)
        if a & np.uint32(0x80008000):
            continue
        emit(out, k, t, 127 - np.int64((a >> 1) & 0x7F), 127 - np.int64((a >> 8) & 0x7F), 1 - np.int64(a & 1), checks)
        k += 1
    return k


@nb.njit(cache=True, nogil=True)
def decode_davis346(raw, out, state, checks):
    k = 0
    for i in range(raw.shape[0] // 8):
        a = _be32(raw, 8 * i)
        t = _unwrap(np.int64(_be32(raw, 8 * i + 4)), state)
        if a & np.uint32(0x80000000) or (a & 0xC00) == 0x400:
            continue
        x = 345 - np.int64((a >> 12) & 0x3FF)
        emit(out, k, t, x, 259 - np.int64((a >> 22) & 0x1FF), np.int64((a >> 11) & 1), checks)
        k += 1
    return k


def decode_reference(raw: np.ndarray, chip: str) -> np.ndarray:
    """Plain NumPy decoder, the parity reference for the Numba kernels."""
    rec = raw.view(np.dtype([("a", ">u4"), ("t", ">u4")]))
    a, t = rec["a"].astype(np.int64), rec["t"].astype(np.int64)
    t = t + (np.cumsum(np.diff(t, prepend=t[:1]) < -(1 << 31)) << 32)
    if chip == "dvs128":
        keep = (a & 0x80008000) == 0
        x, y, p = 127 - ((a >> 1) & 0x7F), 127 - ((a >> 8) & 0x7F), 1 - (a & 1)
    else:
        keep = ((a & 0x80000000) == 0) & ((a & 0xC00) != 0x400)
        x, y, p = 345 - ((a >> 12) & 0x3FF), 259 - ((a >> 22) & 0x1FF), (a >> 11) & 1
    out = empty_events(int(keep.sum()))
    out["t"], out["x"], out["y"], out["p"] = t[keep], x[keep], y[keep], p[keep]
    return out


_KERNELS = {"dvs128": decode_dvs128, "davis346": decode_davis346}


def _chip_from_header(lines: list[str]) -> str:
    for line in lines:
        m = re.search(r"AEChip:\s*(\S+)", line)
        if m:
            return "davis346" if "davis346" in m.group(1).lower() else "dvs128"
    return "dvs128"


class Aedat2Recording(Recording):
    """A jAER AEDAT 2.0 file. ``chip`` overrides the header's AEChip line."""

    format_name = "aedat2"

    def __init__(self, path: str | Path, chip: str | None = None) -> None:
        path = check_path(path)
        with open(path, "rb") as f:
            if not sniff(f.read(len(MAGIC))):
                raise FormatError(path, "not an AEDAT 2.0 file (missing '#!AER-DAT2' magic)")
            lines, self._offset = read_text_header(f, path, b"#", stop=lambda ln: b"end of ascii header" in ln.lower())
        chip = (chip or _chip_from_header(lines)).lower()
        if chip not in CHIPS:
            raise FormatError(path, f"unsupported AEDAT 2.0 chip {chip!r}; known: {sorted(CHIPS)}")
        self._chip = chip
        extra: dict = {"header": "\n".join(lines)}
        for line in lines:
            m = re.search(r"Creation time:.*?(\d{10,})", line)
            if m:
                extra["creation_time_ms"] = int(m.group(1))
        w, h = CHIPS[chip]
        super().__init__(path, RecordingMeta(path, self.format_name, w, h, chip.upper(), extra))

    def _raw_chunks(self, max_events: int | None) -> Iterator[Scanned]:
        return fixed_record_chunks(self.path, self._offset, RECORD_BYTES, _KERNELS[self._chip], max_events, self.meta)


def encode_dvs128(events: np.ndarray) -> bytes:
    """Raw DVS128 records for ``events`` (the inverse of the decoder), for writers and tests."""
    ev = np.asarray(events, EVENT_DTYPE)
    a = (
        ((127 - ev["x"].astype(np.uint32)) << 1)
        | ((127 - ev["y"].astype(np.uint32)) << 8)
        | (1 - ev["p"].astype(np.uint32))
    )
    rec = np.empty(ev.size, np.dtype([("a", ">u4"), ("t", ">u4")]))
    rec["a"], rec["t"] = a, ev["t"]
    return rec.tobytes()
