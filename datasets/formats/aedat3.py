"""cAER AEDAT 3.1 (IBM DVS128 Gesture originals).

Text header from ``#!AER-DAT3.1`` to ``#!END-HEADER``, then packets: a
28-byte little-endian header (eventType, eventSource: int16; eventSize,
eventTSOffset, eventTSOverflow, eventCapacity, eventNumber, eventValid:
int32) followed by eventCapacity x eventSize bytes. Polarity events (type 1,
8 bytes: uint32 data + int32 timestamp) carry valid = bit 0, polarity =
bit 1, y = bits 2-16, x = bits 17-31; the full timestamp is
(eventTSOverflow << 31) | timestamp. Other event types and invalid events are
skipped. Readers disagree on the payload length: we walk packets by
eventCapacity (what is on disk) and decode the first eventNumber events.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numba as nb
import numpy as np

from spikelens.datasets.errors import FormatError
from spikelens.datasets.events import CHECK_BAD, CHECK_UNSORTED, emit, empty_events, new_checks
from spikelens.datasets.formats._binary import check_path, map_file, read_text_header
from spikelens.datasets.recording import Recording, RecordingMeta, Scanned

MAGIC = b"#!AER-DAT3"
HEADER_BYTES = 28
POLARITY_EVENT = 1
#: Sensor sizes of the cAER sources we know by name.
SOURCES = {"DVS128": (128, 128), "DAVIS240": (240, 180), "DAVIS346": (346, 260), "DVXPLORER": (640, 480)}
READ_BYTES = 8 << 20


def sniff(head: bytes) -> bool:
    return head.startswith(MAGIC)


@nb.njit(cache=True, nogil=True, inline="always")
def _le32(b, i):
    return np.int32(
        np.uint32(b[i]) | (np.uint32(b[i + 1]) << 8) | (np.uint32(b[i + 2]) << 16) | (np.uint32(b[i + 3]) << 24)
    )


@nb.njit(cache=True, nogil=True)
def decode_packets(buf, out, checks):
    """Decode whole packets from ``buf``.

    Returns (events written, bytes consumed, error code, error offset); the
    error code is 0 (fine) or 1 (impossible packet header). ``out`` must hold
    len(buf) // 8 events.
    """
    pos = 0
    k = 0
    n = buf.shape[0]
    while pos + 28 <= n:
        etype = np.int16(np.uint16(buf[pos]) | (np.uint16(buf[pos + 1]) << 8))
        size = _le32(buf, pos + 4)
        overflow = np.int64(_le32(buf, pos + 12))
        capacity = _le32(buf, pos + 16)
        number = _le32(buf, pos + 20)
        if etype < 0 or size <= 0 or capacity < 0 or number < 0 or number > capacity or overflow < 0:
            return k, pos, 1, pos
        payload = np.int64(capacity) * size
        if pos + 28 + payload > n:
            break
        if etype == 1 and size >= 8:
            base = pos + 28
            for j in range(number):
                e = base + j * size
                data = np.uint32(_le32(buf, e))
                if data & 1:
                    t = (overflow << 31) | np.int64(_le32(buf, e + 4))
                    emit(
                        out,
                        k,
                        t,
                        np.int64((data >> 17) & 0x7FFF),
                        np.int64((data >> 2) & 0x7FFF),
                        np.int64((data >> 1) & 1),
                        checks,
                    )
                    k += 1
        pos += 28 + payload
    return k, pos, 0, 0


PACKET_HEADER = np.dtype(
    [
        ("type", "<i2"),
        ("source", "<i2"),
        ("size", "<i4"),
        ("ts_offset", "<i4"),
        ("ts_overflow", "<i4"),
        ("capacity", "<i4"),
        ("number", "<i4"),
        ("valid", "<i4"),
    ]
)


def decode_reference(buf: np.ndarray) -> np.ndarray:
    """Plain Python/NumPy twin of :func:`decode_packets` over complete packets."""
    parts, pos = [], 0
    while pos + HEADER_BYTES <= buf.size:
        h = buf[pos : pos + HEADER_BYTES].view(PACKET_HEADER)[0]
        payload = int(h["capacity"]) * int(h["size"])
        body = buf[pos + HEADER_BYTES : pos + HEADER_BYTES + payload]
        if h["type"] == POLARITY_EVENT and h["size"] >= 8:
            rec = body[: int(h["number"]) * int(h["size"])].reshape(-1, int(h["size"]))[:, :8]
            rec = np.ascontiguousarray(rec).view(np.dtype([("d", "<u4"), ("t", "<i4")])).ravel()
            d = rec["d"].astype(np.int64)
            keep = (d & 1) == 1
            ev = empty_events(int(keep.sum()))
            ev["t"] = (int(h["ts_overflow"]) << 31) | rec["t"][keep].astype(np.int64)
            ev["x"], ev["y"], ev["p"] = (d[keep] >> 17) & 0x7FFF, (d[keep] >> 2) & 0x7FFF, (d[keep] >> 1) & 1
            parts.append(ev)
        pos += HEADER_BYTES + payload
    return np.concatenate(parts) if parts else empty_events()


def encode_polarity_packet(
    events: np.ndarray, ts_overflow: int = 0, capacity: int | None = None, valid: np.ndarray | None = None
) -> bytes:
    """One polarity packet for ``events`` (writers of test files and the simulator)."""
    n = events.size
    capacity = n if capacity is None else capacity
    valid = np.ones(n, bool) if valid is None else valid
    header = np.zeros(1, PACKET_HEADER)
    header[0] = (POLARITY_EVENT, 1, 8, 4, ts_overflow, capacity, n, int(valid.sum()))
    body = np.zeros(capacity, np.dtype([("d", "<u4"), ("t", "<i4")]))
    body["d"][:n] = (
        (events["x"].astype(np.uint32) << 17)
        | (events["y"].astype(np.uint32) << 2)
        | (events["p"].astype(np.uint32) << 1)
        | valid.astype(np.uint32)
    )
    body["t"][:n] = (events["t"].astype(np.int64) & 0x7FFFFFFF).astype(np.int32)
    return header.tobytes() + body.tobytes()


def header_text(source: str = "DVS128") -> bytes:
    return (
        "#!AER-DAT3.1\r\n#Format: RAW\r\n"
        f"#Source 1: {source}\r\n#Start-Time: 2017-01-01 00:00:00 (TZ+0000)\r\n#!END-HEADER\r\n"
    ).encode()


class Aedat31Writer:
    """Stream time-ordered events into an AEDAT 3.1 file, ``packet_events`` per polarity packet.

    Writes straight to ``path``; wrap in :func:`spikelens.datasets.atomic_output`
    for an all-or-nothing file. Packets never straddle a 2^31 us timestamp wrap.
    """

    def __init__(self, path: str | Path, source: str = "DVS128", packet_events: int = 4096) -> None:
        if source not in SOURCES:
            raise ValueError(f"unknown cAER source {source!r}; known: {sorted(SOURCES)}")
        self.width, self.height = SOURCES[source]
        self._f = open(path, "wb")  # noqa: SIM115 - closed by close()/__exit__
        self._f.write(header_text(source))
        self._packet = packet_events
        self._last_t = -1

    def append(self, ev: np.ndarray) -> None:
        if ev.size == 0:
            return
        t = ev["t"]
        if t[0] < self._last_t or np.any(t[1:] < t[:-1]) or t[0] < 0:
            raise ValueError("AEDAT 3.1 events must be appended in time order with t >= 0")
        if ev["x"].max() >= self.width or ev["y"].max() >= self.height or ev["x"].min() < 0 or ev["y"].min() < 0:
            raise ValueError(f"events fall outside the {self.width}x{self.height} sensor")
        wraps = np.flatnonzero(np.diff(t >> 31)) + 1
        for part in np.split(ev, wraps):
            for i in range(0, part.size, self._packet):
                chunk = part[i : i + self._packet]
                self._f.write(encode_polarity_packet(chunk, ts_overflow=int(chunk["t"][0] >> 31)))
        self._last_t = int(t[-1])

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> Aedat31Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Aedat31Recording(Recording):
    """A cAER AEDAT 3.x file; sensor size from the header's Source line (DVS128 by default)."""

    format_name = "aedat3"

    def __init__(self, path: str | Path, width: int | None = None, height: int | None = None) -> None:
        path = check_path(path)
        with open(path, "rb") as f:
            if not sniff(f.read(len(MAGIC))):
                raise FormatError(path, "not an AEDAT 3.x file (missing '#!AER-DAT3' magic)")
            lines, self._offset = read_text_header(f, path, b"#", stop=lambda ln: ln.startswith(b"#!END-HEADER"))
        if not lines or not lines[-1].startswith("!END-HEADER"):
            raise FormatError(path, "AEDAT 3 header has no '#!END-HEADER' line")
        camera = None
        for line in lines:
            m = re.match(r"Source \d+:\s*(\S+)", line)
            if m:
                camera = m.group(1)
                break
        w, h = SOURCES.get((camera or "DVS128").upper(), (128, 128))
        meta = RecordingMeta(path, self.format_name, width or w, height or h, camera, {"header": "\n".join(lines)})
        super().__init__(path, meta)

    def _raw_chunks(self, max_events: int | None) -> Iterator[Scanned]:
        buf = map_file(self.path, self._offset)
        want = buf.size if max_events is None else max(READ_BYTES, 8 * max_events)
        pos = 0
        while pos < buf.size:
            part = buf[pos : pos + want]
            out = empty_events(part.size // 8)
            checks = new_checks(self.meta.width, self.meta.height)
            k, used, err, where = decode_packets(part, out, checks)
            if err:
                raise FormatError(self.path, f"impossible packet header at byte {self._offset + pos + where}")
            if used == 0:
                if pos + part.size >= buf.size:
                    raise FormatError(
                        self.path, f"file ends inside a packet ({buf.size - pos} bytes left over): truncated?"
                    )
                want *= 2  # a packet larger than the read size
                continue
            pos += used
            yield Scanned(out[:k], int(checks[CHECK_BAD]), int(checks[CHECK_UNSORTED]))
