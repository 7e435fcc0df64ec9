"""Lossless conversion of any readable recording to SpikeLens HDF5 or NPZ."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from spikelens.datasets import H5EventWriter, atomic_output, open_recording, write_npz

Progress = Callable[[int], None]


def convert(src: str | Path, dst: str | Path, progress: Progress | None = None) -> int:
    """Convert ``src`` to ``dst`` (.h5/.hdf5 streams in bounded memory; .npz loads whole).

    The output appears only once complete (atomic rename). Returns the event count.
    """
    dst = Path(dst)
    suffix = dst.suffix.lower()
    if suffix not in (".h5", ".hdf5", ".npz"):
        raise ValueError(f"{dst}: output must end in .h5, .hdf5 or .npz")
    n = 0
    with open_recording(src) as rec, atomic_output(dst, suffix) as tmp:
        if suffix == ".npz":
            ev = rec.load()
            write_npz(tmp, ev, rec.meta)
            n = ev.size
        else:
            with H5EventWriter(tmp, rec.meta) as w:
                for pkt in rec.packets():
                    w.append(pkt)
                    n += pkt.size
                    if progress:
                        progress(pkt.size)
    return n
