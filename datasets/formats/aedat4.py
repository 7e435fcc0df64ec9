"""DV AEDAT 4.0, decoded by the ``aedat`` package (Rust, LZ4/ZSTD, memory safe).

We pick the first event stream (lowest id), as DV does, and read the camera
name from the XML stream description in the file header.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from spikelens.datasets.errors import FormatError
from spikelens.datasets.events import empty_events
from spikelens.datasets.formats._binary import check_path
from spikelens.datasets.recording import Recording, RecordingMeta

MAGIC = b"#!AER-DAT4.0"


def sniff(head: bytes) -> bool:
    return head.startswith(MAGIC)


def _is_decoder_failure(exc: BaseException) -> bool:
    """aedat raises RuntimeError/OSError, or pyo3's PanicException (a BaseException) on a Rust panic."""
    return isinstance(exc, Exception) or type(exc).__name__ == "PanicException"


def _decoder(path: Path):
    import aedat

    try:
        return aedat.Decoder(str(path))
    except BaseException as exc:
        if not _is_decoder_failure(exc):
            raise
        raise FormatError(path, f"cannot decode AEDAT 4 header: {exc}") from exc


def _to_events(packet_events: np.ndarray) -> np.ndarray:
    out = empty_events(packet_events.size)
    out["t"] = packet_events["t"]
    out["x"] = packet_events["x"]
    out["y"] = packet_events["y"]
    out["p"] = packet_events["on"]
    return out


class Aedat4Recording(Recording):
    format_name = "aedat4"

    def __init__(self, path: str | Path) -> None:
        path = check_path(path)
        with open(path, "rb") as f:
            head = f.read(1 << 16)
        if not sniff(head):
            raise FormatError(path, "not an AEDAT 4.0 file (missing '#!AER-DAT4.0' magic)")
        streams = _decoder(path).id_to_stream()
        ids = sorted(i for i, s in streams.items() if s.get("type") == "events")
        if not ids:
            raise FormatError(path, "the file has no event stream")
        self._stream = ids[0]
        s = streams[self._stream]
        m = re.search(rb'key="source" type="string">([^<]+)<', head)
        camera = m.group(1).decode("utf-8", "replace") if m else None
        # string keys in id order: the same before and after a round trip through JSON (our HDF5 metadata)
        extra = {"streams": {str(i): streams[i].get("type") for i in sorted(streams)}}
        super().__init__(path, RecordingMeta(path, self.format_name, int(s["width"]), int(s["height"]), camera, extra))

    def _raw_chunks(self, max_events: int | None) -> Iterator[np.ndarray]:
        parts: list[np.ndarray] = []
        n = 0
        try:
            for packet in _decoder(self.path):
                if packet.get("stream_id") != self._stream or "events" not in packet:
                    continue
                parts.append(packet["events"])
                n += packet["events"].size
                if max_events is not None and n >= max_events:
                    yield _to_events(np.concatenate(parts))
                    parts, n = [], 0
        except FormatError:
            raise
        except BaseException as exc:
            if not _is_decoder_failure(exc):
                raise
            raise FormatError(self.path, f"corrupt AEDAT 4 packet: {exc}") from exc
        if parts:
            yield _to_events(np.concatenate(parts))
