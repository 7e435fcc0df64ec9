"""SpikeLens HDF5: chunked, compressed event columns with a coarse time index.

Layout (``spikelens_schema`` = 1)::

    /events/t int64 us, /events/x int16, /events/y int16, /events/p int8
    /events/index   int64: index[k] = first event with t >= t_origin + k * index_bin_us
    /extra/<name>   array metadata (APS frames, ...)
    root attributes width, height, camera, source_format, t_origin,
                    index_bin_us, extra_json (scalar metadata as JSON)

Columns are compressed with Blosc LZ4 + byte shuffle (hdf5plugin; 3-4 bytes an
event, decoding well above 100 M events/s). Other HDF5 tools need
``import hdf5plugin`` to read them; pass ``compression="gzip"`` for files that
plain HDF5 must open. A [t0, t1) window reads two index entries, one chunk of
timestamps to refine each edge, and the events in between.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import hdf5plugin
import numpy as np

from spikelens.datasets.errors import FormatError
from spikelens.datasets.events import EVENT_DTYPE, pack_columns
from spikelens.datasets.formats._binary import check_path
from spikelens.datasets.formats.numpy_files import split_extra
from spikelens.datasets.recording import Recording, RecordingMeta, Scanned

# hdf5plugin registers its own Blosc with the HDF5 that h5py carries, unless HDF5_PLUGIN_PATH is set (as its
# docs suggest for other HDF5 tools, and as evlib sets on import): then HDF5 loads the plugin from that folder
# itself, and that copy fails every write ("error during user callback"). Registering ours again puts the
# working one back; reading is unaffected either way.
hdf5plugin.register(("blosc",), force=True)

MAGIC = b"\x89HDF\r\n\x1a\n"
SCHEMA = 1
COLUMNS = ("t", "x", "y", "p")
CHUNK = 1 << 18
INDEX_BIN_US = 10_000
#: the longest stretch without events the dense index covers (a day: 8.6 M entries, 69 MB)
MAX_GAP_US = 86_400_000_000


def sniff(head: bytes) -> bool:
    return head.startswith(MAGIC)


def _filters(compression: str | None) -> dict[str, Any]:
    if compression == "blosc-lz4":
        return dict(hdf5plugin.Blosc(cname="lz4", clevel=5, shuffle=hdf5plugin.Blosc.SHUFFLE))
    if compression == "gzip":
        return {"compression": "gzip", "compression_opts": 1, "shuffle": True}
    if compression is None:
        return {}
    raise ValueError(f"unknown compression {compression!r}: use 'blosc-lz4', 'gzip' or None")


class H5EventWriter:
    """Append time-ordered packets; :meth:`close` writes the index.

    Writes straight to ``path``; use :func:`spikelens.datasets.atomic_output`
    for an all-or-nothing file.
    """

    def __init__(
        self,
        path: str | Path,
        meta: RecordingMeta,
        *,
        compression: str | None = "blosc-lz4",
        index_bin_us: int = INDEX_BIN_US,
    ) -> None:
        # version-2 object headers (libver="latest") carry checksums: corrupted metadata is detected, not looped on
        self._f = h5py.File(path, "w", libver="latest")
        g = self._f.create_group("events")
        filt = _filters(compression)
        self._cols = {
            c: g.create_dataset(c, shape=(0,), maxshape=(None,), dtype=EVENT_DTYPE[c], chunks=(CHUNK,), **filt)
            for c in COLUMNS
        }
        self._bin = int(index_bin_us)
        self._index: list[np.ndarray] = []
        self._n_bins = 0
        self._n = 0
        self._origin: int | None = None
        self._last_t: int | None = None
        scalars, arrays = split_extra(meta.extra)
        a = self._f.attrs
        a["spikelens_schema"] = SCHEMA
        a["width"], a["height"] = int(meta.width), int(meta.height)
        a["camera"] = meta.camera or ""
        a["source_format"] = meta.format
        a["index_bin_us"] = self._bin
        a["extra_json"] = json.dumps(scalars)
        if arrays:
            xg = self._f.create_group("extra")
            for k, v in arrays.items():
                xg.create_dataset(k, data=v, **({"compression": "gzip"} if v.size > 1024 else {}))

    def append(self, ev: np.ndarray) -> None:
        if ev.dtype != EVENT_DTYPE:
            raise ValueError(f"events must have dtype {EVENT_DTYPE}, got {ev.dtype}")
        self.append_columns(ev["t"], ev["x"], ev["y"], ev["p"])

    def append_columns(self, t: np.ndarray, x: np.ndarray, y: np.ndarray, p: np.ndarray) -> None:
        """Append events given as columns (contiguous ones are written without another copy)."""
        if t.size == 0:
            return
        if (self._last_t is not None and t[0] < self._last_t) or np.any(t[1:] < t[:-1]):
            raise ValueError("events must be appended in time order")
        if self._origin is None:
            self._origin = int(t[0]) - int(t[0]) % self._bin
        # index entries for every bin edge up to (and including) the bin of the last event
        start = int(t[0]) if self._last_t is None else self._last_t
        if int(t[-1]) - start > MAX_GAP_US:
            raise ValueError(
                f"events {(int(t[-1]) - start) / 3.6e9:.1f} hours apart: the time index would need "
                f"{(int(t[-1]) - start) // self._bin:,} entries (a damaged timestamp?)"
            )
        last_bin = (int(t[-1]) - self._origin) // self._bin
        if last_bin >= self._n_bins:
            edges = self._origin + self._bin * np.arange(self._n_bins, last_bin + 1, dtype=np.int64)
            self._index.append(np.searchsorted(t, edges, side="left") + self._n)
            self._n_bins = last_bin + 1
        n0, self._n = self._n, self._n + t.size
        for c, values in zip(COLUMNS, (t, x, y, p), strict=True):
            d = self._cols[c]
            d.resize((self._n,))
            d[n0:] = values
        self._last_t = int(t[-1])

    def close(self) -> None:
        if self._f.id.valid:
            index = np.concatenate(self._index) if self._index else np.zeros(0, np.int64)
            self._f["events"].create_dataset("index", data=index)
            self._f.attrs["t_origin"] = self._origin if self._origin is not None else 0
            self._f.close()

    def __enter__(self) -> H5EventWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_h5(path: str | Path, events: np.ndarray, meta: RecordingMeta, **kw: Any) -> None:
    with H5EventWriter(path, meta, **kw) as w:
        for i in range(0, events.size, CHUNK * 8):
            w.append(events[i : i + CHUNK * 8])


class H5Recording(Recording):
    format_name = "hdf5"

    def __init__(self, path: str | Path) -> None:
        path = check_path(path)
        try:
            self._f = h5py.File(path, "r")
        except Exception as exc:  # h5py raises OSError, RuntimeError, KeyError, ... for damaged files
            raise FormatError(path, f"cannot open HDF5 file: {exc}") from exc
        try:
            a = self._f.attrs
            if a.get("spikelens_schema") != SCHEMA or "events" not in self._f:
                raise FormatError(path, "HDF5 file is not a SpikeLens event file (no spikelens_schema=1 / events)")
            g = self._f["events"]
            missing = [c for c in (*COLUMNS, "index") if c not in g]
            if missing:
                raise FormatError(path, f"HDF5 event file lacks datasets {missing}: incomplete write?")
            self._cols = [g[c] for c in COLUMNS]
            self._n = self._cols[0].shape[0]
            if any(c.shape != (self._n,) for c in self._cols):
                raise FormatError(path, "HDF5 event columns have different lengths")
            self._index = g["index"][()]
            self._bin, self._origin = int(a["index_bin_us"]), int(a["t_origin"])
            extra = json.loads(a["extra_json"])
            if "extra" in self._f:
                extra.update({k: v[()] for k, v in self._f["extra"].items()})
            meta = RecordingMeta(path, "hdf5", int(a["width"]), int(a["height"]), a["camera"] or None, extra)
            meta.extra.setdefault("source_format", str(a["source_format"]))
        except FormatError:
            self._f.close()
            raise
        except Exception as exc:  # every h5py failure on a damaged file becomes a FormatError
            self._f.close()
            raise FormatError(path, f"malformed SpikeLens HDF5 file: {exc}") from exc
        super().__init__(path, meta)

    def __len__(self) -> int:
        return self._n

    def _read(self, i0: int, i1: int) -> Scanned:
        try:
            cols = [col[i0:i1] for col in self._cols]
        except Exception as exc:
            raise FormatError(self.path, f"corrupt event data: {exc}") from exc
        return Scanned(*pack_columns(*cols, self.meta.width, self.meta.height))

    def _raw_chunks(self, max_events: int | None) -> Iterator[Scanned]:
        step = max_events or max(self._n, 1)
        for i in range(0, self._n, step):
            yield self._read(i, min(i + step, self._n))

    def _locate(self, t: int) -> int:
        """Index of the first event with time >= t, reading at most one index bin."""
        if self._n == 0:
            return 0
        k = (t - self._origin) // self._bin
        if k < 0:
            return 0
        if k >= self._index.size:
            return self._n
        lo = int(self._index[k])
        hi = int(self._index[k + 1]) if k + 1 < self._index.size else self._n
        if not 0 <= lo <= hi <= self._n:
            raise FormatError(self.path, f"corrupt time index (entry {k} points at {lo}..{hi} of {self._n} events)")
        try:
            return lo + int(np.searchsorted(self._cols[0][lo:hi], t, side="left"))
        except Exception as exc:
            raise FormatError(self.path, f"corrupt event data: {exc}") from exc

    def window(self, t0: int, t1: int) -> np.ndarray:
        i0, i1 = self._locate(t0), self._locate(t1)
        return self._checked(self._read(i0, max(i0, i1)))

    def close(self) -> None:
        if self._f.id.valid:
            self._f.close()
