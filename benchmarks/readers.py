"""Reader throughput: SpikeLens vs the established decoder, same file, one run.

    python benchmarks/readers.py [--events 10000000] [--repeat 5]

Writes one file per format (uniform random events, 346x260 or the format's
sensor) to a temporary folder, then times a whole-file decode into an event
array for our reader and the peer (tonic's reader where tonic has one,
expelliarmus for Prophesee formats, which tonic itself uses). Pinned to one
CPU core; medians of --repeat runs. Files are read from the page cache, so
this measures decoding, not the disk.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("BLOSC_NTHREADS", "1")  # one core for Blosc too, before hdf5plugin loads
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np

from spikelens.datasets import RecordingMeta, open_recording, write_h5
from spikelens.datasets.formats import aedat2, aedat3, atis_bin, prophesee
from spikelens.datasets.patterns import random_events

PEER_DTYPE = np.dtype([("x", int), ("y", int), ("t", int), ("p", int)])


def make_files(folder: Path, n: int) -> dict[str, tuple[Path, Callable[[Path], int] | None, str]]:
    """format -> (file, peer decoder returning an event count, peer name)."""
    import tonic.io
    from expelliarmus import Wizard

    ev = random_events(n, 346, 260, rate_hz=5e6, seed=0)
    ev128 = random_events(n, 128, 128, rate_hz=5e6, seed=0)
    files = {}

    p = folder / "a.aedat"
    p.write_bytes(b"#!AER-DAT2.0\r\n" + aedat2.encode_dvs128(ev128))

    def tonic_aedat(path: Path) -> int:
        version, start, _ = tonic.io.read_aedat_header_from_file(str(path))
        raw = tonic.io.get_aer_events_from_file(str(path), version, start)
        a = raw["address"]
        # the field extraction tonic's read_dvs_128 does (that function fails to unpack its header in tonic 1.7)
        return tonic.io.make_structured_array((a >> 8) & 0x7F, (a >> 1) & 0x7F, raw["timeStamp"], a & 1).size

    files["AEDAT 2.0 (jAER)"] = (p, tonic_aedat, "tonic get_aer_events_from_file")

    p = folder / "g.aedat"
    step = 4096
    p.write_bytes(
        aedat3.header_text() + b"".join(aedat3.encode_polarity_packet(ev128[i : i + step]) for i in range(0, n, step))
    )

    def tonic_ibm(path: Path) -> int:
        version, start, _ = tonic.io.read_aedat_header_from_file(str(path))
        raw = tonic.io.get_aer_events_from_file(str(path), version, start)
        a = raw["address"]
        return tonic.io.make_structured_array(
            (a >> 17) & 0x1FFF, (a >> 2) & 0x1FFF, raw["timeStamp"], (a >> 1) & 1
        ).size

    files["AEDAT 3.1 (cAER)"] = (p, tonic_ibm, "tonic get_aer_events_from_file")

    small = random_events(n, 240, 180, rate_hz=1e6, seed=0)
    small["t"] %= 1 << 23
    small.sort(order="t")
    p = folder / "n.bin"
    p.write_bytes(atis_bin.encode(small))
    files["ATIS .bin"] = (
        p,
        lambda path: tonic.io.read_mnist_file(str(path), dtype=PEER_DTYPE).size,
        "tonic read_mnist_file",
    )

    p = folder / "c.dat"
    p.write_bytes(prophesee.encode_dat(ev, 346, 260))
    files["Prophesee .dat"] = (p, lambda path: Wizard(encoding="dat").read(path).size, "expelliarmus")

    p = folder / "e2.raw"
    p.write_bytes(b"% evt 2.0\n% geometry 346x260\n% end\n" + prophesee.encode_evt2(ev).tobytes())
    files["Prophesee EVT 2.0"] = (p, lambda path: Wizard(encoding="evt2").read(path).size, "expelliarmus")

    n3 = min(n, 2_000_000)  # the EVT 3 encoder is a Python loop
    p = folder / "e3.raw"
    p.write_bytes(b"% evt 3.0\n% geometry 346x260\n% end\n" + prophesee.encode_evt3(ev[:n3]).tobytes())
    files["Prophesee EVT 3.0"] = (p, lambda path: Wizard(encoding="evt3").read(path).size, "expelliarmus")

    p = folder / "h.h5"
    write_h5(p, ev, RecordingMeta(None, "bench", 346, 260))
    files["SpikeLens HDF5"] = (p, None, "(no tonic reader)")
    return files


def median_time(fn: Callable[[], int], repeat: int) -> tuple[float, int]:
    fn()  # warm up: page cache, Numba cache
    times, count = [], 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        count = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), count


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    with tempfile.TemporaryDirectory() as tmp:
        files = make_files(Path(tmp), args.events)
        print(f"{'format':<20}{'events':>11}{'MB':>8}{'ours Mev/s':>12}{'peer Mev/s':>12}{'ratio':>8}  peer")
        for name, (path, peer, peer_name) in files.items():
            t_ours, n = median_time(lambda path=path: open_recording(path).load().size, args.repeat)
            ours = n / t_ours / 1e6
            if peer is not None:
                t_peer, n_peer = median_time(lambda path=path, peer=peer: peer(path), args.repeat)
                assert n_peer == n, f"{name}: peer decoded {n_peer} events, we {n}"
                theirs = n / t_peer / 1e6
                cols = f"{theirs:>12.1f}{ours / theirs:>7.1f}x"
            else:
                cols = f"{'-':>12}{'-':>8}"
            mb = path.stat().st_size / 1e6
            print(f"{name:<20}{n:>11,}{mb:>8.0f}{ours:>12.1f}{cols}  {peer_name}")


if __name__ == "__main__":
    main()
