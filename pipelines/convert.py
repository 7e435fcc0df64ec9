"""Lossless conversion of any readable recording to SpikeLens HDF5 or NPZ."""

from __future__ import annotations

from pathlib import Path

from spikelens.datasets import H5EventWriter, atomic_output, open_recording, write_npz
from spikelens.pipelines.jobs import Job, ensure


def convert(src: str | Path, dst: str | Path, job: Job | None = None, total: int | None = None) -> int:
    """Convert ``src`` to ``dst`` (.h5/.hdf5 streams in bounded memory; .npz loads whole).

    The output appears only once complete (atomic rename); a cancelled job
    leaves nothing behind. ``total`` (events, when the caller knows it) makes
    the progress a fraction. Returns the event count.
    """
    job = ensure(job)
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
                    job.report(n, total, "events written")
    return n
