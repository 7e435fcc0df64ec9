"""jAER AEDAT 2.0: text header, then big-endian (uint32 address, uint32 timestamp).

Layout
------
- Header lines start with ``#``; the first is ``#!AER-DAT2.0``. The line
  ``# AEChip: <java class>`` names the chip class that wrote the file (for
  example ``eu.seebetter.ini.chips.davis.DAVIS240C``); we choose the address
  map and the sensor size from its simple name (:data:`CHIPS`).
- Then 8-byte records: address, timestamp (1 us ticks, 32 bits: it wraps
  every 71.6 minutes; we unwrap it).

DVS128 (``ch.unizh.ini.jaer.chip.retina.DVS128``, Tmpdiff128)
- a = bits 1-7, b = bits 8-14, x = 127 - a, y = 127 - b; ON when bit 0 is
  0 (jAER flips the raw polarity). Bit 15 (external sync) or bit 31
  (special) set: not a polarity event, dropped.

Every DAVIS (jAER ``DavisChip`` constants, ``DavisBaseCamera.DavisEventExtractor``)
- bit 31 = 0: a DVS word; bit 31 = 1: APS (ADC sample), and
  ``data & 0x80000C00 == 0x80000C00``: IMU sample words. Both dropped.
- DVS word with bits 10-11 == 01 (``EXTERNAL_INPUT_EVENT_ADDR``): an external
  input event (special), dropped. (PyAedatTools' ``ImportAedatDataVersion1or2``
  drops every word with bit 10 set; the two differ only on a DVS word with
  bits 10 and 11 both set, which jAER's hardware translation never writes.)
- Otherwise x = bits 12-21, y = bits 22-30, ON = bit 11. jAER's extractor
  sets ``x = sizeX - 1 - x_raw`` and ``y = y_raw`` with its y axis pointing
  up; we flip y once more into image coordinates (origin top left):
  x = W - 1 - x_raw, y = H - 1 - y_raw.
- Sizes from the chip classes: DAVIS240A/B/C and DVS240 240 x 180, DAVIS128
  128 x 128, DAVIS208 (PixelParade) 208 x 192, every DAVIS346 variant
  (A, B, red, blue, cBSI, mini, Zynq) 346 x 260, DAVIS640 and DAVISRGBW640
  640 x 480; the colour variants use the same DVS map. CDAVIS has 640 x 480
  APS pixels but one DVS pixel in four (jAER doubles its DVS coordinates
  for display); we report the DVS array, 320 x 240.
- A chip we do not know is never decoded with a guessed map: its addresses
  show whether it is a DAVIS (bit 31 or y bits in use) and the error names
  the chip and the ``chip=`` override.

SpikingJelly's CIFAR10-DVS loader returns the transpose of the DVS128 mapping
(x = 127 - b, y = 127 - a); we follow jAER, the program that wrote the files.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numba as nb
import numpy as np

from spikelens.datasets.errors import FormatError
from spikelens.datasets.events import EVENT_DTYPE, emit, empty_events
from spikelens.datasets.formats._binary import check_path, fixed_record_chunks, read_text_header
from spikelens.datasets.recording import Recording, RecordingMeta, Scanned

MAGIC = b"#!AER-DAT2"
RECORD_BYTES = 8


@dataclass(frozen=True)
class Chip:
    name: str  # as the camera is called (meta.camera)
    layout: str  # "dvs128" or "davis": the address map
    width: int
    height: int


_DAVIS = {
    ("davis240a", "davis240b", "davis240c", "dvs240", "davis240basecamera"): ("DAVIS240", 240, 180),
    ("davis128", "davis128color"): ("DAVIS128", 128, 128),
    ("davis208pixelparade", "davis208pixelparadecolor", "davis208"): ("DAVIS208", 208, 192),
    (
        "davis346a",
        "davis346b",
        "davis346bcolor",
        "davis346red",
        "davis346redcolor",
        "davis346blue",
        "davis346cbsi",
        "davis346mini",
        "davis346zynq",
        "davis346basecamera",
        "davis346",
    ): ("DAVIS346", 346, 260),
    ("davis640", "davis640color", "davisrgbw640", "davisrgb640"): ("DAVIS640", 640, 480),
    ("cdavis",): ("CDAVIS", 320, 240),
}
#: AEChip simple class names (lower case) -> chip; ``chip=`` takes these names too.
CHIPS: dict[str, Chip] = {
    "dvs128": Chip("DVS128", "dvs128", 128, 128),
    "tmpdiff128": Chip("DVS128", "dvs128", 128, 128),
}
CHIPS.update({n: Chip(name, "davis", w, h) for names, (name, w, h) in _DAVIS.items() for n in names})


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
def decode_davis(raw, out, state, checks, width, height):
    """Every DAVIS chip: DVS words only (bit 31 clear, not an external input), flipped to image coordinates."""
    k = 0
    for i in range(raw.shape[0] // 8):
        a = _be32(raw, 8 * i)
        t = _unwrap(np.int64(_be32(raw, 8 * i + 4)), state)
        if a & np.uint32(0x80000000) or (a & 0xC00) == 0x400:
            continue
        x = width - 1 - np.int64((a >> 12) & 0x3FF)
        emit(out, k, t, x, height - 1 - np.int64((a >> 22) & 0x1FF), np.int64((a >> 11) & 1), checks)
        k += 1
    return k


def decode_reference(raw: np.ndarray, chip: Chip) -> np.ndarray:
    """Plain NumPy decoder, the parity reference for the Numba kernels."""
    rec = raw.view(np.dtype([("a", ">u4"), ("t", ">u4")]))
    a, t = rec["a"].astype(np.int64), rec["t"].astype(np.int64)
    t = t + (np.cumsum(np.diff(t, prepend=t[:1]) < -(1 << 31)) << 32)
    if chip.layout == "dvs128":
        keep = (a & 0x80008000) == 0
        x, y, p = 127 - ((a >> 1) & 0x7F), 127 - ((a >> 8) & 0x7F), 1 - (a & 1)
    else:
        keep = ((a & 0x80000000) == 0) & ((a & 0xC00) != 0x400)
        x, y, p = chip.width - 1 - ((a >> 12) & 0x3FF), chip.height - 1 - ((a >> 22) & 0x1FF), (a >> 11) & 1
    out = empty_events(int(keep.sum()))
    out["t"], out["x"], out["y"], out["p"] = t[keep], x[keep], y[keep], p[keep]
    return out


def kernel(chip: Chip) -> Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], int]:
    """The decoder of ``chip``'s address map, as :func:`fixed_record_chunks` calls it."""
    if chip.layout == "dvs128":
        return decode_dvs128
    return functools.partial(decode_davis, width=chip.width, height=chip.height)


#: Address words looked at to tell a DAVIS from a DVS128 when the header does not say.
SNIFF_WORDS = 65536


def _looks_davis(path: Path, offset: int) -> bool:
    """DAVIS words carry bit 31 (APS/IMU) or y in bits 22-30; a DVS128 address never exceeds 15 bits."""
    words = np.fromfile(path, np.dtype(">u4"), count=2 * SNIFF_WORDS, offset=offset)[0::2]
    return bool(np.any(words >= 1 << 16))


def resolve_chip(path: Path, lines: list[str], offset: int, override: str | None = None) -> Chip:
    """The chip that wrote the file: ``override``, else the header's AEChip class, else (no AEChip line)
    a DVS128 unless the addresses are a DAVIS's. An unknown class is an error naming it."""
    if override is not None:
        chip = CHIPS.get(override.lower())
        if chip is None:
            raise FormatError(path, f"unsupported AEDAT 2.0 chip {override!r}; known: {sorted(CHIPS)}")
        return chip
    named = next((m.group(1) for ln in lines if (m := re.search(r"AEChip:\s*(\S+)", ln))), None)
    if named is None:
        if _looks_davis(path, offset):
            raise FormatError(path, "no AEChip line and the addresses are a DAVIS's: say which, e.g. chip='davis240c'")
        return CHIPS["dvs128"]
    simple = named.rsplit(".", 1)[-1].lower()
    if simple in CHIPS:
        return CHIPS[simple]
    kind = "DAVIS-like" if _looks_davis(path, offset) else "DVS128-like"
    raise FormatError(path, f"unknown jAER chip {named} (its addresses look {kind}): pass chip= one of {sorted(CHIPS)}")


class Aedat2Recording(Recording):
    """A jAER AEDAT 2.0 file. ``chip`` overrides the header's AEChip line."""

    format_name = "aedat2"

    def __init__(self, path: str | Path, chip: str | None = None) -> None:
        path = check_path(path)
        with open(path, "rb") as f:
            if not sniff(f.read(len(MAGIC))):
                raise FormatError(path, "not an AEDAT 2.0 file (missing '#!AER-DAT2' magic)")
            lines, self._offset = read_text_header(f, path, b"#", stop=lambda ln: b"end of ascii header" in ln.lower())
        self._chip = resolve_chip(path, lines, self._offset, chip)
        extra: dict = {"header": "\n".join(lines)}
        for line in lines:
            m = re.search(r"Creation time:.*?(\d{10,})", line)
            if m:
                extra["creation_time_ms"] = int(m.group(1))
        c = self._chip
        super().__init__(path, RecordingMeta(path, self.format_name, c.width, c.height, c.name, extra))

    def _raw_chunks(self, max_events: int | None) -> Iterator[Scanned]:
        return fixed_record_chunks(self.path, self._offset, RECORD_BYTES, kernel(self._chip), max_events, self.meta)


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


def encode_davis(events: np.ndarray, chip: Chip) -> np.ndarray:
    """DVS address words of ``chip`` for ``events`` (the inverse of the decoder), for writers and tests."""
    ev = np.asarray(events, EVENT_DTYPE)
    x_raw = (chip.width - 1 - ev["x"].astype(np.uint32)) << 12
    y_raw = (chip.height - 1 - ev["y"].astype(np.uint32)) << 22
    return (y_raw | x_raw | (ev["p"].astype(np.uint32) << 11)).astype(np.uint32)
