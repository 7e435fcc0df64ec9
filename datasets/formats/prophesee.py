"""Prophesee recordings: EVT 2.0 .dat files and .raw EVT 2.0 / EVT 3.0 streams.

Sources: Prophesee's published "EVT 2.0 Format" and "EVT 3.0 Format" pages
and the .dat layout used by N-CARS / Gen1 (Metavision's `dat` loaders).

* .dat: ``%`` header lines (``% Width``, ``% Height``, ``% Version``), then one
  byte event type and one byte event size (8), then little-endian uint32
  timestamp + uint32 data: x = bits 0-13, y = bits 14-27, p = bits 28-31.
* .raw EVT 2.0: 32-bit words, type in bits 28-31. CD_OFF (0) / CD_ON (1):
  t_low bits 22-27, x bits 11-21, y bits 0-10. EVT_TIME_HIGH (8): bits 0-27;
  t = (time_high << 6) | t_low. Other types are skipped.
* .raw EVT 3.0: 16-bit words, type in bits 12-15. ADDR_Y (0): y; ADDR_X (2):
  one event at x with polarity bit 11; VECT_BASE_X (3): base x and polarity;
  VECT_12 (4) / VECT_8 (5): a bit mask of events at base x + i, then base x
  advances by 12 / 8; TIME_LOW (6) / TIME_HIGH (8): the 12 low / high bits of
  a 24-bit time, which wraps (TIME_HIGH decreasing) every 16.8 s.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import numba as nb
import numpy as np

from spikelens.datasets.errors import FormatError
from spikelens.datasets.events import CHECK_BAD, CHECK_UNSORTED, emit, empty_events, new_checks
from spikelens.datasets.formats._binary import check_path, fixed_record_chunks, map_file, read_text_header
from spikelens.datasets.recording import Recording, RecordingMeta, Scanned


def sniff(head: bytes) -> bool:
    return head.startswith(b"%")


def _header_info(lines: list[str]) -> dict[str, str]:
    """Key/value pairs of a ``%`` header (``% key value`` or ``% format EVT3;width=..``)."""
    info: dict[str, str] = {}
    for line in lines:
        parts = line.strip().split(None, 1)
        if parts:
            info[parts[0].lower()] = parts[1].strip() if len(parts) > 1 else ""
    fmt = info.get("format", "")
    for item in fmt.split(";")[1:]:
        if "=" in item:
            k, v = item.split("=", 1)
            info[k.strip().lower()] = v.strip()
    if "geometry" in info:
        m = re.match(r"(\d+)x(\d+)", info["geometry"])
        if m:
            info.setdefault("width", m.group(1))
            info.setdefault("height", m.group(2))
    return info


def _set_geometry(rec: Recording, info: dict[str, str]) -> None:
    """Sensor size from the header, else from the events (older firmware writes none)."""
    try:
        w, h = int(info["width"]), int(info["height"])
    except (KeyError, ValueError):
        w, h = rec._infer_geometry()
        rec.meta.extra["geometry_inferred"] = True
    if w <= 0 or h <= 0:
        raise FormatError(rec.path, f"impossible sensor geometry {w}x{h} in header")
    rec.meta.width, rec.meta.height = w, h


# -- .dat ----------------------------------------------------------------------------
@nb.njit(cache=True, nogil=True, inline="always")
def _le32(b, j):
    return np.int64(b[j]) | (np.int64(b[j + 1]) << 8) | (np.int64(b[j + 2]) << 16) | (np.int64(b[j + 3]) << 24)


@nb.njit(cache=True, nogil=True)
def decode_dat(raw, out, state, checks):
    for i in range(raw.shape[0] // 8):
        d = _le32(raw, 8 * i + 4)
        emit(out, i, _le32(raw, 8 * i), d & 0x3FFF, (d >> 14) & 0x3FFF, d >> 28, checks)
    return raw.shape[0] // 8


def decode_dat_reference(raw: np.ndarray) -> np.ndarray:
    rec = raw.view(np.dtype([("t", "<u4"), ("d", "<u4")]))
    d = rec["d"].astype(np.int64)
    out = empty_events(rec.size)
    out["t"], out["x"], out["y"], out["p"] = rec["t"], d & 0x3FFF, (d >> 14) & 0x3FFF, d >> 28
    return out


def encode_dat(events: np.ndarray, width: int, height: int) -> bytes:
    header = f"% Data file containing Event2D events.\n% Version 2\n% Width {width}\n% Height {height}\n"
    rec = np.empty(events.size, np.dtype([("t", "<u4"), ("d", "<u4")]))
    rec["t"] = events["t"]
    rec["d"] = (
        events["x"].astype(np.uint32) | (events["y"].astype(np.uint32) << 14) | (events["p"].astype(np.uint32) << 28)
    )
    return header.encode() + bytes([0, 8]) + rec.tobytes()


class DatRecording(Recording):
    """Prophesee/ATIS EVT 2.0 .dat (N-CARS, Gen1).

    Without ``% Width``/``% Height`` in the header the sensor size is the
    events' extent (N-CARS samples are crops), noted as ``geometry_inferred``.
    """

    format_name = "prophesee-dat"

    def __init__(self, path: str | Path) -> None:
        path = check_path(path)
        with open(path, "rb") as f:
            lines, offset = read_text_header(f, path, b"%")
            f.seek(offset)
            type_size = f.read(2)
        if not lines:
            raise FormatError(path, "not a .dat file (no '%' header)")
        if len(type_size) < 2:
            raise FormatError(path, "file ends after the header (no event type/size bytes)")
        if type_size[1] != 8:
            raise FormatError(path, f"unsupported .dat event size {type_size[1]} (expected 8)")
        self._offset = offset + 2
        info = _header_info(lines)
        extra = {"header": "\n".join(lines), "event_type": type_size[0]}
        super().__init__(path, RecordingMeta(path, self.format_name, 1, 1, "Prophesee", extra))
        _set_geometry(self, info)

    def _raw_chunks(self, max_events: int | None) -> Iterator[Scanned]:
        return fixed_record_chunks(self.path, self._offset, 8, decode_dat, max_events, self.meta)


# -- .raw EVT 2.0 ----------------------------------------------------------------------
@nb.njit(cache=True, nogil=True)
def decode_evt2(words, out, state, checks):
    """state[0] = time_high. Returns (events written, words consumed)."""
    k = 0
    th = state[0]
    for i in range(words.shape[0]):
        w = np.int64(words[i])
        typ = w >> 28
        if typ == 8:
            th = w & 0x0FFFFFFF
        elif typ <= 1:
            emit(out, k, (th << 6) | ((w >> 22) & 0x3F), (w >> 11) & 0x7FF, w & 0x7FF, typ, checks)
            k += 1
    state[0] = th
    return k, words.shape[0]


def decode_evt2_reference(words: np.ndarray) -> np.ndarray:
    w = words.astype(np.int64)
    typ = w >> 28
    is_th = typ == 8
    idx = np.where(is_th, np.arange(w.size), -1)
    last = np.maximum.accumulate(idx) if w.size else idx
    th = np.where(last >= 0, w[np.maximum(last, 0)] & 0x0FFFFFFF, 0)
    cd = typ <= 1
    out = empty_events(int(cd.sum()))
    out["t"] = (th[cd] << 6) | ((w[cd] >> 22) & 0x3F)
    out["x"], out["y"], out["p"] = (w[cd] >> 11) & 0x7FF, w[cd] & 0x7FF, typ[cd]
    return out


def encode_evt2(events: np.ndarray) -> np.ndarray:
    """EVT 2.0 words for time-sorted events: a TIME_HIGH word whenever t >> 6 changes."""
    t = events["t"].astype(np.int64)
    th = t >> 6
    new = np.r_[True, th[1:] != th[:-1]] if t.size else np.zeros(0, bool)
    cd = (
        (events["p"].astype(np.int64) << 28)
        | ((t & 0x3F) << 22)
        | (events["x"].astype(np.int64) << 11)
        | events["y"].astype(np.int64)
    )
    words = np.empty(t.size + int(new.sum()), np.int64)
    pos = np.arange(t.size) + np.cumsum(new)
    words[pos] = cd
    words[pos[new] - 1] = (8 << 28) | th[new]
    return words.astype("<u4")


# -- .raw EVT 3.0 ----------------------------------------------------------------------
@nb.njit(cache=True, nogil=True)
def decode_evt3(words, out, state, checks):
    """state: [y, pol, base_x, time_low, time_high, wraps]. Stops before ``out`` overflows.

    Returns (events written, words consumed).
    """
    y, pol, bx, tl, th, wraps = state[0], state[1], state[2], state[3], state[4], state[5]
    k = 0
    cap = out.shape[0]
    i = 0
    n = words.shape[0]
    while i < n:
        if k + 12 > cap:
            break
        w = np.int64(words[i])
        typ = w >> 12
        if typ == 0x0:
            y = w & 0x7FF
        elif typ == 0x2 or typ == 0x3:
            pol = (w >> 11) & 1
            if typ == 0x2:
                emit(out, k, (wraps << 24) | (th << 12) | tl, w & 0x7FF, y, pol, checks)
                k += 1
            else:
                bx = w & 0x7FF
        elif typ == 0x4 or typ == 0x5:
            nbits = 12 if typ == 0x4 else 8
            t = (wraps << 24) | (th << 12) | tl
            for b in range(nbits):
                if (w >> b) & 1:
                    emit(out, k, t, bx + b, y, pol, checks)
                    k += 1
            bx += nbits
        elif typ == 0x6:
            tl = w & 0xFFF
        elif typ == 0x8:
            v = w & 0xFFF
            if v < th:
                wraps += 1
            th = v
        i += 1
    state[0], state[1], state[2], state[3], state[4], state[5] = y, pol, bx, tl, th, wraps
    return k, i


def decode_evt3_reference(words: np.ndarray) -> np.ndarray:
    """Word-by-word Python decoder: slow, obviously correct, for parity tests."""
    y = pol = bx = tl = th = wraps = 0
    rows = []
    for w in (int(v) for v in words):
        typ = w >> 12
        if typ == 0:
            y = w & 0x7FF
        elif typ in (2, 3):
            pol = (w >> 11) & 1
            if typ == 2:
                rows.append(((wraps << 24) | (th << 12) | tl, w & 0x7FF, y, pol))
            else:
                bx = w & 0x7FF
        elif typ in (4, 5):
            nbits = 12 if typ == 4 else 8
            rows += [((wraps << 24) | (th << 12) | tl, bx + b, y, pol) for b in range(nbits) if (w >> b) & 1]
            bx += nbits
        elif typ == 6:
            tl = w & 0xFFF
        elif typ == 8:
            wraps += (w & 0xFFF) < th
            th = w & 0xFFF
    out = empty_events(len(rows))
    if rows:
        a = np.array(rows, np.int64)
        out["t"], out["x"], out["y"], out["p"] = a[:, 0], a[:, 1], a[:, 2], a[:, 3]
    return out


def encode_evt3(events: np.ndarray) -> np.ndarray:
    """EVT 3.0 words for time-sorted events, one ADDR_X word per event (t < 2**24)."""
    words: list[int] = []
    th = tl = y = -1
    cols = (events[f].tolist() for f in ("t", "x", "y", "p"))
    for t, x, yy, p in zip(*cols, strict=True):
        if (t >> 12) != th:
            th = t >> 12
            words.append((0x8 << 12) | (th & 0xFFF))
        if (t & 0xFFF) != tl:
            tl = t & 0xFFF
            words.append((0x6 << 12) | tl)
        if yy != y:
            y = yy
            words.append(y)
        words.append((0x2 << 12) | (p << 11) | x)
    return np.array(words, "<u2")


class RawRecording(Recording):
    """A Metavision .raw file in EVT 2.0 or EVT 3.0 (from the header's ``evt``/``format`` line)."""

    format_name = "prophesee-raw"

    def __init__(self, path: str | Path) -> None:
        path = check_path(path)
        with open(path, "rb") as f:
            lines, self._offset = read_text_header(f, path, b"%", stop=lambda ln: ln.strip() == b"% end")
        info = _header_info(lines)
        enc = (info.get("evt") or info.get("format", "").split(";")[0]).upper().replace("EVT", "").strip()
        if enc not in ("2.0", "2", "3.0", "3"):
            raise FormatError(path, f"unsupported or missing event encoding {enc!r} in the .raw header")
        self._evt = 3 if enc.startswith("3") else 2
        extra = {"header": "\n".join(lines), "encoding": f"evt{self._evt}.0"}
        camera = info.get("camera_integrator_name") or info.get("integrator_name") or "Prophesee"
        super().__init__(path, RecordingMeta(path, f"prophesee-raw-evt{self._evt}", 1, 1, camera, extra))
        _set_geometry(self, info)

    def _raw_chunks(self, max_events: int | None) -> Iterator[Scanned]:
        word = np.dtype("<u4") if self._evt == 2 else np.dtype("<u2")
        size = os.path.getsize(self.path) - self._offset
        if size % word.itemsize:
            raise FormatError(self.path, f"data is not a whole number of {word.itemsize}-byte words: truncated?")
        words = map_file(self.path, self._offset, word)
        decode = decode_evt2 if self._evt == 2 else decode_evt3
        # EVT 2 writes at most one event a word; EVT 3 up to 12 (decode_evt3 stops when out is full)
        cap = words.size if max_events is None else max_events
        cap = max(cap if self._evt == 2 else 2 * cap, 12)
        state = np.zeros(6, np.int64)
        start = 0
        while start < words.size:
            stop = words.size if max_events is None else min(words.size, start + max(max_events, 1))
            out = empty_events(cap)
            checks = new_checks(self.meta.width, self.meta.height)
            k, used = decode(words[start:stop], out, state, checks)
            start += used
            yield Scanned(out[:k], int(checks[CHECK_BAD]), int(checks[CHECK_UNSORTED]))
